"""The manifest devhost generates for the infrastructure checks, and the documented settings."""

import json
from pathlib import Path

from devhost.app_index import load_app
from devhost.manifest import build
from shared.events import Event
from shared.settings import Settings

ROOT = Path(__file__).resolve().parent.parent


def test_deployed_manifest_names_everything_the_code_uses():
    manifest = build(load_app("function_app:app"))
    assert [f["name"] for f in manifest["functions"]] == [
        "claims_decide",
        "claims_intake",
        "claims_post",
        "claims_response",
        "claims_returned",
        "claims_validate",
        "handoff",
        "inbox_pickup",
        "ledger_retention",
        "mailer",
        "run_closer",
        "sweeper",
        "vendor_close",
        "vendor_control_list",
        "vendor_create",
        "vendor_intake",
        "vendor_validate",
    ]
    queues = (
        "handoff",
        "inbox-pickup",
        "mail",
        *(f"vendor-onboarding-{s}" for s in ("validate", "create", "close")),
        *(f"claim-payouts-{s}" for s in ("validate", "decide", "post", "returned")),
    )
    assert manifest["queues"] == [{"name": q, "poison": f"{q}-poison"} for q in sorted(queues)]
    items = [f"items{n}" for n in range(8)]
    assert manifest["tables"] == ["history", *items, "mails", "runs", "vendorscreated"]
    assert manifest["containers"] == [
        "claims-inbox",
        "kvantum-outbox",
        "kvantum-responses",
        "limits",
        "payout-index",
        "rejected",
        "reports",
        "work",
    ]
    assert manifest["connections"] == ["AzureWebJobsStorage", "WorkStorage"]
    assert set(manifest["events"]) == {e.value for e in Event}
    assert "RUN_CLOSER_SCHEDULE" in {s["name"] for s in manifest["settings"]}


def test_sample_manifest_lists_every_queue_with_its_poison_twin_and_the_inbox():
    manifest = build(load_app("devhost.sample.app:app"))
    names = [q["name"] for q in manifest["queues"]]
    assert {"sample-book", "sample-enrich", "sample-validate"} <= set(names) and names == sorted(names)
    assert all(q["poison"] == f"{q['name']}-poison" for q in manifest["queues"])
    assert "sample-inbox" in manifest["containers"]


def test_every_setting_is_documented_in_the_example_local_settings():
    example = json.loads((ROOT / "local.settings.example.json").read_text())
    manifest = build(load_app("function_app:app"))
    names = {s["name"] for s in manifest["settings"]} | set(manifest["connections"])
    assert names <= set(example["Values"])
    assert set(example["Values"]) == set(example["Descriptions"])
    assert all(example["Descriptions"][name].strip() for name in example["Values"])


def test_max_dequeue_count_setting_matches_host_json():
    host = json.loads((ROOT / "host.json").read_text())
    example = json.loads((ROOT / "local.settings.example.json").read_text())
    assert int(example["Values"]["MAX_DEQUEUE_COUNT"]) == host["extensions"]["queues"]["maxDequeueCount"]
    assert Settings.model_fields["max_dequeue_count"].default == host["extensions"]["queues"]["maxDequeueCount"]
