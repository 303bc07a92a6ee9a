"""The azd postdeploy hook: an Event Grid subscription for every blob-triggered function, from the function
list; checked on the deployed app and on devhost's sample app (which has a blob trigger today)."""

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys

import pytest

from devhost.app_index import index, load_app
from devhost.manifest import build
from tests.infra.templates import INFRA, MAIN, ROOT, resolve, template

HOOKS = INFRA / "hooks"
APPS = ("function_app:app", "devhost.sample.app:app")


def _load_hook_module():
    spec = importlib.util.spec_from_file_location("eventgrid_subscriptions", HOOKS / "eventgrid_subscriptions.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


hook = _load_hook_module()


def _function_list(app_spec):
    """The app's functions as `az functionapp function list` prints them (name '<app>/<function>', config)."""
    return [
        {"name": f"func-test/{spec.name}", "config": {"bindings": list(spec.bindings)}}
        for spec in index(load_app(app_spec))
    ]


@pytest.mark.parametrize("app_spec", APPS)
def test_every_blob_triggered_function_gets_a_subscription_on_its_container(app_spec):
    manifest = build(load_app(app_spec))
    blob_functions = {
        f["name"]: f["path"].split("/", 1)[0] for f in manifest["functions"] if f["trigger"] == "blobTrigger"
    }
    planned = hook.subscriptions(_function_list(app_spec))
    assert {s.function: s.container for s in planned} == blob_functions
    for subscription in planned:
        assert subscription.subject_begins_with == f"/blobServices/default/containers/{subscription.container}/"
        assert subscription.name.startswith(hook.NAME_PREFIX)
        assert re.fullmatch(r"[a-z0-9-]{3,64}", subscription.name)


def test_the_deployed_app_subscribes_the_claims_inbox_and_kvantums_responses():
    planned = hook.subscriptions(_function_list("function_app:app"))
    assert sorted((s.function, s.container) for s in planned) == [
        ("claims_intake", "claims-inbox"),
        ("claims_response", "kvantum-responses"),
    ]


def test_every_container_a_deployed_blob_trigger_reads_is_provisioned():
    containers = resolve(MAIN, template(MAIN)["modules"]["workStorage"]["config"]["params"]["containers"])
    for subscription in hook.subscriptions(_function_list("function_app:app")):
        assert subscription.container in containers


def test_subscription_body_filters_blob_created_in_the_container_and_dead_letters():
    subscription = hook.Subscription(name="blobfn-claims-intake", function="claims_intake", container="claims-inbox")
    document = hook.body(subscription, "func-x.azurewebsites.net", "k/ey+=", "/subscriptions/s/acc", "dead")
    properties = document["properties"]
    assert properties["filter"]["includedEventTypes"] == ["Microsoft.Storage.BlobCreated"]
    assert properties["filter"]["subjectBeginsWith"] == "/blobServices/default/containers/claims-inbox/"
    url = properties["destination"]["properties"]["endpointUrl"]
    assert url.startswith("https://func-x.azurewebsites.net/runtime/webhooks/blobs?")
    assert "functionName=Host.Functions.claims_intake" in url and url.endswith("code=k%2Fey%2B%3D")
    dead_letter = properties["deadLetterWithResourceIdentity"]
    assert dead_letter["identity"] == {"type": "SystemAssigned"}
    assert dead_letter["deadLetterDestination"]["properties"] == {
        "resourceId": "/subscriptions/s/acc",
        "blobContainerName": "dead",
    }


def test_a_blob_trigger_without_event_grid_fails_the_deployment():
    polling = [{"name": "app/legacy", "config": {"bindings": [{"type": "blobTrigger", "path": "in/{name}"}]}}]
    with pytest.raises(ValueError, match="EventGrid"):
        hook.subscriptions(polling)


def test_the_hook_renders_bodies_from_the_azd_environment(tmp_path):
    functions = tmp_path / "functions.json"
    functions.write_text(json.dumps(_function_list("devhost.sample.app:app")))
    outputs = template(MAIN)["outputs"]
    environment = {
        **os.environ,
        "AZURE_FUNCTION_APP_HOSTNAME": "func-x.azurewebsites.net",
        "BLOBS_EXTENSION_KEY": "key",
        "AZURE_STORAGE_ACCOUNT_ID": "/subscriptions/s/acc",
        "AZURE_EVENTGRID_DEADLETTER_CONTAINER": "eventgrid-deadletter",
    }
    result = subprocess.run(
        [sys.executable, str(HOOKS / "eventgrid_subscriptions.py"), "render", str(functions), str(tmp_path)],
        capture_output=True,
        text=True,
        env=environment,
        check=True,
    )
    assert result.stdout.split() == ["blobfn-claims-intake", "blobfn-claims-response", "blobfn-sample-intake"]
    document = json.loads((tmp_path / "blobfn-sample-intake.json").read_text())
    assert document["properties"]["filter"]["subjectBeginsWith"] == "/blobServices/default/containers/sample-inbox/"
    # Every variable the hook reads from azd is an output of main.bicep (or the key the hook fetches).
    script = (HOOKS / "postdeploy.sh").read_text(encoding="utf-8")
    used = set(re.findall(r"\$\{?(AZURE_[A-Z_]+)", script)) | {
        name for name in environment if name.startswith("AZURE_") and name not in os.environ
    }
    assert used <= set(outputs), used - set(outputs)
    assert resolve(MAIN, template(MAIN)["outputs"]["AZURE_EVENTGRID_DEADLETTER_CONTAINER"]["value"]) == (
        "eventgrid-deadletter"
    )


def test_azure_yaml_deploys_the_function_app_and_runs_the_hook():
    azure_yaml = (ROOT / "azure.yaml").read_text(encoding="utf-8")
    service = re.search(r"^services:\n  api:\n((?:    .*\n)+)", azure_yaml, re.MULTILINE)
    assert service, "azure.yaml has a service 'api'"
    assert {"project: .", "language: python", "host: function"} <= {
        line.strip() for line in service.group(1).splitlines()
    }
    run = re.search(r"postdeploy:\n(?:\s+.*\n)*?\s+run: (\S+)", azure_yaml)
    assert run and run.group(1) == "infra/hooks/postdeploy.sh"
    script = ROOT / run.group(1)
    assert os.access(script, os.X_OK)
    subprocess.run([shutil.which("bash") or "/bin/bash", "-n", str(script)], check=True)
    assert f"{hook.NAME_PREFIX}*)" in script.read_text(encoding="utf-8"), "the hook prunes only its own subscriptions"


def test_the_function_app_carries_the_azd_service_tag():
    tags = template("modules/function-app.bicep")["resources"]["site"]["config"]["tags"]
    assert tags["function"]["type"] == "union"
    assert tags["function"]["parameters"]["arg_2"] == {"'azd-service-name'": "serviceName"}
    assert template("modules/function-app.bicep")["parameters"]["serviceName"]["default"] == "api"


def test_main_exports_the_names_azd_and_the_operators_use():
    outputs = template(MAIN)["outputs"]
    for name in (
        "AZURE_RESOURCE_GROUP",
        "AZURE_FUNCTION_APP_NAME",
        "AZURE_STORAGE_ACCOUNT_NAME",
        "AZURE_KEY_VAULT_NAME",
        "AZURE_LOCATION",
        "AZURE_TENANT_ID",
    ):
        assert name in outputs, name
    assert all(name.startswith("AZURE_") for name in outputs)
