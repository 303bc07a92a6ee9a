"""Hand-off to a person: one mechanism for every automation, a ServiceNow task per item handed off.

When a step ends items HANDED_OFF (a business rule said no, or TEKNISK_FEJL), it first queues a hand-off
message naming them; the `handoff` function then creates a task for each in the configured table and
assignment group - linked to the originating request when the item has one, standalone otherwise - with the
reason code, the Danish text, and the run and item in `correlation_id`, and records the task number on the
item. Creating is idempotent (look up by `correlation_id` first); an originating request is set pending
with a work note naming the task; a run is not complete until every item handed off has its case.
"""

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import Field

from shared import ledger, storage
from shared.connectors.servicenow import ServiceNowClient, servicenow
from shared.events import Event, emit
from shared.logs import get_logger, log_context
from shared.models import BoundaryModel
from shared.outcomes import ItemStatus
from shared.personal_data import redact
from shared.settings import get_settings

HANDOFF_QUEUE = "handoff"
REQUEST_SIZE = 500
#: After this long, a claimant that may have posted a task without hearing back posts again (if none exists).
#: Shorter than the host's retries of one message (host.json: 4 retries, 30 s apart): with 10 minutes, a
#: hand-off redelivered after a crash was poisoned before it could post, and its item never got a case.
POST_SETTLE = timedelta(seconds=60)
#: A claim older than this is taken over: longer than the host keeps a crashed invocation's message hidden.
CLAIM_STALE_AFTER = timedelta(minutes=15)
_log = get_logger("ks.handoff")


class HandoffNotReadyError(RuntimeError):
    """Not yet: the item's ending is not written yet, or a task posted earlier may still appear. Retry later."""


class HandoffMessage(BoundaryModel):
    """Items of one run bucket that a person must take over."""

    automation: str
    run_id: str
    bucket: int = Field(ge=0)
    item_ids: tuple[str, ...] = Field(min_length=1)


def request(automation: str, run_id: str, bucket: int, item_ids: Sequence[str]) -> None:
    """Queues the hand-off of items (sent before their ending is written, so a crash cannot lose it)."""
    for start in range(0, len(item_ids), REQUEST_SIZE):  # a few hundred ids keep a message far below 64 KiB
        part = tuple(item_ids[start : start + REQUEST_SIZE])
        message = HandoffMessage(automation=automation, run_id=run_id, bucket=bucket, item_ids=part)
        storage.queue(HANDOFF_QUEUE).send_message(message.model_dump_json())


def hand_off(message: HandoffMessage, claimant: str, client: ServiceNowClient | None = None) -> list[str]:
    """Creates (or finds) the case of each item still without one; returns the case numbers it recorded.

    `claimant` is the queue message's id: two messages for the same item (after a crash, or delivered at
    once) must not create two cases, so each item's hand-off is claimed by one message first.
    """
    client = client or servicenow()
    recorded = []
    for item_id in message.item_ids:
        with log_context(automation=message.automation, run_id=message.run_id, item_id=item_id):
            row = ledger.get_item(message.run_id, message.bucket, item_id)
            if row is None or row.get("CaseNumber"):
                continue
            if row["Status"] == ItemStatus.PENDING.value:
                raise HandoffNotReadyError(f"item {item_id} has not ended yet")
            if row["Status"] != ItemStatus.HANDED_OFF.value:
                continue  # it ended another way (another message got there first)
            if not claimant:
                raise ValueError("a hand-off needs its queue message's id as claimant")
            reclaimed = row.get("HandoffClaim") == claimant  # this message claimed it before and did not finish
            recent = reclaimed and row["HandoffClaimedAt"] > datetime.now(UTC) - POST_SETTLE
            if not ledger.claim_handoff(row, claimant, CLAIM_STALE_AFTER):
                continue  # another message is creating this case; if it dies, its redelivery finishes
            # A redelivery soon after its own attempt may have posted a task whose answer was lost: it only
            # looks, and posts again only once the instance has had time to show any task it created.
            number = create_case(client, message.automation, message.run_id, item_id, row, may_create=not recent)
            try:  # before the number is recorded, so a repeat patches again; never at the cost of the case
                mark_request_pending(client, row, number)
            except Exception:
                _log.warning("could not set the originating request pending", exc_info=True)
                emit(
                    Event.OPERATOR_ALERT,
                    level=40,
                    automation=message.automation,
                    run_id=message.run_id,
                    item_id=item_id,
                    reason_code="ANMODNING_IKKE_AFVENTENDE",
                )
            ledger.set_case_number(message.run_id, message.bucket, item_id, number)
            _log.info("handed to a person as %s (%s)", number, row["ReasonCode"])
            recorded.append(number)
    return recorded


#: sc_req_item's state "pending": the request waits for the person the task went to.
REQUEST_PENDING = "-5"
REQUEST_CLOSED = {"3", "4", "7"}


def mark_request_pending(client: ServiceNowClient, row: dict[str, Any], case_number: str) -> None:
    """The originating request, if there is one, is set pending with a work note naming the task."""
    table, _, sys_id = str(row.get("Origin", "")).partition(":")
    if table != "sc_req_item" or not sys_id:
        return
    if str(client.get("sc_req_item", sys_id, ["state"]).get("state")) in REQUEST_CLOSED:
        return  # closed or cancelled meanwhile: the task still goes to a person, the request stays as it is
    note = redact(f"Overdraget til manuel behandling som {case_number}: {row.get('ReasonText', '')}")
    client.patch("sc_req_item", sys_id, {"state": REQUEST_PENDING, "work_notes": note}, ["number"])


def create_case(
    client: ServiceNowClient,
    automation: str,
    run_id: str,
    item_id: str,
    row: dict[str, Any],
    *,
    may_create: bool,
) -> str:
    """The item's task: found by correlation_id if an earlier attempt created it, else created now."""
    settings = get_settings()
    correlation = f"{run_id}/{item_id}"
    existing = client.query(settings.handoff_table, f"correlation_id={correlation}", ["number"], page_size=2)
    if existing:
        return str(existing[0]["number"])
    if not may_create:
        raise HandoffNotReadyError(f"a task for {item_id} may be on its way; looking again later")
    task: dict[str, Any] = {
        "short_description": f"{automation}: {row['ReasonCode']} (emne {item_id})",
        "description": redact(
            f"{row.get('ReasonText', '')}\n\nÅrsagskode: {row['ReasonCode']}\nKørsel: {run_id}\nEmne: {item_id}"
            f"\nTrin: {row.get('Step', '')}\nForsøg: {row.get('Attempts', '')}"
        ),
        "assignment_group": settings.handoff_assignment_group,
        "correlation_id": correlation,
        "correlation_display": automation,
    }
    table, _, sys_id = str(row.get("Origin", "")).partition(":")
    if table == "sc_req_item" and sys_id:
        task["request_item"] = sys_id
    return str(client.create(settings.handoff_table, task, ["number"])["number"])
