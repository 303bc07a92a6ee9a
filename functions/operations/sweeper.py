"""The sweeper: the platform watching itself - heartbeat, poison depth, stalled runs, stuck items, lost cases,
scheduled runs that did not happen and inbox blobs whose event was lost."""

from datetime import UTC, datetime, timedelta

import azure.functions as func
from azure.core.exceptions import ResourceNotFoundError

from shared import handoff, ledger, storage
from shared.events import Event, emit
from shared.inbox import PICKUP_QUEUE, Inbox
from shared.logs import get_logger, log_context, redacted_errors
from shared.mail import MAIL_QUEUE
from shared.outcomes import ItemStatus
from shared.pipeline import Chain, emit_outcomes
from shared.schedules import Schedule, previous_occurrence
from shared.settings import get_settings

bp = func.Blueprint()
_log = get_logger("ks.operations.sweeper")
STUCK = "FASTLAAST"
STUCK_TEXT = (
    "Sagen har ikke bevæget sig i over {hours} timer, og automatikken har opgivet den. "
    "Den skal behandles manuelt; driften er underrettet."
)
#: A handed-off item still without its case this long after it ended has lost its hand-off: ask again.
CASE_OVERDUE = timedelta(minutes=30)


@bp.function_name("sweeper")
@bp.timer_trigger(arg_name="timer", schedule="%SWEEPER_SCHEDULE%", run_on_startup=False, use_monitor=True)
def sweeper(timer: func.TimerRequest) -> None:
    """Timer (SWEEPER_SCHEDULE): poison depths, runs, missed schedules, lost inbox events; heartbeat last."""
    with redacted_errors():
        now = datetime.now(UTC)
        failed = 0
        for task in (report_poison_depths, sweep_runs, report_missed_schedules, pick_up_orphans):
            try:
                failed += task(now)
            except Exception:  # one failing task must not keep the others (or the heartbeat) from running
                failed += 1
                _log.exception("sweeper task %s failed", task.__name__)
        # Last, and saying whether the sweep succeeded: a heartbeat must not hide a sweeper that fails.
        emit(Event.HEARTBEAT, level=40 if failed else 20, past_due=int(timer.past_due), failures=failed)
        if failed:
            raise RuntimeError(f"{failed} parts of the sweep failed; see the log")


def platform_queues() -> list[str]:
    """Every work queue of the registered chains and the platform's own queues."""
    own = {handoff.HANDOFF_QUEUE, PICKUP_QUEUE, MAIL_QUEUE}
    return sorted({q for chain in Chain.registry.values() for q in chain.queues} | own)


def report_poison_depths(now: datetime) -> int:
    """One event per poison queue with its depth (Storage metrics have no per-queue dimension); 0 failures."""
    for name in platform_queues():
        poison = f"{name}-poison"
        try:
            depth = storage.queue_service().get_queue_client(poison).get_queue_properties().approximate_message_count
        except ResourceNotFoundError:  # the host creates a poison queue with its first message
            depth = 0
        emit(Event.POISON_QUEUE_DEPTH, level=40 if depth else 20, queue=poison, depth=depth)
    return 0


def sweep_runs(now: datetime) -> int:
    """Sweeps every open run, each on its own; returns how many could not be swept."""
    limit = timedelta(minutes=get_settings().stuck_after_minutes)
    failed = 0
    for run_id in ledger.open_run_ids():
        try:
            sweep_run(run_id, now, limit)
        except Exception:  # one broken run must not keep the others from being swept
            failed += 1
            _log.exception("could not sweep run %s", run_id)
    return failed


def report_missed_schedules(now: datetime) -> int:
    """A ScheduleMissed event for each timer-started automation with no run since its last due time; 0 failures."""
    grace = timedelta(minutes=get_settings().schedule_grace_minutes)
    for schedule in Schedule.registry.values():
        due = previous_occurrence(schedule.expression, now - grace)
        if schedule.last_run is not None:
            last = schedule.last_run()
        else:  # the timer fires at `due`; its run's id carries the time it started, a moment later
            newest = ledger.newest_runs(schedule.automation, 1)
            last = newest[0].started_at if newest else None
        if last is None or last < due:
            emit(Event.SCHEDULE_MISSED, level=40, automation=schedule.automation, due=due.isoformat())
    return 0


