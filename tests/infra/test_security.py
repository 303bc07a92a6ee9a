"""Security of the templates: Key Vault, Application Insights, role assignments, no secret in any file."""

import json
import re

import pytest

from tests.infra.templates import (
    INFRA,
    MAIN,
    ROLE_ASSIGNMENT,
    accessor_path,
    bicep_files,
    body,
    comment_above,
    function_call,
    module_path,
    modules,
    resources,
    template,
)

#: Built-in role definition ids (the same in every tenant) and their names.
BUILT_IN_ROLES = {
    "b7e6dc6d-f1e8-4753-8033-0f276bb0955b": "Storage Blob Data Owner",
    "ba92f5b4-2d11-453d-a403-e96b0029c9fe": "Storage Blob Data Contributor",
    "974c5e8b-45b9-4653-ba55-5f855dd0fb88": "Storage Queue Data Contributor",
    "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3": "Storage Table Data Contributor",
    "76199698-9eea-4c19-bc75-cec21354c6b6": "Storage Table Data Reader",
    "3913510d-42f4-4e42-8a64-420c390055eb": "Monitoring Metrics Publisher",
    "4633458b-17de-408a-b874-0445c86b69e6": "Key Vault Secrets User",
    "b86a8fe4-44ce-4948-aee5-eccb2c155cd7": "Key Vault Secrets Officer",
    "73c42c96-874c-492b-b04d-ab87d138a893": "Log Analytics Reader",
    "acdd72a7-3385-48ef-bd42-f606fba81ae7": "Reader",
}
#: The app identity's roles, each on the resource type that needs it (the table in architecture.md).
IDENTITY_ROLES = {
    ("Storage Blob Data Owner", "Microsoft.Storage/storageAccounts"),
    ("Storage Queue Data Contributor", "Microsoft.Storage/storageAccounts"),
    ("Storage Table Data Contributor", "Microsoft.Storage/storageAccounts"),
    ("Monitoring Metrics Publisher", "Microsoft.Insights/components"),
    ("Key Vault Secrets User", "Microsoft.KeyVault/vaults"),
}
#: The admin group reads: the ledger tables, the logs, and the resource group's resources in the portal.
ADMIN_ROLES = {
    ("Storage Table Data Reader", "Microsoft.Storage/storageAccounts"),
    ("Log Analytics Reader", "Microsoft.OperationalInsights/workspaces"),
    ("Reader", "resourceGroup"),
}
#: Other principals: the case system writes the claims inbox, Event Grid dead-letters, the operator sets secrets.
OTHER_ROLES = {
    ("principalId", "Storage Blob Data Contributor", "Microsoft.Storage/storageAccounts/blobServices/containers"),
    ("topic", "Storage Blob Data Contributor", "Microsoft.Storage/storageAccounts/blobServices/containers"),
    ("operatorPrincipalId", "Key Vault Secrets Officer", "Microsoft.KeyVault/vaults"),
}


def _role_assignments():
    """(file, symbol, role name, principal, scope type) for every role assignment in infra/."""
    found = []
    for path in bicep_files():
        relative = path.relative_to(INFRA).as_posix()
        variables = template(relative).get("variables", {})
        for symbol in resources(relative, ROLE_ASSIGNMENT):
            config = body(relative, symbol)
            call = function_call(config["properties"]["roleDefinitionId"])
            assert call and call[0] == "subscription_resource_id", f"{relative}:{symbol}"
            role_var = call[1]["resource_name_1"]
            role = BUILT_IN_ROLES[variables[role_var]["value"]]
            principal = accessor_path(config["properties"]["principalId"])[0]
            scope = config.get("scope")
            scope_type = resources(relative)[scope]["type"] if scope else "resourceGroup"
            found.append((relative, symbol, role, principal, scope_type))
    return found


def test_key_vault_uses_rbac_with_purge_protection_and_soft_delete():
    vault = body("modules/keyvault.bicep", "vault")["properties"]
    assert vault["enableRbacAuthorization"] is True
    assert vault["enablePurgeProtection"] is True
    assert vault["enableSoftDelete"] is True
    assert "accessPolicies" not in vault


def test_no_secret_value_is_provisioned():
    # Secret names only: values are set by the operator (infra/README.md), never in a template.
    for path in bicep_files():
        relative = path.relative_to(INFRA).as_posix()
        assert not resources(relative, "Microsoft.KeyVault/vaults/secrets"), relative


def test_application_insights_has_local_auth_disabled_and_a_workspace():
    properties = body("modules/monitoring.bicep", "appInsights")["properties"]
    assert properties["DisableLocalAuth"] is True
    assert properties["WorkspaceResourceId"] == {
        "operator": {"type": "property_accessor", "operands": {"operand_1": "workspace", "operand_2": "id"}}
    }


