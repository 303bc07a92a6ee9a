"""Custom events that mirror the ledger for the portal (workbook, alerts); never personal data.

Until telemetry is wired to Application Insights these are structured log records on the `ks.events`
logger carrying `custom_event` and the dimensions; the names here are the contract the workbook, the alert
rules and `devhost manifest` use.
"""

from enum import StrEnum

from shared.logs import get_logger

_log = get_logger("ks.events")


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


def emit(event: Event, level: int = 20, **dimensions: str | int) -> None:
    """Emits one custom event with its dimensions (automation, run id, item id, outcome, reason code)."""
    _log.log(level, "%s %s", event.value, dimensions, extra={"custom_event": event.value, **dimensions})
