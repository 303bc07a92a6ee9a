"""One typed settings object, read from app settings (Azure) or the environment (locally)."""

from functools import lru_cache

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

#: Name of the app's own storage connection (app settings `WorkStorage` or `WorkStorage__*`).
WORK_CONNECTION = "WorkStorage"


class TelemetrySettings(BaseSettings):
    """The settings telemetry needs at import, before anything logs; all optional, so reading them cannot fail."""

    model_config = SettingsConfigDict(extra="ignore", hide_input_in_errors=True, populate_by_name=True)

    applicationinsights_connection_string: SecretStr | None = Field(
        default=None, description="Application Insights connection string; telemetry is exported only when set."
    )
    applicationinsights_authentication_string: str | None = Field(
        default=None, description="ClientId=<managed identity>;Authorization=AAD (local auth is off in Azure)."
    )


class Settings(TelemetrySettings):
    """Every setting the code reads; `local.settings.example.json` documents each one."""

    work_storage: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices(WORK_CONNECTION, "WORK_STORAGE"),
        description="Connection string of the app's work storage (locally: Azurite).",
    )
    # The identity-based form of the same connection, as the Functions host reads it (Azure: no keys at all).
    work_storage_blob_uri: str | None = Field(
        default=None,
        validation_alias=AliasChoices(f"{WORK_CONNECTION}__blobServiceUri"),
        description="Blob endpoint of the work storage when it is reached with a managed identity.",
    )
    work_storage_queue_uri: str | None = Field(
        default=None,
        validation_alias=AliasChoices(f"{WORK_CONNECTION}__queueServiceUri"),
        description="Queue endpoint of the work storage (identity-based connection).",
    )
    work_storage_table_uri: str | None = Field(
        default=None,
        validation_alias=AliasChoices(f"{WORK_CONNECTION}__tableServiceUri"),
        description="Table endpoint of the work storage (identity-based connection).",
    )
    work_storage_credential: str | None = Field(
        default=None,
        validation_alias=AliasChoices(f"{WORK_CONNECTION}__credential"),
        description="'managedidentity' for the identity-based connection.",
    )
    work_storage_client_id: str | None = Field(
        default=None,
        validation_alias=AliasChoices(f"{WORK_CONNECTION}__clientId"),
        description="Client id of the user-assigned managed identity that reaches the work storage.",
    )
    pseudonym_key: SecretStr = Field(
        description="Key for the keyed hash (HMAC-SHA256) that turns personal ids into references."
    )
    pseudonym_key_version: str = Field(default="1", description="Version of pseudonym_key.")
    pseudonym_previous_keys: dict[str, SecretStr] = Field(
        default_factory=dict, description="Earlier pseudonym keys by version (JSON), so older items are still found."
    )
    chunk_size: int = Field(default=500, ge=1, le=2000, description="Items per queue message.")
    max_attempts: int = Field(default=5, ge=1, le=20, description="Attempts before TEKNISK_FEJL.")
    max_dequeue_count: int = Field(
        default=5, ge=1, description="host.json's queues.maxDequeueCount: a chunk's last delivery is split."
    )
    step_time_budget_seconds: int = Field(
        default=300, ge=1, description="Time a step spends on one chunk before the rest continues in a new message."
    )
    backoff_base_seconds: int = Field(default=30, ge=1, description="First retry delay.")
    backoff_max_seconds: int = Field(default=3600, ge=1, description="Longest retry delay.")
    items_per_bucket: int = Field(default=5000, ge=100, description="Items per ledger partition.")
    run_closer_schedule: str = Field(default="0 */1 * * * *", description="NCRONTAB (seconds first) of the run closer.")
    sweeper_schedule: str = Field(default="0 */5 * * * *", description="NCRONTAB of the sweeper.")
    stuck_after_minutes: int = Field(default=240, ge=1, description="Age of an open run whose pending items are stuck.")
    schedule_grace_minutes: int = Field(
        default=10, ge=1, description="Minutes after a scheduled time by which its run must exist, else reported."
    )
    inbox_grace_minutes: int = Field(
        default=15, ge=1, description="Minutes an inbox blob may wait for its run before the sweeper picks it up."
    )
    inbox_lookback_hours: int = Field(
        default=72, ge=1, description="How far back the sweeper looks for inbox blobs without a run."
    )
    ledger_retention_days: int = Field(
        default=1826, ge=30, description="Days the ledger keeps a run (its items, history, mails): 5 years."
    )
    ledger_retention_schedule: str = Field(
        default="0 15 2 * * *", description="NCRONTAB (UTC) of the ledger retention timer."
    )
    code_version: str = Field(default="dev", description="Deployed code version (set by deploy).")
    rules_file: str | None = Field(
        default=None, description="Path of the versioned rules file (default config/rules.json)."
    )
    servicenow_instance_url: str | None = Field(default=None, description="ServiceNow instance base URL.")
    servicenow_client_id: str | None = Field(default=None, description="OAuth client id for ServiceNow.")
    servicenow_client_secret: SecretStr | None = Field(default=None, description="OAuth client secret.")
    servicenow_timeout_seconds: float = Field(default=30.0, gt=0, description="Timeout per ServiceNow request.")
    handoff_table: str = Field(
        default="sc_task", description="ServiceNow table of the tasks that hand items to people."
    )
    handoff_assignment_group: str = Field(
        default="Koncernservice Økonomi", description="Assignment group of hand-off tasks."
    )
    cvr_base_url: str | None = Field(default=None, description="Base URL of the CVR register's Elasticsearch API.")
    cvr_username: str | None = Field(default=None, description="User of the CVR API (basic auth).")
    cvr_password: SecretStr | None = Field(default=None, description="Its password (Key Vault).")
    cvr_timeout_seconds: float = Field(default=20.0, gt=0, description="Timeout per CVR request.")
    kvantum_base_url: str | None = Field(default=None, description="Base URL of Kvantum's vendor API.")
    kvantum_username: str | None = Field(default=None, description="Kvantum integration user (basic auth).")
    kvantum_password: SecretStr | None = Field(default=None, description="Its password (Key Vault).")
    kvantum_timeout_seconds: float = Field(default=30.0, gt=0, description="Timeout per Kvantum request.")
    cvr_concurrency: int = Field(default=4, ge=1, le=50, description="CVR calls in flight across all instances.")
    kvantum_concurrency: int = Field(
        default=2, ge=1, le=50, description="Kvantum calls in flight across all instances."
    )
    vendor_intake_schedule: str = Field(
        default="0 */15 * * * 1-5", description="NCRONTAB (UTC) of the new-supplier intake from ServiceNow."
    )
    vendor_control_list_schedule: str = Field(
        default="0 30 5 * * *", description="NCRONTAB (UTC) of the daily list of vendors created the day before."
    )
    vendor_catalog_item: str = Field(
        default="nyleverandoer", description="sys_id of the ServiceNow catalog item 'new supplier'."
    )
    opus_debitor_base_url: str | None = Field(
        default=None, description="Base URL of Opus Debitor's receivables service (SAP Gateway)."
    )
    opus_debitor_username: str | None = Field(default=None, description="Opus Debitor integration user (basic auth).")
    opus_debitor_password: SecretStr | None = Field(default=None, description="Its password (Key Vault).")
    opus_debitor_timeout_seconds: float = Field(default=30.0, gt=0, description="Timeout per Opus Debitor request.")
    opus_debitor_concurrency: int = Field(
        default=4, ge=1, le=50, description="Opus Debitor look-ups in flight across all instances."
    )
    claims_fallback_recipient: str = Field(
        default="kreditorer@kk.dk",
        description="Who is told about a claims file when its uploader is not recorded (blob metadata indsendt_af).",
    )
    chart_of_accounts_cache_seconds: int = Field(
        default=300,
        ge=0,
        description="How long an instance reuses Kvantum's chart of accounts before reading it again.",
    )
    graph_authority: str | None = Field(
        default=None, description="Entra ID authority for Graph tokens: https://login.microsoftonline.com/<tenant>."
    )
    graph_base_url: str = Field(default="https://graph.microsoft.com/v1.0", description="Microsoft Graph base URL.")
    graph_client_id: str | None = Field(default=None, description="Client id of the app registration that sends mail.")
    graph_client_secret: SecretStr | None = Field(default=None, description="Its client secret (Key Vault).")
    graph_timeout_seconds: float = Field(default=30.0, gt=0, description="Timeout per Graph request.")
    mail_sender: str | None = Field(default=None, description="Mailbox (UPN) that receipts and notices are sent from.")


#: An app setting that still reads like this is a Key Vault reference the platform could not resolve.
_UNRESOLVED_REFERENCE = "@Microsoft.KeyVault("


def _unresolved(settings: BaseSettings) -> list[str]:
    """Names of settings whose value is an unresolved Key Vault reference."""
    names = []
    for field, info in type(settings).model_fields.items():
        value = getattr(settings, field)
        text = value.get_secret_value() if isinstance(value, SecretStr) else value
        if isinstance(text, str) and text.strip().startswith(_UNRESOLVED_REFERENCE):
            alias = info.validation_alias
            names.append(str(alias.choices[0]) if isinstance(alias, AliasChoices) else field.upper())
    return names


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Settings of this process, read once on first use (never at import)."""
    settings = Settings()  # type: ignore[call-arg]
    unresolved = _unresolved(settings)
    if unresolved:
        # Using the reference's text as a key or password would fail later and obscurely (or, for the
        # pseudonym key, silently make references nobody can look up again).
        raise RuntimeError(f"Key Vault-referencer er ikke løst (hemmeligheden mangler?): {', '.join(unresolved)}")
    return settings