@pytest.mark.parametrize("assignment", _role_assignments(), ids=lambda a: f"{a[0]}:{a[1]}")
def test_role_assignment_is_named_from_scope_principal_and_role_and_says_its_role(assignment):
    relative, symbol, role, _, _ = assignment
    assert comment_above(relative, symbol) == role, f"{relative}:{symbol} needs the comment '// {role}'"
    config = body(relative, symbol)
    call = function_call(config["name"])
    assert call and call[0] == "guid", f"{relative}:{symbol}"
    scope_id, principal, role_var = call[1].values()
    scope = config.get("scope")
    if scope:
        assert accessor_path(scope_id) == [scope, "id"], f"{relative}:{symbol}: guid(scope.id, ...)"
    else:  # the module's resource group: guid(resourceGroup().id, ...)
        operands = scope_id["operator"]["operands"]
        assert function_call(operands["operand_1"])[0] == "resource_group", f"{relative}:{symbol}"
        assert operands["operand_2"] == "id", f"{relative}:{symbol}"
    principal_id = accessor_path(config["properties"]["principalId"])
    assert accessor_path(principal) in (principal_id, [principal_id[0], "id"]), f"{relative}:{symbol}"
    assert role_var == function_call(config["properties"]["roleDefinitionId"])[1]["resource_name_1"]


def test_the_identity_holds_only_the_roles_in_the_architecture():
    assignments = _role_assignments()
    identity = {(role, scope) for _, _, role, principal, scope in assignments if principal == "identityPrincipalId"}
    assert identity == IDENTITY_ROLES
    admins = {(role, scope) for _, _, role, principal, scope in assignments if principal == "adminGroupObjectId"}
    assert admins == ADMIN_ROLES
    others = {
        (principal, role, scope)
        for _, _, role, principal, scope in assignments
        if principal not in ("identityPrincipalId", "adminGroupObjectId")
    }
    assert others == OTHER_ROLES


def test_the_identity_reaches_modules_only_as_identity_principal_id():
    for symbol in modules():
        params = body(MAIN, symbol)["params"]
        for name, value in params.items():
            if accessor_path(value) == ["identity", "outputs", "principalId"]:
                assert name == "identityPrincipalId", f"{symbol}.{name}"
        if "identityPrincipalId" in params:
            assert accessor_path(params["identityPrincipalId"]) == ["identity", "outputs", "principalId"], symbol
    writer = modules()["claimsInboxWriter"]
    assert writer["detail"]["path"] == "modules/container-writer.bicep"
    assert module_path(MAIN, "claimsInboxWriter") == "modules/container-writer.bicep"


SECRET_PATTERNS = [
    re.compile(r"AccountKey=", re.IGNORECASE),
    re.compile(r"SharedAccessSignature=", re.IGNORECASE),
    re.compile(r"[?&]sig=[A-Za-z0-9%]", re.IGNORECASE),
    re.compile(r"InstrumentationKey=[0-9a-f-]{8,}", re.IGNORECASE),
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    # An identifier ending in password/secret/apikey given a literal (not ${...} or @Microsoft.KeyVault(...)).
    re.compile(r"\b\w*(?:password|secret|apikey)['\"]?\s*[:=]\s*['\"](?![$@{])[^'\"]+['\"]", re.IGNORECASE),
    re.compile(r"\b[A-Za-z0-9+/]{86}==(?![A-Za-z0-9+/])"),  # a storage account key's shape
]


@pytest.mark.parametrize(
    "path",
    sorted(p for p in INFRA.rglob("*") if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".md"),
    ids=lambda p: p.relative_to(INFRA).as_posix(),
)
def test_no_secret_value_in_any_infra_file(path):
    content = path.read_text(encoding="utf-8")
    for pattern in SECRET_PATTERNS:
        match = pattern.search(content)
        assert not match, f"{path}: {match.group(0) if match else ''}"


def test_secure_parameters_have_no_default():
    for path in bicep_files():
        relative = path.relative_to(INFRA).as_posix()
        for name, parameter in template(relative).get("parameters", {}).items():
            if any(d["type"] == "secure" for d in parameter["decorators"]):
                assert parameter.get("default") in (None, ""), f"{relative}: {name}"


def test_the_parameters_file_takes_every_value_from_the_azd_environment():
    parameters = json.loads((INFRA / "main.parameters.json").read_text(encoding="utf-8"))["parameters"]
    declared = template(MAIN)["parameters"]
    assert set(parameters) <= set(declared), "main.parameters.json names a parameter main.bicep does not have"
    for name, parameter in declared.items():
        if parameter.get("default") is None:
            assert name in parameters, f"{name} has no default and no value in main.parameters.json"
    for name, entry in parameters.items():
        assert re.fullmatch(r"\$\{[A-Z][A-Z0-9_]*(=[^}]*)?\}", entry["value"]), f"{name}: {entry['value']}"
        assert not re.search(r"secret|password", name, re.IGNORECASE), f"{name}: secrets go to Key Vault"
