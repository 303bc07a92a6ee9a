"""Receipts and notices by mail: collected per run, sent once per recipient per run through Microsoft Graph.

A step that owes someone a receipt adds a line with `note()`; the lines wait in the `mails` ledger table
(partition = run id). When the run closer closes a run it queues a `mail` message, and the `mailer` function
sends each recipient one mail with all their lines - a mailbox may send only so many mails a minute, and a
clerk wants one receipt per batch, not fifty. Each recipient's mail is claimed in the ledger before it is
sent and marked sent after, so a repeated message sends nothing twice; a claim left by a crashed sender is
taken over once stale, and only then can a mail be sent a second time (the rare case where Graph accepted it
and the process died before writing that down).
"""

import json
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError
from azure.data.tables import UpdateMode
from pydantic import Field

from shared import storage, tables
from shared.events import Event, emit
from shared.ledger import BATCH_LIMIT, MAILS_TABLE, item_position
from shared.logs import get_logger, log_context
from shared.models import BoundaryModel
from shared.personal_data import digest, redact

if TYPE_CHECKING:  # the Graph client (and MSAL) is imported only by the process that sends mail
    from shared.connectors.graph import MailMessage

MAIL_QUEUE = "mail"
#: A recipient's lines beyond this are summarised: a mail stays readable and far below Graph's size limit.
LINES_PER_MAIL = 200
#: A claim covers one recipient's one send: Graph's timeout and a few bounded 429 waits, minutes at most. Older
#: than this its sender is gone, and it is taken over - sooner than the host redelivers a crashed invocation's
#: message (10 minutes), so that redelivery finds it stale instead of waiting itself into the poison queue.
CLAIM_STALE_AFTER = timedelta(minutes=5)
GREETING = "Hej\n\nKoncernservice har behandlet følgende for dig:\n"
FOOTER = "\nDenne mail er sendt automatisk og kan ikke besvares. Spørgsmål stilles via Serviceportalen."
_log = get_logger("ks.mail")


class MailNotReadyError(RuntimeError):
    """Some of a run's mails cannot go now (another sender holds them, or Graph may have taken them): later."""

    def __init__(self, message: str, retry_after: timedelta) -> None:
        super().__init__(message)
        self.retry_after = retry_after


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


#: Characters of JSON in one row's lines: a string property holds at most 64 KiB, 32K UTF-16 characters. A line
#: is at most about 2,300 (a 2,000-character text and a 200-character subject), so a row always takes one.
ROW_CHARACTERS = 30_000
MAIL_ROWS_PER_PAGE = 50


def _rows_of_lines(owed: Sequence[Notice]) -> Iterator[list[dict[str, str]]]:
    """One recipient's lines in rows filled up to ROW_CHARACTERS, in order (the same lines give the same rows)."""
    row: list[dict[str, str]] = []
    size = 2  # the list's brackets
    for notice in owed:
        line = {"ItemId": notice.item_id, "Subject": redact(notice.subject), "Text": redact(notice.text)}
        length = len(json.dumps(line, ensure_ascii=False).encode("utf-16-le")) // 2 + 2  # and ", "
        if row and size + length > ROW_CHARACTERS:
            yield row
            row, size = [], 2
        row.append(line)
        size += length
    if row:
        yield row


def note(run_id: str, notices: Sequence[Notice]) -> None:
    """Records lines owed to recipients: rows of lines per recipient, filled up to ROW_CHARACTERS, in one batch
    (500 receipts are one request and a few entities, not 500 of each). Upserts under a key made of the lines'
    items, so a repeated step writes the same rows again; a redelivery that groups items differently may write
    an item's line twice, and the mailer keeps one line per item."""
    by_recipient: dict[str, list[Notice]] = {}
    for notice in notices:
        by_recipient.setdefault(notice.recipient, []).append(notice)
    entities = []
    for recipient, all_owed in by_recipient.items():
        for lines in _rows_of_lines(all_owed):
            items = sorted(line["ItemId"] for line in lines)
            entities.append(
                {
                    "PartitionKey": run_id,
                    "RowKey": f"line.{_recipient_key(recipient)}.{items[0]}.{digest(','.join(items), 8)}",
                    "Recipient": recipient,
                    "Lines": json.dumps(lines, ensure_ascii=False),
                }
            )
    for start in range(0, len(entities), BATCH_LIMIT):
        tables.transact(
            storage.table(MAILS_TABLE),
            [("upsert", entity, {"mode": UpdateMode.REPLACE}) for entity in entities[start : start + BATCH_LIMIT]],
        )


class _Bag:
    """One recipient's lines of a run, held in bounded memory: which items have a line (a line noted twice
    counts once), every subject, and only the lines the mail shows (the lowest item ids)."""

    def __init__(self, recipient: str) -> None:
        self.recipient = recipient
        # Item ids are positions in the run: one byte each, not a set of 100,000 strings.
        self.positions = bytearray()
        self.other_items: set[str] = set()
        self.subjects: set[str] = set()
        self.shown: dict[str, dict[str, Any]] = {}

    def add(self, lines: list[dict[str, Any]]) -> None:
        """Takes a row's lines."""
        for line in lines:
            item_id = line["ItemId"]
            position = item_position(item_id)
            if position:
                if position >= len(self.positions):
                    self.positions.extend(bytes(position + 1 - len(self.positions)))
                self.positions[position] = 1
            else:
                self.other_items.add(item_id)
            self.subjects.add(line["Subject"])
            self.shown[item_id] = line
        if len(self.shown) > 2 * LINES_PER_MAIL:
            self.shown = {key: self.shown[key] for key in sorted(self.shown)[:LINES_PER_MAIL]}

    @property
    def item_count(self) -> int:
        """How many items have a line."""
        return len(self.positions) - self.positions.count(0) + len(self.other_items)

    def compose(self) -> "MailMessage":
        """The recipient's mail."""
        shown = [self.shown[key] for key in sorted(self.shown)[:LINES_PER_MAIL]]
        return compose(self.recipient, shown, total=self.item_count, subjects=self.subjects)


