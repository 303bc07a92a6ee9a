"""The run closer: reconciles open runs against their input, closes those that are complete, asks for their mail."""

from datetime import UTC, datetime

import azure.functions as func

from shared import ledger, mail
from shared.events import Event, emit
from shared.logs import get_logger, log_context, redacted_errors
from shared.pipeline import Chain

bp = func.Blueprint()
_log = get_logger("ks.operations.run_closer")


@bp.function_name("run_closer")
@bp.timer_trigger(arg_name="timer", schedule="%RUN_CLOSER_SCHEDULE%", run_on_startup=False, use_monitor=True)
def run_closer(timer: func.TimerRequest) -> None:
    """Timer (RUN_CLOSER_SCHEDULE): reconciles every open run and closes those whose items all ended."""
    if timer.past_due:
        _log.warning("run closer is running late")
    failed = 0
    for run_id in ledger.open_run_ids():
        try:
            with redacted_errors():
                close_run(run_id)
        except Exception:  # one broken run must not keep the others from closing
            failed += 1
            _log.exception("could not reconcile run %s", run_id)
            emit(
                Event.OPERATOR_ALERT,
                level=40,
                automation=run_id.split(".", 1)[0],
                run_id=run_id,
                reason_code="LUKNING_FEJLEDE",
            )
    if failed:
        raise RuntimeError(f"{failed} runs could not be reconciled; see the alerts")


def close_run(run_id: str) -> ledger.Run | None:
    """Reconciles one run's items with its input; saves counts, totals, missing items and the new status."""
    run = ledger.get_run(run_id)
    if run is None or run.status is ledger.RunStatus.INTAKE:
        return run
    if run.status is ledger.RunStatus.COMPLETE:
        # Closed before, but still in the index: the closer died between the two writes.
        ledger.forget_open_run(run_id)
        return run
    with log_context(automation=run.automation, run_id=run_id):
        rows = ledger.item_rows(run, columns=ledger.RECONCILE_COLUMNS)
        result = ledger.reconcile(run.expected_items, run.expected_amount, rows)
        status = result.status
        updated = run.model_copy(
            update={
                "status": status,
                "counts": result.counts,
                "reasons": result.reasons,
                "amount_total": result.amount_total,
                "missing": result.missing,
                "missing_count": result.missing_count,
                "problems": result.problems,
                "ended_at": datetime.now(UTC) if status is ledger.RunStatus.COMPLETE else None,
            }
        )
        if updated.model_dump(exclude={"ended_at"}) == run.model_dump(exclude={"ended_at"}):
            return run
        if status is ledger.RunStatus.COMPLETE:
            chain = Chain.registry.get(run.automation)
            if chain is not None and chain.on_complete is not None:
                chain.on_complete(updated)  # the automation's own closing (a batch report): idempotent
            # Before the run is saved complete, so a crash in between cannot lose its receipts; the mailer
            # sends each recipient's mail once however often it is asked.
            mail.request(run.automation, run_id)
        ledger.save_run(updated)
        if status is ledger.RunStatus.COMPLETE:
            emit(Event.RUN_COMPLETED, automation=run.automation, run_id=run_id, items=sum(result.counts.values()))
            _log.info("run complete: %s", {k.value: v for k, v in result.counts.items()})
        elif status is ledger.RunStatus.UNRECONCILED:
            emit(Event.RUN_UNRECONCILED, level=40, automation=run.automation, run_id=run_id)
            _log.error("run does not reconcile with its input: %s", "; ".join(result.problems))
        return updated
