"""The app as the Functions worker indexes it: names, triggers, parameters, and a quiet import."""

import json
import subprocess
import sys
import typing
from pathlib import Path

import azure.functions as func
import pytest

from devhost.app_index import FunctionSpec, binding_problems, index, load_app

ROOT = Path(__file__).resolve().parent.parent

DEPLOYED = {
    "run_closer": "timerTrigger",
    "handoff": "queueTrigger",
    "mailer": "queueTrigger",
    "sweeper": "timerTrigger",
    "inbox_pickup": "queueTrigger",
    "ledger_retention": "timerTrigger",
    "vendor_intake": "timerTrigger",
    "vendor_validate": "queueTrigger",
    "vendor_create": "queueTrigger",
    "vendor_close": "queueTrigger",
    "vendor_control_list": "timerTrigger",
    "claims_intake": "blobTrigger",
    "claims_validate": "queueTrigger",
    "claims_decide": "queueTrigger",
    "claims_post": "queueTrigger",
    "claims_returned": "queueTrigger",
    "claims_response": "blobTrigger",
}
SAMPLE = {
    **DEPLOYED,
    "sample_intake": "blobTrigger",
    "sample_validate": "queueTrigger",
    "sample_enrich": "queueTrigger",
    "sample_book": "queueTrigger",
}


def test_deployed_app_has_the_expected_functions_and_triggers():
    functions = index(load_app("function_app:app"))
    assert {f.name: f.trigger_type for f in functions} == DEPLOYED


def test_sample_app_adds_only_the_sample_chain():
    functions = index(load_app("devhost.sample.app:app"))
    assert {f.name: f.trigger_type for f in functions} == SAMPLE


@pytest.mark.parametrize("app", ["function_app:app", "devhost.sample.app:app"])
def test_every_handler_matches_its_bindings_and_has_a_docstring(app):
    for spec in index(load_app(app)):
        assert binding_problems(spec) == []
        assert spec.handler.__doc__ and spec.handler.__doc__.strip()


def test_blob_triggers_use_event_grid_and_timers_do_not_run_on_startup():
    for spec in index(load_app("devhost.sample.app:app")):
        if spec.trigger_type == "blobTrigger":
            assert spec.trigger["source"] == "EventGrid"
        if spec.trigger_type == "timerTrigger":
            assert spec.trigger["runOnStartup"] is False
            assert spec.trigger["schedule"].startswith("%"), "schedules come from app settings"


def test_binding_check_catches_what_the_worker_would_reject():
    def misnamed(message: func.QueueMessage) -> None:
        """x"""

    def untyped_output(msg: func.QueueMessage, out: str) -> None:
        """x"""

    def typed_output(msg: func.QueueMessage, out: func.Out[str]) -> None:
        """x"""

    queue = {"type": "queueTrigger", "direction": "IN", "name": "msg"}
    output = {"type": "queue", "direction": "OUT", "name": "out"}
    assert binding_problems(FunctionSpec("a", (queue,), misnamed))
    assert binding_problems(FunctionSpec("b", (queue, output), untyped_output))
    assert binding_problems(FunctionSpec("c", (queue, output), typed_output)) == []
    assert typing.get_origin(typing.get_type_hints(typed_output)["out"]) is func.Out


def test_import_opens_no_socket_and_reads_no_setting():
    """Flex gives the app 30 s to start: importing it must not touch the network or need settings."""
    probe = """
import json, socket, sys, os
opened = []
real_connect = socket.socket.connect
def connect(self, address):
    opened.append(str(address))
    return real_connect(self, address)
socket.socket.connect = connect
socket.create_connection = lambda *a, **k: opened.append(str(a)) or (_ for _ in ()).throw(OSError("no"))
for name in [n for n in os.environ if n.startswith(("WorkStorage", "AzureWebJobs", "PSEUDONYM"))]:
    del os.environ[name]
import function_app
import devhost.sample.app
print(json.dumps({"opened": opened, "functions": len(function_app.app.get_functions())}))
"""
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report == {"opened": [], "functions": len(DEPLOYED)}
