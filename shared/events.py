"""Custom events that mirror the ledger for the portal (workbook, alerts); never personal data.

An event is a log record on the `ks.events` logger carrying `microsoft.custom_event.name` and its dimensions:
the Azure Monitor exporter sends such a record as a `customEvents` row (not a trace), and logs are not sampled,
so the workbook's counts match the ledger's. The names here are the contract the workbook, the alert rules and
`devhost manifest` use.
"""

from enum import StrEnum

from shared.logs import get_logger

_log = get_logger("ks.events")
#: The log-record attribute that makes the Azure Monitor exporter send a record as a custom event.
CUSTOM_EVENT_ATTRIBUTE = "microsoft.custom_event.name"


class Event(StrEnum):
    """Every custom event name the app emits."""

    RUN_STARTED = "RunStarted"
    RUN_COMPLETED = "RunCompleted"
    RUN_UNRECONCILED = "RunUnreconciled"
    ITEM_OUTCOME = "ItemOutcome"
    ITEM_RETRY_SCHEDULED = "ItemRetryScheduled"
    OPERATOR_ALERT = "OperatorAlert"
    CHUNK_COMPLETED = "ChunkCompleted"
    HEARTBEAT = "Heartbeat"
    POISON_QUEUE_DEPTH = "PoisonQueueDepth"
    RUN_STALLED = "RunStalled"
    SCHEDULE_MISSED = "ScheduleMissed"
    INBOX_PICKUP = "InboxBlobPickedUp"
    MAIL_SENT = "MailSent"
    REPORT_WRITTEN = "ReportWritten"
    RUN_PURGED = "RunPurged"


def emit(event: Event, level: int = 20, **dimensions: str | int) -> None:
    """Emits one custom event with its dimensions (automation, run id, item id, outcome, reason code)."""
    extra = {CUSTOM_EVENT_ATTRIBUTE: event.value, "custom_event": event.value, **dimensions}
    _log.log(level, "%s %s", event.value, dimensions, extra=extra)
