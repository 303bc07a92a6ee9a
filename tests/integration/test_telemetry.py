"""Telemetry end to end: a devhost process exports to an Application Insights simulator with its identity.

The process is the real app (the sample chain on devhost) with `APPLICATIONINSIGHTS_CONNECTION_STRING` set:
`configure_azure_monitor` with a `ManagedIdentityCredential` whose token comes from the fake managed-identity
endpoint, envelopes over HTTPS to the ingestion simulator. What arrives must mirror the ledger and carry no
personal data.
"""

import csv
import io
import json
import re

import pytest

from devhost.sample.data import sample_file
from devhost.simulators.appinsights import IngestionServer
from devhost.simulators.managed_identity import ManagedIdentityServer
from shared.personal_data import CPR_SHAPED
from tests.integration.test_crash import devhost

pytestmark = pytest.mark.integration
RANDOM_ID = re.compile(
    r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b|\b[0-9a-f]{16}(?:[0-9a-f]{16})?\b"
)


def test_a_run_s_events_reach_application_insights_mirroring_the_ledger(sample_env, log_dir):
    ingestion = IngestionServer(sample_env.graph.certificate).start()  # the session's bundle trusts it
    identity = ManagedIdentityServer().start()
    try:
        sample = sample_file(rows=10, seed=61, with_problems=True)
        sample_env.configure_faults(sample)
        sample_env.drop("telemetry.csv", sample.text)
        environ = {
            "APPLICATIONINSIGHTS_CONNECTION_STRING": ingestion.connection_string,
            "APPLICATIONINSIGHTS_AUTHENTICATION_STRING": f"ClientId={identity.state.client_id};Authorization=AAD",
            "APPLICATIONINSIGHTS_STATSBEAT_DISABLED_ALL": "true",  # no calls to Microsoft's statsbeat endpoint
            **identity.env,
        }
        process = devhost(sample_env, log_dir, "telemetry", environ=environ)
        assert process.wait(timeout=180) == 0, "see devhost-telemetry.stderr"
        run = sample_env.run_for("telemetry.csv")
        ledger_items = sample_env.items(run)
        events = ingestion.state.custom_events()
    finally:
        ingestion.stop()
        identity.stop()

    assert [e["run_id"] for e in events if e["name"] == "RunStarted"] == [run.run_id]
    outcomes = {e["item_id"]: (e["outcome"], e["reason_code"]) for e in events if e["name"] == "ItemOutcome"}
    assert outcomes == {i: (row["Status"], row["ReasonCode"]) for i, row in ledger_items.items()}
    assert all(e["automation"] == "sample" for e in events if e["name"] in ("RunStarted", "ItemOutcome"))
    # logs went too, as traces, with the run on every line: the portal's logs and the ledger join
    traces = [e for e in ingestion.state.envelopes if e["data"]["baseType"] == "MessageData"]
    assert any(t["data"]["baseData"]["properties"].get("run_id") == run.run_id for t in traces)
    # the exporter authenticated with the app's identity, for Azure Monitor
    assert {(r.client_id, (r.resource or "").rstrip("/")) for r in identity.state.granted()} == {
        (identity.state.client_id, "https://monitor.azure.com")
    }
    # no personal data in anything sent: none of the file's CPR numbers or names anywhere, and nothing
    # CPR-shaped in what the app wrote (events, log lines, exceptions, the calls it made). Left out of that
    # shape scan: metrics (performance counters are big numbers) and random ids (GUIDs, span ids in hex),
    # which now and then hold nine digits in a row
    sent = json.dumps(ingestion.state.envelopes, ensure_ascii=False)
    for row in csv.DictReader(io.StringIO(sample.text), delimiter=";"):
        assert row["cpr"] not in sent and row["cpr"].replace("-", "") not in sent and row["navn"] not in sent
    written = [
        {key: value for key, value in e["data"]["baseData"].items() if key not in ("id", "ver")}
        for e in ingestion.state.envelopes
        if e["data"]["baseType"] != "MetricData"
    ]
    text = RANDOM_ID.sub("<id>", json.dumps(written, ensure_ascii=False))
    found = [text[max(0, m.start() - 60) : m.end() + 20] for m in CPR_SHAPED.finditer(text)]
    assert not found