def pick_up_orphans(now: datetime) -> int:
    """Inbox blobs without a run after the grace period go to the pick-up queue; 0 failures."""
    settings = get_settings()
    grace = timedelta(minutes=settings.inbox_grace_minutes)
    lookback = timedelta(hours=settings.inbox_lookback_hours)
    for inbox in Inbox.registry.values():
        for orphan in inbox.orphans(now, grace, lookback):
            storage.queue(PICKUP_QUEUE).send_message(orphan.model_dump_json())
            _log.warning("an inbox blob of %s has no run after %s; picking it up", inbox.automation, grace)
    return 0


def sweep_run(run_id: str, now: datetime, limit: timedelta) -> None:
    """A stalled intake is reported; a run that has not moved for `limit` hands its pending items to people."""
    run = ledger.get_run(run_id)
    if run is None:
        return
    with log_context(automation=run.automation, run_id=run_id):
        if run.status is ledger.RunStatus.INTAKE:
            if now - run.started_at >= limit:
                emit(Event.RUN_STALLED, level=40, automation=run.automation, run_id=run_id, status=run.status.value)
            return
        ask_again_for_lost_cases(run, list(ledger.item_rows(run, ItemStatus.HANDED_OFF)), now)
        if now - ledger.last_activity(run) >= limit:  # only a run that stopped moving has its pending rows read
            pending = list(ledger.item_rows(run, ItemStatus.PENDING))
            if pending:
                hand_off_stuck_items(run, pending, limit)


def ask_again_for_lost_cases(run: ledger.Run, rows: list[dict], now: datetime) -> None:
    """Items handed off long ago that still have no case lost their hand-off message: it is sent again."""
    overdue: dict[int, list[str]] = {}
    for row in rows:
        ended = row.get("EndedAt")
        if (
            row["Status"] == ItemStatus.HANDED_OFF.value
            and not row.get("CaseNumber")
            and ended
            and ended < now - CASE_OVERDUE
        ):
            overdue.setdefault(row["Bucket"], []).append(row["ItemId"])
    for bucket, ids in overdue.items():
        handoff.request(run.automation, run.run_id, bucket, ids)
        emit(
            Event.OPERATOR_ALERT,
            level=40,
            automation=run.automation,
            run_id=run.run_id,
            reason_code="SAG_MANGLER",
            items=len(ids),
        )


def hand_off_stuck_items(run: ledger.Run, rows: list[dict], limit: timedelta) -> int:
    """Ends a run's pending items as FASTLAAST, keeping where they stood (the first end still wins)."""
    hours = int(limit.total_seconds() // 3600)
    stuck: dict[int, list[dict]] = {}
    for row in rows:
        if row["Status"] == ItemStatus.PENDING.value:
            stuck.setdefault(row["Bucket"], []).append(row)
    for bucket, pending in stuck.items():
        ids = [row["ItemId"] for row in pending]
        handoff.request(run.automation, run.run_id, bucket, ids)
        ended = [
            ledger.ItemRow(
                run_id=run.run_id,
                bucket=bucket,
                item_id=row["ItemId"],
                status=ItemStatus.HANDED_OFF,
                step=row.get("Step", ""),
                attempts=row.get("Attempts", 0),
                reason_code=STUCK,
                reason_text=STUCK_TEXT.format(hours=hours),
                config_version=run.config_version,
            )
            for row in pending
        ]
        ledger.end_items(
            ended,
            ledger.chunk_rows(run.run_id, bucket, ids),
            committed=lambda done: emit_outcomes(run.automation, done),
        )
    count = sum(len(pending) for pending in stuck.values())
    emit(Event.OPERATOR_ALERT, level=40, automation=run.automation, run_id=run.run_id, reason_code=STUCK, items=count)
    _log.error("%d items that had not moved for over %d hours were handed to people", count, hours)
    return count
