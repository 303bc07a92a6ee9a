"""devhost's command line against a running host: drop, drain, fire, runs, items, replay, manifest, demo."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from devhost.sample.data import sample_file
from shared import storage
from tests.integration.test_crash import devhost

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def cli(state: Path, *args: str, timeout: float = 120) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "devhost", "--log-level", "WARNING", *args],
        cwd=ROOT,
        env={**os.environ, "DEVHOST_STATE": str(state)},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_verbs_against_a_running_host(sample_env, log_dir, tmp_path):
    state = tmp_path / "state.json"
    state.write_text(
        json.dumps(
            {
                "connection_string": sample_env.connection_string,
                "app": "devhost.sample.app:app",
                "SAMPLE_SERVICE_URL": sample_env.service.url,
                "SERVICENOW_INSTANCE_URL": sample_env.servicenow.url,
            }
        )
    )
    sample = sample_file(rows=12, seed=31, max_attempts=3)
    sample_env.configure_faults(sample)
    dropped = tmp_path / "cli-drop.csv"
    dropped.write_text(sample.text)
    serving = devhost(sample_env, log_dir, "cli", until_idle=False)
    try:
        assert "dropped cli-drop.csv" in cli(state, "drop", str(dropped), "sample-inbox")
        assert "drained" in cli(state, "drain", "--timeout", "100")
        assert "fired run_closer" in cli(state, "fire", "run_closer")
    finally:
        serving.terminate()
        serving.wait(timeout=30)

    runs = json.loads(cli(state, "runs", "--automation", "sample", "--limit", "200", "--json"))
    (run,) = [r for r in runs if r["source"] == "sample-inbox/cli-drop.csv"]
    assert run["status"] == "complete"
    assert run["counts"]["done"] + run["counts"]["handed_off"] + run["counts"]["rejected"] == 12
    assert run["automation_rate"] is not None

    handed = json.loads(cli(state, "items", run["run_id"], "--status", "handed_off", "--json"))
    reasons = {"UGYLDIGT_CPR", "BELOEB_OVER_GRAENSE", "INGEN_NEMKONTO", "TEKNISK_FEJL"}
    assert {i["reason_code"] for i in handed} == reasons
    assert all(i["reason_text"] for i in handed)

    poison = storage.queue("sample-book-poison")
    storage.queue_service().get_queue_client("sample-book-poison").send_message("aGVsbG8=")
    assert "replayed 1 messages" in cli(state, "replay", "sample-book")
    assert poison.get_queue_properties().approximate_message_count == 0
    book = storage.queue_service().get_queue_client("sample-book")
    (message,) = book.receive_messages(max_messages=1)
    assert message.content == "aGVsbG8="
    book.delete_message(message)

    manifest = json.loads(cli(state, "manifest"))
    names = [f["name"] for f in manifest["functions"]]
    assert {"handoff", "inbox_pickup", "mailer", "run_closer", "sweeper", "vendor_intake"} <= set(names)
    assert names == sorted(names)


def test_demo_runs_to_the_end_and_reports(tmp_path):
    output = cli(tmp_path / "state.json", "demo", "--rows", "15", timeout=300)
    assert "All queues drained" in output
    assert "complete" in output and "TEKNISK_FEJL" in output and "UGYLDIGT_BELOEB" in output
