"""Ledger retention: runs older than LEDGER_RETENTION_DAYS are deleted with their items, history and mails.

Table storage has no lifecycle rules, so the app keeps its own ledger's retention. Raw input and reports are
blobs, and their retention is the storage account's lifecycle policy (infra/).
"""

from datetime import UTC, datetime, timedelta

import azure.functions as func

from shared import ledger
from shared.events import Event, emit
from shared.logs import get_logger, log_context, redacted_errors
from shared.pipeline import Chain
from shared.settings import get_settings

bp = func.Blueprint()
_log = get_logger("ks.operations.ledger_retention")


@bp.function_name("ledger_retention")
@bp.timer_trigger(arg_name="timer", schedule="%LEDGER_RETENTION_SCHEDULE%", run_on_startup=False, use_monitor=True)
def ledger_retention(timer: func.TimerRequest) -> None:
    """Timer (LEDGER_RETENTION_SCHEDULE): deletes the runs (and daily records) older than the retention."""
    with redacted_errors():
        purge(datetime.now(UTC) - timedelta(days=get_settings().ledger_retention_days))


def purge(cutoff: datetime) -> int:
    """Deletes every automation's runs that started before `cutoff`; returns how many runs went."""
    runs = 0
    for automation in sorted(Chain.registry):
        with log_context(automation=automation):
            for run in ledger.expired_runs(automation, cutoff):
                rows = ledger.delete_run(run)
                runs += 1
                emit(Event.RUN_PURGED, automation=automation, run_id=run.run_id, rows=rows)
    for table in sorted(ledger.DATED_TABLES):
        ledger.purge_dated_table(table, cutoff.date())
    _log.info("retention: %d runs older than %s deleted", runs, cutoff.date())
    return runs
