"""The sweeper: the platform watching itself - heartbeat, poison depth, stalled runs, stuck items."""

from datetime import UTC, datetime, timedelta

import azure.functions as func

from shared import handoff, ledger, storage
from shared.events import Event, emit
from shared.logs import get_logger, log_context, redacted_errors
from shared.outcomes import ItemStatus
from shared.pipeline import Chain, emit_outcomes
from shared.settings import get_settings

bp = func.Blueprint()
_log = get_logger("ks.operations.sweeper")
STUCK = "FASTLAAST"
STUCK_TEXT = (
    "Sagen har ikke bevæget sig i over {hours} timer, og automatikken har opgivet den. "
    "Den skal behandles manuelt; driften er underrettet."
)


@bp.function_name("sweeper")
@bp.timer_trigger(arg_name="timer", schedule="%SWEEPER_SCHEDULE%", run_on_startup=False, use_monitor=True)
def sweeper(timer: func.TimerRequest) -> None:
    """Timer (SWEEPER_SCHEDULE): heartbeat, poison-queue depths, stalled intakes, stuck items to people."""
    with redacted_errors():
        emit(Event.HEARTBEAT, past_due=int(timer.past_due))
        report_poison_depths()
        sweep_runs(datetime.now(UTC))


def report_poison_depths() -> dict[str, int]:
    """One event per poison queue with its depth (Storage metrics have no per-queue dimension)."""
    depths = {}
    for name in sorted({q for chain in Chain.registry.values() for q in chain.queues} | {handoff.HANDOFF_QUEUE}):
        poison = f"{name}-poison"
        depth = storage.queue_service().get_queue_client(poison).get_queue_properties().approximate_message_count
        depths[poison] = depth
        emit(Event.POISON_QUEUE_DEPTH, level=40 if depth else 20, queue=poison, depth=depth)
    return depths


def sweep_runs(now: datetime) -> None:
    """Open runs older than STUCK_AFTER_MINUTES: stalled intakes are reported, stuck items go to people."""
    limit = timedelta(minutes=get_settings().stuck_after_minutes)
    for run_id in ledger.open_run_ids():
        run = ledger.get_run(run_id)
        if run is None or now - run.started_at < limit:
            continue
        with log_context(automation=run.automation, run_id=run_id):
            if run.status is ledger.RunStatus.INTAKE:
                emit(Event.RUN_STALLED, level=40, automation=run.automation, run_id=run_id, status=run.status.value)
                continue
            hand_off_stuck_items(run, limit)


def hand_off_stuck_items(run: ledger.Run, limit: timedelta) -> int:
    """Ends a run's pending items as FASTLAAST (first end still wins) and re-asks for cases not yet created."""
    hours = int(limit.total_seconds() // 3600)
    stuck: dict[int, list[str]] = {}
    awaiting_case: dict[int, list[str]] = {}
    for row in ledger.item_rows(run):
        if row["Status"] == ItemStatus.PENDING.value:
            stuck.setdefault(row["Bucket"], []).append(row["ItemId"])
        elif row["Status"] == ItemStatus.HANDED_OFF.value and not row.get("CaseNumber"):
            awaiting_case.setdefault(row["Bucket"], []).append(row["ItemId"])
    for bucket, ids in awaiting_case.items():  # their hand-off message was lost or poisoned: ask again
        handoff.request(run.automation, run.run_id, bucket, ids)
    for bucket, ids in stuck.items():
        handoff.request(run.automation, run.run_id, bucket, ids)
        rows = [
            ledger.ItemRow(
                run_id=run.run_id,
                bucket=bucket,
                item_id=item_id,
                status=ItemStatus.HANDED_OFF,
                step="sweeper",
                reason_code=STUCK,
                reason_text=STUCK_TEXT.format(hours=hours),
                config_version=run.config_version,
            )
            for item_id in ids
        ]
        ledger.end_items(
            rows,
            ledger.chunk_rows(run.run_id, bucket, ids),
            committed=lambda ended: emit_outcomes(run.automation, ended),
        )
    count = sum(len(ids) for ids in stuck.values())
    if count:
        emit(
            Event.OPERATOR_ALERT, level=40, automation=run.automation, run_id=run.run_id, reason_code=STUCK, items=count
        )
        _log.error("%d items stuck for over %d hours were handed to people", count, hours)
    return count
