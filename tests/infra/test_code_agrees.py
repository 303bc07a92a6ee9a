"""Code and infrastructure agree, judged from the code's own description: the manifest devhost generates from
the function metadata and the settings model, never a list kept by hand."""

import json
import re

import pytest
from croniter import croniter

from devhost.app_index import load_app
from devhost.manifest import build
from shared.settings import Settings
from tests.infra.templates import (
    MAIN,
    ROOT,
    Unresolved,
    accessor_path,
    body,
    function_call,
    module_path,
    modules,
    resolve,
    template,
)

FUNCTION_APP = "modules/function-app.bicep"
STORAGE = "modules/storage.bicep"
IDENTITY_SUFFIXES = ("__blobServiceUri", "__queueServiceUri", "__tableServiceUri", "__credential", "__clientId")
#: Settings Flex Consumption deprecates (the runtime is in functionAppConfig); WEBSITE_CONTENT* is a prefix.
FLEX_DEPRECATED = {
    "FUNCTIONS_WORKER_RUNTIME",
    "FUNCTIONS_EXTENSION_VERSION",
    "WEBSITE_RUN_FROM_PACKAGE",
    "SCM_DO_BUILD_DURING_DEPLOYMENT",
    "ENABLE_ORYX_BUILD",
    "WEBSITE_TIME_ZONE",
}


@pytest.fixture(scope="module")
def manifest():
    return build(load_app("function_app:app"))


@pytest.fixture(scope="module")
def app_settings():
    """The Function app's settings object, names as Bicep keys, values with the module's variables substituted."""
    site = body(FUNCTION_APP, "site")
    loop = site["properties"]["siteConfig"]["appSettings"]["loop_type"]["detail"]
    assert function_call(loop["array_name"]) == ("items", {"arg_1": "appSettings"}), "site must set appSettings"
    return resolve(FUNCTION_APP, "appSettings")


def _module_params(symbol):
    return body(MAIN, symbol)["params"]


def _module_of(path):
    return [symbol for symbol in modules() if module_path(MAIN, symbol) == path]


def _setting_name(field, info):
    alias = info.validation_alias
    return str(alias.choices[0]) if alias is not None and hasattr(alias, "choices") else field.upper()


def test_work_storage_has_every_queue_with_its_poison_twin_and_every_table(manifest):
    params = resolve(MAIN, _module_params("workStorage"))
    wanted_queues = {name for q in manifest["queues"] for name in (q["name"], q["poison"])}
    assert set(params["queues"]) == wanted_queues
    assert set(params["tables"]) == set(manifest["tables"])


def test_work_storage_has_every_container_the_code_uses(manifest):
    containers = resolve(MAIN, _module_params("workStorage"))["containers"]
    assert set(manifest["containers"]) <= set(containers)
    assert len(containers) == len(set(containers))


def test_the_storage_module_creates_what_it_is_given():
    for symbol, param in (("blobContainers", "containers"), ("storageQueues", "queues"), ("storageTables", "tables")):
        loop = template(STORAGE)["resources"][symbol]["config"]["loop_type"]["detail"]
        assert loop["array_name"] == param, symbol
        assert body(STORAGE, symbol)["name"] == loop["item_name"], symbol
    assert _module_of(STORAGE) == ["workStorage", "hostStorage"]


def test_every_trigger_reads_the_work_storage_account(manifest):
    # Queues and containers are provisioned in the work account; a trigger on the host connection would poll
    # a queue nobody created.
    for function in manifest["functions"]:
        if "connection" in function:
            assert function["connection"] == "WorkStorage", function


def test_both_connections_are_identity_based(manifest, app_settings):
    for connection in manifest["connections"]:
        for suffix in IDENTITY_SUFFIXES:
            assert f"{connection}{suffix}" in app_settings, f"{connection}{suffix} is not set"
        assert app_settings[f"{connection}__credential"] == "managedidentity"
        assert app_settings[f"{connection}__clientId"] == "identityClientId"
        assert connection not in app_settings, f"{connection} must not be a connection string in Azure"
        assert f"{connection}__serviceUri" not in app_settings
        assert f"{connection}__accountName" not in app_settings


def test_each_connection_points_at_its_own_account(app_settings):
    params = _module_params("functionApp")
    accounts = {"AzureWebJobsStorage": "hostStorage", "WorkStorage": "workStorage"}
    for connection, account in accounts.items():
        for service in ("blob", "queue", "table"):
            param = app_settings[f"{connection}__{service}ServiceUri"]
            assert accessor_path(params[param]) == [account, "outputs", f"{service}Endpoint"], (connection, service)
    assert accessor_path(params["identityClientId"]) == ["identity", "outputs", "clientId"]


def test_every_setting_the_code_reads_is_set_and_nothing_else(manifest, app_settings):
    connections = set(manifest["connections"])
    wanted = {s["name"] for s in manifest["settings"]} - connections
    assert not wanted - set(app_settings), "not set in infra/modules/function-app.bicep"
    identity = {f"{c}{suffix}" for c in connections for suffix in IDENTITY_SUFFIXES}
    platform = {"MALLOC_ARENA_MAX"}  # read by the C library of the worker process, not by our code
    assert not set(app_settings) - wanted - identity - platform, "set but read by no code"


