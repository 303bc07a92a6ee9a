"""CKV_KS_1: a storage account must refuse shared-key access (checkov has no such check for Bicep)."""

from typing import Any

from checkov.bicep.checks.resource.base_resource_check import BaseResourceCheck
from checkov.common.models.enums import CheckCategories, CheckResult


class StorageSharedKeyAccessDisabled(BaseResourceCheck):
    """Passes only when `properties.allowSharedKeyAccess` is literally false: absent means shared keys work."""

    def __init__(self) -> None:
        super().__init__(
            name="Ensure storage accounts disallow shared key access (allowSharedKeyAccess: false)",
            id="CKV_KS_1",
            categories=(CheckCategories.IAM,),
            supported_resources=("Microsoft.Storage/storageAccounts",),
        )

    def scan_resource_conf(self, conf: dict[str, Any]) -> CheckResult:
        """The resource's config as pycep parsed it; anything but a literal false fails."""
        self.evaluated_keys = ["properties/allowSharedKeyAccess"]
        properties = conf.get("properties")
        if isinstance(properties, dict) and properties.get("allowSharedKeyAccess") is False:
            return CheckResult.PASSED
        return CheckResult.FAILED


check = StorageSharedKeyAccessDisabled()
