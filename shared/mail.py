"""Receipts and notices by mail: collected per run, sent once per recipient per run through Microsoft Graph.

A step that owes someone a receipt adds a line with `note()`; the lines wait in the `mails` ledger table
(partition = run id). When the run closer closes a run it queues a `mail` message, and the `mailer` function
sends each recipient one mail with all their lines - a mailbox may send only so many mails a minute, and a
clerk wants one receipt per batch, not fifty. Each recipient's mail is claimed in the ledger before it is
sent and marked sent after, so a repeated message sends nothing twice; a claim left by a crashed sender is
taken over once stale, and only then can a mail be sent a second time (the rare case where Graph accepted it
and the process died before writing that down).
"""

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError
from azure.data.tables import UpdateMode
from pydantic import Field

from shared import storage
from shared.events import Event, emit
from shared.ledger import BATCH_LIMIT, MAILS_TABLE
from shared.logs import get_logger, log_context
from shared.models import BoundaryModel
from shared.personal_data import digest, redact

if TYPE_CHECKING:  # the Graph client (and MSAL) is imported only by the process that sends mail
    from shared.connectors.graph import MailMessage

MAIL_QUEUE = "mail"
#: A recipient's lines beyond this are summarised: a mail stays readable and far below Graph's size limit.
LINES_PER_MAIL = 200
#: A claim older than this is taken over (longer than the host hides a crashed invocation's message).
CLAIM_STALE_AFTER = timedelta(minutes=15)
GREETING = "Hej\n\nKoncernservice har behandlet følgende for dig:\n"
FOOTER = "\nDenne mail er sendt automatisk og kan ikke besvares. Spørgsmål stilles via Serviceportalen."
_log = get_logger("ks.mail")


class MailNotReadyError(RuntimeError):
    """Another sender holds a recipient's mail and may still finish it: retry later."""


class Notice(BoundaryModel):
    """One line owed to one recipient: a receipt for an item or a notice about it (never a CPR number)."""

    recipient: str = Field(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
    item_id: str
    subject: str = Field(min_length=1, max_length=200)
    text: str = Field(min_length=1, max_length=2000)


class MailRequest(BoundaryModel):
    """The `mail` queue message: send the mails of one run."""

    automation: str
    run_id: str


def _recipient_key(recipient: str) -> str:
    return digest(recipient.strip().lower(), 24)


def note(run_id: str, notices: Sequence[Notice]) -> None:
    """Records lines owed to recipients (upserts: a repeated step writes the same rows again, harmlessly)."""
    entities = [
        {
            "PartitionKey": run_id,
            "RowKey": f"line.{_recipient_key(n.recipient)}.{n.item_id}",
            "Recipient": n.recipient,
            "ItemId": n.item_id,
            "Subject": redact(n.subject),
            "Text": redact(n.text),
        }
        for n in notices
    ]
    for start in range(0, len(entities), BATCH_LIMIT):
        storage.table(MAILS_TABLE).submit_transaction(
            [("upsert", entity, {"mode": UpdateMode.REPLACE}) for entity in entities[start : start + BATCH_LIMIT]]
        )


def request(automation: str, run_id: str) -> None:
    """Queues the sending of a run's mails (the run closer does, when it closes the run)."""
    message = MailRequest(automation=automation, run_id=run_id)
    storage.queue(MAIL_QUEUE).send_message(message.model_dump_json())


def compose(recipient: str, lines: Sequence[dict[str, Any]]) -> "MailMessage":
    """One recipient's mail: every line (up to a limit), under their common subject."""
    from shared.connectors.graph import MailMessage

    subjects = {line["Subject"] for line in lines}
    subject = subjects.pop() if len(subjects) == 1 else "Kvitteringer fra Koncernservice"
    shown = [f"- {line['Text']}" for line in lines[:LINES_PER_MAIL]]
    if len(lines) > LINES_PER_MAIL:
        shown.append(f"- ... og {len(lines) - LINES_PER_MAIL} flere; se sagerne i Serviceportalen.")
    return MailMessage(to=[recipient], subject=subject, body="\n".join([GREETING, *shown, FOOTER]))


def send_run_mails(request: MailRequest, claimant: str, send: Callable[["MailMessage"], None] | None = None) -> int:
    """Sends each recipient of a run the mail not yet sent to them; returns how many it sent."""
    from shared.connectors.graph import GraphError, graph_mail

    # The client is built only when there is something to send: a run without receipts needs no Graph settings.
    send = send or (lambda message: graph_mail().send_mail(message))
    table = storage.table(MAILS_TABLE)
    rows = list(table.query_entities("PartitionKey eq @pk", parameters={"pk": request.run_id}))
    lines: dict[str, list[dict[str, Any]]] = {}
    states: dict[str, Any] = {}
    for row in rows:
        kind, _, rest = row["RowKey"].partition(".")
        if kind == "line":
            lines.setdefault(rest.split(".", 1)[0], []).append(row)
        elif kind == "sent":
            states[rest] = row
    sent = 0
    with log_context(automation=request.automation, run_id=request.run_id):
        for key, recipient_lines in sorted(lines.items()):
            state = states.get(key)
            if state is not None and state.get("Status") == "sent":
                continue
            if not claimant:
                raise ValueError("a mail needs its delivery's identity as claimant")
            claim = _claim(request.run_id, key, state, claimant)
            if claim is None:
                raise MailNotReadyError("another sender is sending a mail of this run")
            try:
                send(compose(recipient_lines[0]["Recipient"], sorted(recipient_lines, key=lambda r: r["ItemId"])))
            except GraphError as error:
                if error.status is not None:  # Graph answered no: nothing went out, the next attempt may send
                    table.delete_entity(
                        request.run_id, f"sent.{key}", etag=claim, match_condition=MatchConditions.IfNotModified
                    )
                raise
            table.update_entity(
                {"PartitionKey": request.run_id, "RowKey": f"sent.{key}", "Status": "sent", "SentAt": _now()},
                mode=UpdateMode.MERGE,
            )
            emit(Event.MAIL_SENT, automation=request.automation, run_id=request.run_id, lines=len(recipient_lines))
            sent += 1
    _log.info("sent %d mails for the run (%d recipients in all)", sent, len(lines))
    return sent


def _claim(run_id: str, key: str, state: dict[str, Any] | None, claimant: str) -> str | None:
    """Claims one recipient's mail for this delivery (returns the claim's ETag); None while another holds it."""
    entity = {
        "PartitionKey": run_id,
        "RowKey": f"sent.{key}",
        "Status": "sending",
        "Claim": claimant,
        "ClaimedAt": _now(),
    }
    table = storage.table(MAILS_TABLE)
    if state is None:
        try:
            return str(table.create_entity(entity)["etag"])
        except ResourceExistsError:
            return None
    if state.get("Claim") != claimant and state["ClaimedAt"] > _now() - CLAIM_STALE_AFTER:
        return None
    if state.get("Claim") != claimant:
        # The sender before died while sending or before writing down that it had: at least once, not never.
        _log.warning("taking over a stale mail claim: the mail may already have gone out once")
    try:
        return str(
            table.update_entity(
                entity,
                mode=UpdateMode.MERGE,
                etag=state.metadata["etag"],
                match_condition=MatchConditions.IfNotModified,
            )["etag"]
        )
    except ResourceModifiedError:
        return None


def _now() -> datetime:
    return datetime.now(UTC)
