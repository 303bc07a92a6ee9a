"""Automation 1, "Oprettelse af ny leverandør i Kvantum": the trigger handlers of its chain.

intake (timer) -> validate -> create -> close (queues); the daily control list (timer). The work is in
`steps`, the rules in `rules`; a hand-off goes through the platform's `handoff` function.
"""

from datetime import UTC, datetime, timedelta

import azure.functions as func

from functions.vendor_onboarding import control_list, steps
from functions.vendor_onboarding.request import REQUEST_FIELDS, VARIABLES, item_data
from shared import ledger, storage
from shared.connectors.servicenow import servicenow
from shared.events import Event, emit
from shared.logs import get_logger, log_context, redacted_errors
from shared.models import BoundaryModel
from shared.pipeline import WORK_CONTAINER, Chain, NewItem
from shared.schedules import Schedule
from shared.settings import WORK_CONNECTION, get_settings

AUTOMATION = "vendor_onboarding"
chain = Chain(AUTOMATION, ["validate", "create", "close"])
Schedule(AUTOMATION, "vendor_intake_schedule")
Schedule("vendor_control_list", "vendor_control_list_schedule", last_run=control_list.last_written)
bp = func.Blueprint()
_log = get_logger("ks.vendor_onboarding")
#: A request claimed by an intake that died before creating its run is taken by a later intake after this.
ABANDONED_AFTER = timedelta(minutes=10)
#: A run still in `intake` this long after its tick was interrupted: the next tick finishes it.
RESUME_AFTER = timedelta(minutes=2)


@bp.function_name("vendor_intake")
@bp.timer_trigger(arg_name="timer", schedule="%VENDOR_INTAKE_SCHEDULE%", run_on_startup=False, use_monitor=True)
def vendor_intake(timer: func.TimerRequest) -> None:
    """Timer (VENDOR_INTAKE_SCHEDULE): takes open new-supplier requests into one run and sets them in progress."""
    with redacted_errors(), log_context(automation=AUTOMATION, step="intake"):
        take_open_requests(datetime.now(UTC))


def take_open_requests(now: datetime) -> str:
    """Reads every open request (all pages, then acts), claims the new ones, opens a run; returns its id."""
    resume_interrupted_intakes(now)
    settings = get_settings()
    client = servicenow()
    records = client.query(
        steps.REQUEST_TABLE,
        f"active=true^cat_item={settings.vendor_catalog_item}^state=1",
        [*REQUEST_FIELDS, *(f"variables.{name}" for name in VARIABLES)],
    )
    run_key = f"intake@{now.isoformat()}"
    run_id = ledger.new_run_id(AUTOMATION, now, run_key)
    # One claim per request: a request already taken by an earlier run is never taken twice.
    taken = [
        record
        for record in records
        if ledger.claim_source(AUTOMATION, f"request:{record['number']}", run_id, abandoned_after=ABANDONED_AFTER)
        == run_id
    ]
    # What was read is kept before the run is opened: an intake interrupted after this is finished from it.
    snapshot = IntakeSnapshot(run_key=run_key, started_at=now, records=[item_data(record) for record in taken])
    storage.container(WORK_CONTAINER).upload_blob(snapshot_blob(run_id), snapshot.model_dump_json(), overwrite=True)
    run_id = open_run(snapshot)
    for record in taken:  # best effort: validate sets the state again before it works
        try:
            client.patch(steps.REQUEST_TABLE, record["sys_id"], {"state": steps.WORK_IN_PROGRESS}, ["number"])
        except Exception:
            _log.warning("could not set %s in progress yet; validate will", record["number"], exc_info=True)
    _log.info("intake took %d of %d open requests", len(taken), len(records))
    return run_id


class IntakeSnapshot(BoundaryModel):
    """The requests an intake claimed, as it read them: the same items every time its run is (re)started."""

    run_key: str
    started_at: datetime
    records: list[dict[str, str]]


def snapshot_blob(run_id: str) -> str:
    """Where an intake's snapshot is kept (the work container, with the run's chunk data)."""
    return f"{AUTOMATION}/{run_id}/intake-snapshot.json"


def open_run(snapshot: IntakeSnapshot) -> str:
    """Starts (or finishes starting) the run of a snapshot: one item per request."""
    items = [
        NewItem(data=data, reference=data["number"], origin=f"{steps.REQUEST_TABLE}:{data['sys_id']}")
        for data in snapshot.records
    ]
    return chain.start_run(
        trigger="timer",
        source="servicenow:sc_req_item",
        run_key=snapshot.run_key,
        items=items,
        started_at=snapshot.started_at,
    )


def resume_interrupted_intakes(now: datetime) -> None:
    """Finishes the intake of a run left in `intake` by an earlier tick that died (from its snapshot)."""
    for run_id in ledger.open_run_ids():
        if not run_id.startswith(f"{AUTOMATION}.") or now - ledger.run_started_at(run_id) < RESUME_AFTER:
            continue
        run = ledger.get_run(run_id)
        if run is None or run.status is not ledger.RunStatus.INTAKE:
            continue
        body = storage.container(WORK_CONTAINER).download_blob(snapshot_blob(run_id)).readall()
        open_run(IntakeSnapshot.model_validate_json(body))
        _log.warning("finished the interrupted intake of run %s", run_id)


@bp.function_name("vendor_validate")
@bp.queue_trigger(arg_name="msg", queue_name="vendor-onboarding-validate", connection=WORK_CONNECTION)
def vendor_validate(msg: func.QueueMessage) -> None:
    """Queue vendor-onboarding-validate: checks each request against CVR and Kvantum; hands on to create."""
    chain.run_step("validate", msg, steps.validate)


@bp.function_name("vendor_create")
@bp.queue_trigger(arg_name="msg", queue_name="vendor-onboarding-create", connection=WORK_CONNECTION)
def vendor_create(msg: func.QueueMessage) -> None:
    """Queue vendor-onboarding-create: creates the vendor in Kvantum (once per request); hands on to close."""
    chain.run_step("create", msg, steps.create)


@bp.function_name("vendor_close")
@bp.queue_trigger(arg_name="msg", queue_name="vendor-onboarding-close", connection=WORK_CONNECTION)
def vendor_close(msg: func.QueueMessage) -> None:
    """Queue vendor-onboarding-close: closes the request with the vendor number; the receipt goes with the run."""
    chain.run_step("close", msg, steps.close)


@bp.function_name("vendor_control_list")
@bp.timer_trigger(arg_name="timer", schedule="%VENDOR_CONTROL_LIST_SCHEDULE%", run_on_startup=False, use_monitor=True)
def vendor_control_list(timer: func.TimerRequest) -> None:
    """Timer (VENDOR_CONTROL_LIST_SCHEDULE): writes yesterday's (Danish date) created vendors to reports."""
    with redacted_errors(), log_context(automation=AUTOMATION, step="control_list"):
        day = datetime.now(UTC).astimezone(steps.COPENHAGEN).date() - timedelta(days=1)
        name, count = control_list.write(day, steps.CREATED_TABLE, steps.COPENHAGEN)
        emit(Event.REPORT_WRITTEN, automation=AUTOMATION, report=name, rows=count)
