"""Storage: reached with Entra ID only, soft delete, and a retention class for every container."""

from devhost.app_index import load_app
from devhost.manifest import build
from tests.infra.templates import MAIN, body, resolve, resources, template

STORAGE = "modules/storage.bicep"
CLASSES = ("rawInputContainers", "accountingRecordContainers", "rejectedContainers", "unmanagedContainers")


def _var(name):
    return resolve(MAIN, name)


def test_every_storage_account_refuses_shared_keys_public_blobs_and_old_tls():
    accounts = {
        (path, symbol)
        for path in ("main.bicep", STORAGE, "modules/eventgrid.bicep", "modules/container-writer.bicep")
        for symbol, resource in resources(path, "Microsoft.Storage/storageAccounts").items()
        if not resource["existing"]
    }
    assert accounts == {(STORAGE, "account")}, "storage accounts are declared in modules/storage.bicep only"
    properties = body(STORAGE, "account")["properties"]
    assert properties["allowSharedKeyAccess"] is False
    assert properties["allowBlobPublicAccess"] is False
    assert properties["defaultToOAuthAuthentication"] is True
    assert properties["minimumTlsVersion"] == "TLS1_2"
    assert properties["supportsHttpsTrafficOnly"] is True
    assert properties["allowCrossTenantReplication"] is False


def test_blobs_and_containers_have_soft_delete():
    properties = body(STORAGE, "blobService")["properties"]
    assert properties["deleteRetentionPolicy"] == {"enabled": True, "days": "softDeleteDays"}
    assert properties["containerDeleteRetentionPolicy"] == {"enabled": True, "days": "softDeleteDays"}
    for symbol in ("workStorage", "hostStorage"):
        assert body(MAIN, symbol)["params"]["softDeleteDays"] == "softDeleteDays"
    assert body(STORAGE, "blobContainers")["properties"]["publicAccess"] == "None"


def test_every_container_belongs_to_exactly_one_retention_class():
    classes = {name: _var(name) for name in CLASSES}
    provisioned = resolve(MAIN, body(MAIN, "workStorage")["params"]["containers"])
    assert sorted(provisioned) == sorted(c for members in classes.values() for c in members)
    assert len(provisioned) == len(set(provisioned)), "a container is in two retention classes"
    manifest = build(load_app("function_app:app"))
    assert set(manifest["containers"]) <= set(provisioned)


def test_retention_rules_have_separate_parameters():
    rules = {rule["name"]: rule for rule in template(MAIN)["variables"]["retentionRules"]["value"]}
    assert rules == {
        "raw-input": {"name": "raw-input", "prefixes": "rawInputPrefixes", "days": "rawInputRetentionDays"},
        "accounting-records": {
            "name": "accounting-records",
            "prefixes": "accountingRecordPrefixes",
            "days": "accountingRecordsRetentionDays",
        },
        "rejected-and-error-reports": {
            "name": "rejected-and-error-reports",
            "prefixes": "rejectedPrefixes",
            "days": "rejectedRetentionDays",
        },
    }
    parameters = template(MAIN)["parameters"]
    assert parameters["rawInputRetentionDays"]["default"] == 30
    assert parameters["rejectedRetentionDays"]["default"] == 30
    assert parameters["accountingRecordsRetentionDays"]["default"] == 1826
    # Accounting records are kept five years by law: the parameter cannot go below it.
    assert {"type": "min_value", "argument": 1826} in parameters["accountingRecordsRetentionDays"]["decorators"]


def test_retention_prefixes_are_built_from_the_classes():
    variables = template(MAIN)["variables"]
    for prefixes, containers in (
        ("rawInputPrefixes", "rawInputContainers"),
        ("accountingRecordPrefixes", "accountingRecordContainers"),
        ("rejectedPrefixes", "rejectedContainers"),
    ):
        loop = variables[prefixes]["value"]
        assert loop["loop_type"]["detail"] == {"item_name": "container", "array_name": containers}
        assert loop["config"] == "${container}/"


def test_lifecycle_rules_delete_by_prefix_and_leave_the_tables_alone():
    policy = body(STORAGE, "lifecycle")["properties"]["policy"]["rules"]
    assert policy["loop_type"]["detail"] == {"item_name": "rule", "array_name": "retentionRules"}
    rule = policy["config"]
    assert rule["definition"]["filters"]["prefixMatch"] == {
        "operator": {"type": "property_accessor", "operands": {"operand_1": "rule", "operand_2": "prefixes"}}
    }
    delete = rule["definition"]["actions"]["baseBlob"]["delete"]
    assert list(delete) == ["daysAfterModificationGreaterThan"]
    # Only the work account has rules; the host account keeps the deployment package.
    assert body(MAIN, "workStorage")["params"]["retentionRules"] == "retentionRules"
    assert "retentionRules" not in body(MAIN, "hostStorage")["params"]


def test_the_claims_inbox_is_provisioned_with_a_writer_role_for_the_case_system():
    assert "claims-inbox" in _var("rawInputContainers")
    params = body(MAIN, "claimsInboxWriter")["params"]
    assert params["containerName"] == "claimsInboxContainer"
    assert params["principalId"] == "claimsInboxWriterPrincipalId"


def test_only_the_case_system_writes_to_the_claims_inbox():
    inbox = resolve(MAIN, "claimsInboxContainer")
    assert inbox == "claims-inbox"
    assert body(MAIN, "workStorage")["params"]["writeProtectedContainer"] == "claimsInboxContainer"
    owner = body(STORAGE, "identityBlobOwner")["properties"]
    assert "condition" in owner and "conditionVersion" in owner
    condition = str(template(STORAGE)["variables"]["writeProtection"])
    assert "blobs/write" in condition and "blobs/add/action" in condition and "StringNotEquals" in condition
    assert "writeProtectedContainer" in condition