def _lines(row: dict[str, Any]) -> list[dict[str, Any]]:
    """A line row's lines, each with its recipient."""
    return [{**line, "Recipient": row["Recipient"]} for line in json.loads(row["Lines"])]


def request(automation: str, run_id: str) -> None:
    """Queues the sending of a run's mails (the run closer does, when it closes the run)."""
    message = MailRequest(automation=automation, run_id=run_id)
    storage.queue(MAIL_QUEUE).send_message(message.model_dump_json())


def compose(
    recipient: str, lines: Sequence[dict[str, Any]], *, total: int | None = None, subjects: set[str] | None = None
) -> "MailMessage":
    """One recipient's mail: the lines (up to a limit; `total` lines in all), under their common subject."""
    from shared.connectors.graph import MailMessage

    subjects = set(subjects or ()) | {line["Subject"] for line in lines}
    subject = subjects.pop() if len(subjects) == 1 else "Kvitteringer fra Koncernservice"
    total = len(lines) if total is None else total
    shown = [f"- {line['Text']}" for line in lines[:LINES_PER_MAIL]]
    if total > LINES_PER_MAIL:
        shown.append(f"- ... og {total - LINES_PER_MAIL} flere; se sagerne i Serviceportalen.")
    return MailMessage(to=[recipient], subject=subject, body="\n".join([GREETING, *shown, FOOTER]))


def send_run_mails(request: MailRequest, claimant: str, send: Callable[["MailMessage"], None] | None = None) -> int:
    """Sends each recipient of a run the mail not yet sent to them; returns how many it sent.

    A recipient whose mail Graph refuses outright (4xx) is marked failed with an operator alert and the others
    still get theirs. When Graph may have taken a mail without saying so (5xx, timeout) the claim stands, and
    `MailNotReadyError` says when it goes stale: the mailer asks again then, so such a mail goes at least once.
    """
    from shared.connectors.graph import GraphError, graph_mail

    table = storage.table(MAILS_TABLE)
    lines: dict[str, _Bag] = {}
    states: dict[str, Any] = {}
    # Pages of MAIL_ROWS_PER_PAGE: a line row holds up to ROW_CHARACTERS, so a page of the default 1,000 rows
    # would be 30 MB of JSON in memory at once.
    rows = tables.query(table, "PartitionKey eq @pk", parameters={"pk": request.run_id}, page_size=MAIL_ROWS_PER_PAGE)
    for row in rows:
        kind, _, rest = row["RowKey"].partition(".")
        if kind == "line":
            lines.setdefault(rest.split(".", 1)[0], _Bag(row["Recipient"])).add(_lines(row))
        elif kind == "sent":
            states[rest] = row
    due = {k: v for k, v in lines.items() if states.get(k, {}).get("Status") not in ("sent", "failed")}
    if due and send is None:  # built before any claim: a missing setting or token must leave no claim behind
        send = graph_mail().send_mail
    sent, waiting = 0, []
    with log_context(automation=request.automation, run_id=request.run_id):
        for key, bag in sorted(due.items()):
            if not claimant:
                raise ValueError("a mail needs its delivery's identity as claimant")
            claim = _claim(request.run_id, key, states.get(key), claimant)
            if claim is None:  # a live sender has it; if it dies, its own redelivery finds the claim stale
                _log.info("another delivery is sending one of the run's mails")
                continue
            message = bag.compose()
            try:
                send(message)  # type: ignore[misc]
            except GraphError as error:
                if error.status is None or error.status >= 500:  # it may have gone: claim kept, asked again later
                    waiting.append(key)
                    _log.warning("mail may or may not have gone out (%s); asking again once the claim is stale", error)
                    continue
                if error.status == 429:  # refused before processing: nothing went out
                    table.delete_entity(
                        request.run_id, f"sent.{key}", etag=claim, match_condition=MatchConditions.IfNotModified
                    )
                    waiting.append(key)
                    continue
                _mark(request.run_id, key, "failed")
                emit(
                    Event.OPERATOR_ALERT,
                    level=40,
                    automation=request.automation,
                    run_id=request.run_id,
                    reason_code="MAIL_AFVIST",
                    status=error.status,
                )
                continue
            _mark(request.run_id, key, "sent")
            emit(Event.MAIL_SENT, automation=request.automation, run_id=request.run_id, lines=bag.item_count)
            sent += 1
    _log.info("sent %d mails for the run (%d recipients in all, %d waiting)", sent, len(lines), len(waiting))
    if waiting:
        raise MailNotReadyError(f"{len(waiting)} mails of the run must wait", retry_after=CLAIM_STALE_AFTER)
    return sent


def _mark(run_id: str, key: str, status: str) -> None:
    storage.table(MAILS_TABLE).update_entity(
        {"PartitionKey": run_id, "RowKey": f"sent.{key}", "Status": status, "SentAt": _now()}, mode=UpdateMode.MERGE
    )


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