def test_every_required_setting_is_set(manifest, app_settings):
    required = [s["name"] for s in manifest["settings"] if s["required"]]
    assert required, "the settings model has required settings (PSEUDONYM_KEY at least)"
    for name in required:
        assert app_settings.get(name) not in (None, ""), name


def test_every_schedule_a_timer_reads_is_set_to_a_six_field_ncrontab(manifest, app_settings):
    timers = [f for f in manifest["functions"] if f["trigger"] == "timerTrigger"]
    assert timers
    for timer in timers:
        match = re.fullmatch(r"%(\w+)%", timer["schedule"])
        assert match, f"{timer['name']}: schedule is not an app setting"
        value = app_settings.get(match.group(1))
        assert isinstance(value, str) and not isinstance(value, Unresolved), match.group(1)
        assert len(value.split()) == 6 and croniter.is_valid(value, second_at_beginning=True), value


def test_secrets_are_key_vault_references(app_settings):
    keyvault_reference = re.compile(r"@Microsoft\.KeyVault\(SecretUri=\$\{keyVaultUri\}secrets/[a-z0-9-]+/\)")
    secrets = [
        _setting_name(field, info)
        for field, info in Settings.model_fields.items()
        if "SecretStr" in repr(info.annotation)
    ]
    # The connection string is replaced by the identity-based settings; the Application Insights connection
    # string is no credential with local authentication off, and comes from the resource.
    not_secrets = {"WorkStorage", "APPLICATIONINSIGHTS_CONNECTION_STRING"}
    assert len(secrets) > len(not_secrets)
    for name in secrets:
        if name not in not_secrets:
            assert keyvault_reference.fullmatch(app_settings[name]), f"{name} is not a Key Vault reference"
    assert app_settings["APPLICATIONINSIGHTS_CONNECTION_STRING"] == "appInsightsConnectionString"
    params = _module_params("functionApp")
    assert accessor_path(params["keyVaultUri"]) == ["keyVault", "outputs", "uri"]
    assert accessor_path(params["appInsightsConnectionString"]) == ["monitoring", "outputs", "connectionString"]
    assert app_settings["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"] == "ClientId=${identityClientId};Authorization=AAD"


def test_literal_setting_values_are_valid_for_the_settings_model(app_settings, monkeypatch):
    literals = {
        name: value
        for name, value in app_settings.items()
        if isinstance(value, str)
        and not isinstance(value, Unresolved)
        and "${" not in value
        and not value.startswith("@Microsoft.KeyVault(")
        and value != "identityClientId"
    }
    assert "CHUNK_SIZE" in literals
    for name, value in literals.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("PSEUDONYM_KEY", "placeholder")
    monkeypatch.setenv("PSEUDONYM_PREVIOUS_KEYS", "{}")
    settings = Settings()  # type: ignore[call-arg]
    host = json.loads((ROOT / "host.json").read_text())
    assert settings.max_dequeue_count == host["extensions"]["queues"]["maxDequeueCount"]


def test_ledger_retention_is_the_apps_own_setting_from_its_parameter(app_settings):
    assert function_call(template(FUNCTION_APP)["variables"]["appSettings"]["value"]["LEDGER_RETENTION_DAYS"]) == (
        "string",
        {"value_to_convert": "ledgerRetentionDays"},
    )
    assert _module_params("functionApp")["ledgerRetentionDays"] == "ledgerRetentionDays"
    assert (
        template(MAIN)["parameters"]["ledgerRetentionDays"]["default"]
        == Settings.model_fields["ledger_retention_days"].default
    )


def test_no_flex_deprecated_setting_is_emitted(app_settings):
    for name in app_settings:
        assert name not in FLEX_DEPRECATED and not name.startswith("WEBSITE_CONTENT"), name
    for path in (ROOT / "infra").rglob("*.bicep"):
        lines = path.read_text(encoding="utf-8").splitlines()
        source = "\n".join(line for line in lines if not line.lstrip().startswith("//"))
        for name in FLEX_DEPRECATED:
            assert name not in source, f"{path}: {name}"


def test_the_function_app_is_python_3_12_on_flex_consumption():
    plan = body(FUNCTION_APP, "plan")
    assert plan["sku"] == {"name": "FC1", "tier": "FlexConsumption"}
    site = body(FUNCTION_APP, "site")
    assert site["kind"] == "functionapp,linux"
    config = site["properties"]["functionAppConfig"]
    assert config["runtime"] == {"name": "python", "version": "3.12"}
    assert config["scaleAndConcurrency"] == {
        "instanceMemoryMB": "instanceMemoryMB",
        "maximumInstanceCount": "maximumInstanceCount",
    }
    storage = config["deployment"]["storage"]
    assert storage["type"] == "blobContainer"
    assert storage["authentication"] == {"type": "UserAssignedIdentity", "userAssignedIdentityResourceId": "identityId"}
    assert site["properties"]["keyVaultReferenceIdentity"] == "identityId"
    assert site["identity"]["type"] == "UserAssigned"
    assert site["properties"]["httpsOnly"] is True
