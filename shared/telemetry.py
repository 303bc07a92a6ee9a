"""Application Insights through OpenTelemetry, switched on only where a connection string is configured.

In Azure local authentication is off, so the exporter authenticates with the app's user-assigned managed
identity (its client id is in `APPLICATIONINSIGHTS_AUTHENTICATION_STRING`, which the host reads too). host.json
sets `telemetryMode: OpenTelemetry`, so the host does not forward worker logs as well: each record is ingested
once, by this exporter. Custom events are log records that carry `microsoft.custom_event.name` (see
`shared.events`); the exporter turns them into `customEvents`, and logs are not trace-sampled
(`enable_trace_based_sampling_for_logs=False`), so the workbook's counts are complete.
"""

import logging
from typing import TYPE_CHECKING, Any

from shared.personal_data import redact
from shared.settings import TelemetrySettings

if TYPE_CHECKING:  # the SDK is imported only when telemetry is configured
    from opentelemetry.context import Context
    from opentelemetry.sdk.trace import Span, SpanProcessor

#: Every logger of this app lives under this name; only these records are exported.
APP_LOGGER = "ks"
_configured: list[bool] = []


def authentication_client_id(authentication_string: str | None) -> str | None:
    """The managed identity's client id in `ClientId=<id>;Authorization=AAD`, if the string says AAD."""
    if not authentication_string:
        return None
    parts = dict(part.split("=", 1) for part in authentication_string.split(";") if "=" in part)
    fields = {key.strip().lower(): value.strip() for key, value in parts.items()}
    if fields.get("authorization", "").upper() != "AAD":
        raise ValueError("APPLICATIONINSIGHTS_AUTHENTICATION_STRING must say Authorization=AAD")
    return fields.get("clientid")


def redacting_span_processor() -> "SpanProcessor":
    """A span processor that removes anything CPR-shaped from a span's name and attributes as it starts.

    Logs are redacted where records are made (`shared.logs`), but spans do not pass through logging: the HTTP
    instrumentations record every URL they call as a dependency, and a connector may have to put a personal id
    in a query string (Opus Debitor looks a payee up by CPR). Those attributes are set when the span starts.
    Built on first use: the OpenTelemetry SDK is imported only where telemetry is configured.
    """
    from opentelemetry.sdk.trace import SpanProcessor

    class RedactingSpans(SpanProcessor):
        def on_start(self, span: "Span", parent_context: "Context | None" = None) -> None:
            span.update_name(redact(span.name))
            for key, value in dict(span.attributes or {}).items():
                if isinstance(value, str) and redact(value) != value:
                    span.set_attribute(key, redact(value))

    return RedactingSpans()


def configure(credential: Any = None) -> bool:
    """Exports this app's logs and custom events to Application Insights when configured; True if it did."""
    settings = TelemetrySettings()
    connection = settings.applicationinsights_connection_string
    if _configured or connection is None or not connection.get_secret_value():
        return bool(_configured)
    # Imported here: the distro costs import time that an unconfigured process (devhost, tests) need not pay.
    from azure.identity import ManagedIdentityCredential
    from azure.monitor.opentelemetry import configure_azure_monitor

    try:
        if credential is None:
            credential = ManagedIdentityCredential(
                client_id=authentication_client_id(settings.applicationinsights_authentication_string)
            )
        configure_azure_monitor(
            connection_string=connection.get_secret_value(),
            credential=credential,
            logger_name=APP_LOGGER,
            enable_live_metrics=False,
            enable_trace_based_sampling_for_logs=False,
            span_processors=[redacting_span_processor()],
        )
    except Exception:
        # The automations must still run; the missing heartbeat events raise the alarm in the portal.
        logging.getLogger(APP_LOGGER).exception("telemetry could not be configured; running without it")
        return False
    logging.getLogger(APP_LOGGER).setLevel(logging.INFO)
    _configured.append(True)
    return True


def flush() -> None:
    """Sends whatever the exporter still holds (a short-lived process, a test)."""
    if not _configured:
        return
    from opentelemetry._logs import get_logger_provider

    provider = get_logger_provider()
    if hasattr(provider, "force_flush"):
        provider.force_flush()
