"""The step pipeline: how an automation opens a run, moves chunks of items from step to step, and ends them.

An automation declares a `Chain` of named steps. Its intake calls `start_run`; each queue-triggered step calls
`run_step` with a function that does the step's work for one item. Per item the work either returns (done:
on to the next step, or ended DONE after the last), raises `BusinessException` (a rule said no: ended
HANDED_OFF with its reason code and Danish text, never retried) or raises anything else (technical failure:
the item leaves its chunk and is retried alone with exponential backoff through the visibility timeout;
after the last attempt it is ended HANDED_OFF with TEKNISK_FEJL and an operator alert).

Delivery is at least once, and a host can die between any two calls. Three guards make that harmless:
- the chunk's history row is written last; a redelivered message whose row exists does nothing;
- before working, a step reads its items' rows (one range query) and skips any that have already ended, and
  it ends items only if their rows are unchanged since that read: the first terminal state wins, even when a
  crash or a retry has put one item in two messages;
- side effects are keyed by `WorkItem.key`, so work repeated after a crash repeats nothing outside.
"""

import itertools
import re
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, ClassVar

import azure.functions as func
from azure.core.exceptions import ResourceNotFoundError

from shared import config, handoff, ledger, mail, memory, storage
from shared.events import Event, emit
from shared.logs import get_logger, log_context, redacted_errors
from shared.messages import ItemRef, StepMessage, fit_to_queue, json_lines, read_json_lines, single
from shared.outcomes import REASON_CODE_PATTERN, TECHNICAL_FAILURE, TECHNICAL_FAILURE_TEXT, TERMINAL, ItemStatus
from shared.personal_data import contains_cpr, digest, redact
from shared.settings import get_settings

#: Blob container for chunk data (items' records between steps).
WORK_CONTAINER = "work"
_REASON_TEXT_LIMIT = 2000

_log = get_logger("ks.pipeline")


class BusinessException(Exception):  # noqa: N818 - the domain's own word for "a rule said no"
    """Raised by a step's work when a business rule says no: the item goes to a person, never retried."""

    def __init__(self, reason_code: str, text_da: str) -> None:
        # A malformed code is a bug in the rule: raising here makes it a technical failure of the item.
        _check_reason_code(reason_code)
        super().__init__(reason_code)
        self.reason_code = reason_code
        self.text_da = text_da


def _check_reason_code(code: str) -> None:
    if not re.fullmatch(REASON_CODE_PATTERN, code):
        raise ValueError(f"reason code must match {REASON_CODE_PATTERN}")


@dataclass(frozen=True)
class NewItem:
    """An item as the intake found it: its data, control amount, reference, and a rejection if unreadable."""

    data: Mapping[str, Any]
    amount: Decimal | None = None
    reference: str = ""
    rejected: tuple[str, str] | None = None  # (reason code, Danish text) for input that is not a case
    origin: str = ""  # the record the item came from ("sc_req_item:<sys_id>"): its case is linked to it
    details: Mapping[str, str] = field(default_factory=dict)  # the automation's own columns on the item row

    def __post_init__(self) -> None:
        """Refuses at parse time what the ledger would refuse at intake (and leave the run stuck)."""
        if self.rejected:
            _check_reason_code(self.rejected[0])
        if contains_cpr(self.reference):
            raise ValueError("an item's reference must be a pseudonym or case number, never a CPR")


@dataclass(frozen=True)
class Ending:
    """How an outside answer ends a parked item: DONE, or HANDED_OFF with a reason."""

    item_id: str
    status: ItemStatus
    reason_code: str = ""
    reason_text: str = ""
    details: Mapping[str, str] = field(default_factory=dict)  # columns to write on the ended row


@dataclass
class WorkItem:
    """One item handed to a step's work function."""

    run_id: str
    item_id: str
    step: str
    attempt: int
    data: dict[str, Any]
    rules: Mapping[str, Any] = field(default_factory=dict)  # this automation's rules in the run's version
    notices: list[mail.Notice] = field(default_factory=list)
    row: Mapping[str, Any] = field(default_factory=dict)  # the item's ledger row as this delivery read it
    bucket: int = 0

    def notify(self, recipient: str, subject: str, text: str) -> None:
        """Owes `recipient` a line in the run's mail, sent when the run closes; recorded when this step's work
        for the item succeeds (or ends it with a business exception), so notify in the step that settles it."""
        self.notices.append(mail.Notice(recipient=recipient, item_id=self.item_id, subject=subject, text=text))

    @property
    def key(self) -> str:
        """Idempotency key for this step's side effects: the same on every attempt and every redelivery."""
        return f"{self.run_id}/{self.item_id}/{self.step}"


StepWork = Callable[[WorkItem], Mapping[str, Any] | None]
#: What a step's work made of one item: new data (or None: unchanged) to go on with, or the exception that
#: stopped it (`BusinessException`: to a person; anything else: retried).
ItemResult = Mapping[str, Any] | None | Exception
#: A step's work over a whole chunk at once (batched look-ups, one file per chunk): a result per item id;
#: an item without a result is sent on, unworked, in a continuation message.
ChunkWork = Callable[[Sequence[WorkItem]], Mapping[str, ItemResult]]


def backoff_seconds(failed_attempt: int, base: int, cap: int) -> int:
    """Delay before the next attempt after attempt `failed_attempt` failed: base, 2·base, 4·base ..., capped."""
    return min(cap, base * 2 ** (failed_attempt - 1))


@dataclass
class _ChunkOutcome:
    done: list[tuple[ItemRef, dict[str, Any]]] = field(default_factory=list)
    changed: bool = False  # some work returned new data, so the next step needs a new data blob
    business: list[tuple[ItemRef, BusinessException]] = field(default_factory=list)
    failed: list[tuple[ItemRef, Exception]] = field(default_factory=list)
    unworked: list[ItemRef] = field(default_factory=list)  # left when the time budget ran out
    notices: list[mail.Notice] = field(default_factory=list)  # of items that ended or moved on
    skipped: int = 0  # already ended by another delivery


class Chain:
    """An automation's steps in order, and the queues between them."""

    registry: ClassVar[dict[str, "Chain"]] = {}

    def __init__(
        self,
        automation: str,
        steps: Sequence[str],
        *,
        parked_after: str | None = None,
        on_complete: Callable[[ledger.Run], None] | None = None,
    ) -> None:
        """`parked_after`: a step whose done items wait for an outside answer (ended by `end_parked`), neither
        ended nor sent on; `on_complete`: called by the run closer before it saves a run complete."""
        if not steps:
            raise ValueError("a chain needs at least one step")
        if parked_after is not None and parked_after not in steps:
            raise ValueError(f"{automation} has no step {parked_after!r} to park after")
        self.automation = automation
        self.steps = tuple(steps)
        self.parked_after = parked_after
        self.on_complete = on_complete
        Chain.registry[automation] = self

    def queue_name(self, step: str) -> str:
        """The queue that feeds a step (queue names allow lowercase letters, digits and dashes)."""
        if step not in self.steps:
            raise ValueError(f"{self.automation} has no step {step!r}")
        return f"{self.automation}-{step}".replace("_", "-").lower()

    @property
    def queues(self) -> tuple[str, ...]:
        """Every queue of the chain, first step first."""
        return tuple(self.queue_name(step) for step in self.steps)

    # --- intake -------------------------------------------------------------------------------------------

    def start_run(
        self,
        *,
        trigger: str,
        source: str,
        run_key: str,
        items: Sequence[NewItem],
        started_at: datetime | None = None,
        first_step: str | None = None,
        submitted_by: str = "",
    ) -> str:
        """Opens a run for a source (once per run_key), records its items and hands them to the first step.

        `items` must be the same every time the same run_key is started (a blob read at its ETag; a pull
        source snapshots what it read before calling this), because an interrupted intake is simply redone.
        """
        return self.start_streamed_run(
            trigger=trigger,
            source=source,
            run_key=run_key,
            items=lambda: items,
            expected_items=len(items),
            expected_amount=sum((item.amount or Decimal(0) for item in items), Decimal(0)),
            started_at=started_at,
            first_step=first_step,
            submitted_by=submitted_by,
        )

    def start_streamed_run(
        self,
        *,
        trigger: str,
        source: str,
        run_key: str,
        items: Callable[[], Iterable[NewItem]],
        expected_items: int,
        expected_amount: Decimal,
        started_at: datetime | None = None,
        group_by: Callable[[NewItem], str] | None = None,
        first_step: str | None = None,
        submitted_by: str = "",
    ) -> str:
        """`start_run` for a source too large to hold: `items()` yields the items afresh (a blob read again at
        its ETag), one chunk in memory at a time; the control totals come from the caller's first pass.

        `group_by` puts only items of one group in a chunk (a step then looks up one shard of an index per
        chunk), holding at most one partial chunk per group; `first_step` starts the items further down the
        chain; `submitted_by` records who delivered the input. An intake that yields more items than it
        counted fails; fewer leaves the run unreconciled.
        """
        settings = get_settings()
        started = started_at or datetime.now(UTC)
        run_id = ledger.claim_source(self.automation, run_key, ledger.new_run_id(self.automation, started, run_key))
        with log_context(automation=self.automation, run_id=run_id, step="intake"), redacted_errors():
            run = ledger.get_run(run_id) or ledger.create_run(
                ledger.Run(
                    automation=self.automation,
                    run_id=run_id,
                    trigger=trigger,
                    source=redact(source),
                    started_at=ledger.run_started_at(run_id),
                    status=ledger.RunStatus.INTAKE,
                    expected_items=expected_items,
                    expected_amount=expected_amount,
                    buckets=ledger.bucket_count(expected_items, settings.items_per_bucket),
                    chunk_size=settings.chunk_size,
                    code_version=settings.code_version,
                    config_version=config.rules().in_force(ledger.run_started_at(run_id)).version,
                    submitted_by=redact(submitted_by),
                )
            )
            if run.status is not ledger.RunStatus.INTAKE:
                _log.info("source already has run %s; nothing to do", run_id)
                return run_id
            # A resumed intake keeps the first attempt's layout (chunk size, buckets), whatever settings say now.
            self._create_items(run, _chunked(items(), run.chunk_size, group_by), first_step or self.steps[0])
            now = datetime.now(UTC)
            status = ledger.RunStatus.OPEN if run.expected_items else ledger.RunStatus.COMPLETE
            opened = {"status": status, "opened_at": now, "ended_at": None if run.expected_items else now}
            if ledger.advance_run(run.model_copy(update=opened), run.status):
                emit(Event.RUN_STARTED, automation=self.automation, run_id=run_id, items=run.expected_items)
                if not run.expected_items:
                    emit(Event.RUN_COMPLETED, automation=self.automation, run_id=run_id, items=0)
            return run_id

    def _create_items(self, run: ledger.Run, chunks: Iterable[Sequence[NewItem]], first_step: str) -> None:
        ids = iter(ledger.item_ids(run.expected_items))
        for number, chunk_items in enumerate(chunks):
            try:
                chunk_refs = [ItemRef(id=next(ids), line=0) for _ in chunk_items]
            except StopIteration:
                raise ValueError(f"the intake yielded more than the {run.expected_items} items it counted") from None
            bucket = number % run.buckets
            data = f"{self.automation}/{run.run_id}/intake/c{number:05d}.jsonl"
            _write_lines(data, [dict(item.data) for item in chunk_items])
            rows = [
                ledger.ItemRow(
                    run_id=run.run_id,
                    bucket=bucket,
                    item_id=ref.id,
                    status=ItemStatus.REJECTED if item.rejected else ItemStatus.PENDING,
                    step="intake",
                    attempts=1 if item.rejected else 0,
                    amount=item.amount,
                    reference=item.reference,
                    reason_code=item.rejected[0] if item.rejected else "",
                    reason_text=_reason(item.rejected[1]) if item.rejected else "",
                    config_version=run.config_version,
                    origin=item.origin,
                    details=dict(item.details),
                )
                for ref, item in zip(chunk_refs, chunk_items, strict=True)
            ]
            created = ledger.create_items(rows)
            self._emit_outcomes([row for row in created if row.status is ItemStatus.REJECTED])
            pending = tuple(
                ref.model_copy(update={"line": line})
                for line, (ref, item) in enumerate(zip(chunk_refs, chunk_items, strict=True))
                if not item.rejected
            )
            if pending:  # sent as soon as its rows exist: the steps start while the intake reads on
                self._send(
                    StepMessage(
                        automation=self.automation,
                        run_id=run.run_id,
                        step=first_step,
                        config_version=run.config_version,
                        chunk_id=f"c{number:05d}",
                        bucket=bucket,
                        data=data,
                        items=pending,
                    )
                )

    # --- steps --------------------------------------------------------------------------------------------

    def run_step(self, step: str, msg: func.QueueMessage, work: StepWork) -> None:
        """Does one step for a chunk: the work per item, then outcomes, follow-ups and the chunk's history row."""
        self.run_chunk_step(step, msg, _per_item(work))

    def run_chunk_step(
        self, step: str, msg: func.QueueMessage, work: ChunkWork, row_columns: Sequence[str] | None = None
    ) -> None:
        """`run_step` for work done over the chunk's unended items at once (batched look-ups, one file); the work
        sees each item's whole ledger row, or only `row_columns` of it (and the chain's own)."""
        message = StepMessage.decode(msg.get_body())
        if message.automation != self.automation or message.step != step:
            raise ValueError(f"message for {message.automation}/{message.step} reached {self.automation}/{step}")
        with log_context(automation=self.automation, run_id=message.run_id, step=step), redacted_errors():
            if ledger.chunk_already_done(message.run_id, step, message.chunk_id, message.attempt):
                _log.info("chunk %s attempt %d already done; redelivery ignored", message.chunk_id, message.attempt)
                return
            if len(message.items) > 1 and _dequeue_count(msg) > 1:
                # The last delivery failed or never finished (a crash, a hang past the timeout): halve the chunk
                # before working, so that whatever broke it is cornered in a few rounds instead of taking the
                # whole chunk to poison with it.
                half = len(message.items) // 2
                for suffix, part in (("-a", message.items[:half]), ("-b", message.items[half:])):
                    self._send(message.model_copy(update={"chunk_id": message.chunk_id + suffix, "items": part}))
                _log.warning("chunk %s was redelivered; sent on in two halves", message.chunk_id)
                return
            try:
                for _ in range(3):
                    try:
                        self._run_chunk(message, work, row_columns)
                        break
                    except ledger.ItemEndedElsewhereError:
                        _log.info("an item of chunk %s ended meanwhile; reading again", message.chunk_id)
                else:
                    raise ledger.ItemEndedElsewhereError(f"chunk {message.chunk_id} kept colliding")
            except Exception:
                if _dequeue_count(msg) >= get_settings().max_dequeue_count:
                    emit(
                        Event.OPERATOR_ALERT,
                        level=40,
                        automation=self.automation,
                        run_id=message.run_id,
                        item_id=message.items[0].id,
                        step=step,
                        reason_code="POISON_MESSAGE",
                    )
                raise

    def _run_chunk(self, message: StepMessage, work: ChunkWork, row_columns: Sequence[str] | None) -> None:
        started = time.perf_counter()
        ids = [ref.id for ref in message.items]
        current = ledger.chunk_rows(message.run_id, message.bucket, ids, row_columns)
        outcome = self._work_chunk(message, work, current)
        technical_handoffs = self._settle(message, outcome, current)
        transition = ledger.ChunkTransition(
            run_id=message.run_id,
            step=message.step,
            chunk_id=message.chunk_id,
            attempt=message.attempt,
            items=len(message.items),
            done=len(outcome.done),
            business=len(outcome.business),
            retried=len(outcome.failed) - technical_handoffs,
            technical_handoff=technical_handoffs,
            skipped=outcome.skipped,
        )
        ledger.record_transition(transition)
        emit(
            Event.CHUNK_COMPLETED,
            automation=self.automation,
            duration_ms=round((time.perf_counter() - started) * 1000),
            continued=len(outcome.unworked),
            **transition.model_dump(),
        )
        memory.release_freed()  # the chunk's records, rows and results are garbage now

    def _work_chunk(self, message: StepMessage, work: ChunkWork, current: dict[str, dict[str, Any]]) -> _ChunkOutcome:
        records = _read_lines(message.data)
        rules = _rules_version(message).rules(self.automation)
        outcome = _ChunkOutcome()
        pairs: list[tuple[ItemRef, WorkItem]] = []
        for ref in message.items:
            row = current.get(ref.id, {})
            if row and ItemStatus(row["Status"]) in TERMINAL:
                outcome.skipped += 1  # ended by another delivery: the first terminal state stands
                continue
            data = dict(records[ref.line])
            item = WorkItem(
                message.run_id, ref.id, message.step, message.attempt, data, rules, row=row, bucket=message.bucket
            )
            pairs.append((ref, item))
        results = work([item for _, item in pairs]) if pairs else {}
        for ref, item in pairs:
            if item.item_id not in results:
                outcome.unworked.append(ref)
                continue
            result = results[item.item_id]
            if isinstance(result, BusinessException):
                outcome.business.append((ref, result))
                outcome.notices += item.notices
            elif isinstance(result, Exception):
                outcome.failed.append((ref, result))
            else:
                outcome.done.append((ref, dict(result) if result is not None else item.data))
                outcome.changed |= result is not None
                outcome.notices += item.notices
        return outcome

    def _settle(self, message: StepMessage, outcome: _ChunkOutcome, current: dict[str, dict[str, Any]]) -> int:
        """Ends, retries and forwards the chunk's items; returns how many were handed off as TEKNISK_FEJL."""
        settings = get_settings()
        row = ledger.ItemRow(
            run_id=message.run_id,
            bucket=message.bucket,
            item_id="-",
            status=ItemStatus.HANDED_OFF,
            step=message.step,
            attempts=message.retries + message.attempt,
            config_version=_rules_version(message).version,
        )
        ended = [
            _ended(row, item_id=ref.id, reason_code=rule.reason_code, reason_text=_reason(rule.text_da))
            for ref, rule in outcome.business
        ]
        parked = message.step == self.parked_after
        last_step = message.step == self.steps[-1] and not parked
        if last_step:
            ended += [_ended(row, item_id=ref.id, status=ItemStatus.DONE) for ref, _ in outcome.done]

        technical: list[ledger.ItemRow] = []
        for ref, error in outcome.failed:
            if message.attempt < settings.max_attempts:
                delay = backoff_seconds(message.attempt, settings.backoff_base_seconds, settings.backoff_max_seconds)
                self._send(single(message, ref, message.attempt + 1), delay_seconds=delay)
                emit(
                    Event.ITEM_RETRY_SCHEDULED,
                    automation=self.automation,
                    run_id=message.run_id,
                    item_id=ref.id,
                    attempt=message.attempt + 1,
                    delay_seconds=delay,
                )
                continue
            # Alert before the ending is written: a crash in between repeats the alert, never loses it.
            emit(
                Event.OPERATOR_ALERT,
                level=40,
                automation=self.automation,
                run_id=message.run_id,
                item_id=ref.id,
                step=message.step,
                reason_code=TECHNICAL_FAILURE,
            )
            evidence = _reason(f"{TECHNICAL_FAILURE_TEXT}\nSidste fejl: {type(error).__name__}: {error}")
            technical.append(_ended(row, item_id=ref.id, reason_code=TECHNICAL_FAILURE, reason_text=evidence))
        ended += technical
        if outcome.notices:  # recorded before the endings, so a crash in between repeats them (upserts) at worst
            mail.note(message.run_id, outcome.notices)
        handed = [row.item_id for row in ended if row.status is ItemStatus.HANDED_OFF]
        if handed:  # asked for before the endings are written, so that a crash in between cannot lose it
            handoff.request(self.automation, message.run_id, message.bucket, handed)
        ledger.end_items(ended, current, committed=self._emit_outcomes)

        if outcome.done and not last_step and not parked:
            self._forward(message, outcome)
        if outcome.unworked:
            # Out of time: the rest continues in a message of its own rather than run past the host's timeout.
            # Named from the original chunk: a continuation is always a tail of it, so the id stays short.
            continuation = f"{message.chunk_id.split('+', 1)[0]}+{outcome.unworked[0].id}"
            self._send(message.model_copy(update={"chunk_id": continuation, "items": tuple(outcome.unworked)}))
        return len(technical)

    def end_parked(
        self,
        run_id: str,
        bucket: int,
        step: str,
        endings: Sequence["Ending"],
        *,
        notices: Sequence[mail.Notice] = (),
        current: dict[str, dict[str, Any]] | None = None,
    ) -> int:
        """Ends parked items as an outside answer says (a response file), each once; returns how many it ended.

        `current`: the items' rows as the caller just read them (with ETags), saving a read. Safe to repeat:
        items already ended are left as they are, and their notices are not written again.
        """
        if not endings:
            return 0
        with log_context(automation=self.automation, run_id=run_id, step=step), redacted_errors():
            for _ in range(3):
                current = current or ledger.chunk_rows(run_id, bucket, [ending.item_id for ending in endings])
                rows = [
                    ledger.ItemRow(
                        run_id=run_id,
                        bucket=bucket,
                        item_id=ending.item_id,
                        status=ending.status,
                        step=step,
                        attempts=current[ending.item_id].get("Attempts") or 1,
                        reason_code=ending.reason_code,
                        reason_text=_reason(ending.reason_text),
                        config_version=current[ending.item_id].get("ConfigVersion", ""),
                        details=dict(ending.details),
                    )
                    for ending in endings
                    if ending.item_id in current and ItemStatus(current[ending.item_id]["Status"]) not in TERMINAL
                ]
                if not rows:
                    return 0
                ending_ids = {row.item_id for row in rows}
                owed = [notice for notice in notices if notice.item_id in ending_ids]
                if owed:
                    mail.note(run_id, owed)
                handed = [row.item_id for row in rows if row.status is ItemStatus.HANDED_OFF]
                if handed:
                    handoff.request(self.automation, run_id, bucket, handed)
                try:
                    ledger.end_items(rows, current, committed=self._emit_outcomes)
                except ledger.ItemEndedElsewhereError:
                    current = None  # read again
                    continue
                return len(rows)
            raise ledger.ItemEndedElsewhereError(f"parked items of {run_id} kept colliding")

    def _emit_outcomes(self, ended: Sequence[ledger.ItemRow]) -> None:
        emit_outcomes(self.automation, ended)

    def _forward(self, message: StepMessage, outcome: _ChunkOutcome) -> None:
        next_step = self.steps[self.steps.index(message.step) + 1]
        data, items = message.data, tuple(ref for ref, _ in outcome.done)
        chunk_id = message.chunk_id
        if items != message.items:
            # A message's identity must say what it carries: a redelivery may forward a different set of items,
            # and the next step would take it for the first one and drop the difference.
            chunk_id = f"{chunk_id}.{digest(','.join(ref.id for ref in items), 6)}"
        if outcome.changed:
            # A new name per delivery: a redelivery may forward different items, and a message already sent
            # must keep pointing at the lines it was sent with.
            data = f"{self.automation}/{message.run_id}/{message.step}/{message.chunk_id}.{uuid.uuid4().hex[:8]}.jsonl"
            _write_lines(data, [record for _, record in outcome.done])
            items = tuple(ref.model_copy(update={"line": line}) for line, ref in enumerate(items))
        self._send(
            message.model_copy(
                update={
                    "step": next_step,
                    "chunk_id": chunk_id,
                    "attempt": 1,
                    "retries": message.retries + message.attempt - 1,
                    "data": data,
                    "items": items,
                }
            )
        )

    def _send(self, message: StepMessage, delay_seconds: int = 0) -> None:
        for part in fit_to_queue(message):
            queue = storage.queue(self.queue_name(part.step))
            queue.send_message(part.encode(), visibility_timeout=delay_seconds or None)


def _per_item(work: StepWork) -> ChunkWork:
    """Chunk work that does `work` item by item, stopping (after at least one) when the time budget is spent."""

    def chunk_work(items: Sequence[WorkItem]) -> dict[str, ItemResult]:
        deadline = time.monotonic() + get_settings().step_time_budget_seconds
        results: dict[str, ItemResult] = {}
        for item in items:
            if results and time.monotonic() > deadline:  # the rest goes on in a continuation message
                break
            with log_context(item_id=item.item_id):
                try:
                    results[item.item_id] = work(item)
                except BusinessException as rule:
                    results[item.item_id] = rule
                except Exception as error:  # anything else is technical: retried, never lost
                    _log.warning("attempt %d failed: %s", item.attempt, error, exc_info=True)
                    results[item.item_id] = error
        return results

    return chunk_work


def _chunked(
    items: Iterable[NewItem], size: int, group_by: Callable[[NewItem], str] | None
) -> Iterator[Sequence[NewItem]]:
    """The items in chunks of `size`; with `group_by`, each chunk of one group (groups flushed as they fill, the
    partial ones at the end in order of first appearance), so the same input always gives the same chunks."""
    if group_by is None:
        yield from itertools.batched(items, size)
        return
    pending: dict[str, list[NewItem]] = {}
    for item in items:
        group = pending.setdefault(group_by(item), [])
        group.append(item)
        if len(group) == size:
            yield tuple(group)
            group.clear()
    for group in pending.values():
        if group:
            yield tuple(group)


def _rules_version(message: StepMessage) -> config.RulesVersion:
    """The rules the run is decided under; a message from before versions were carried uses the run's start."""
    try:
        return config.rules().version(message.config_version)
    except LookupError:
        return config.rules().in_force(ledger.run_started_at(message.run_id))


def emit_outcomes(automation: str, ended: Sequence[ledger.ItemRow]) -> None:
    """An ItemOutcome event per item that has ended (mirrors the ledger for the workbook)."""
    for item in ended:
        emit(
            Event.ITEM_OUTCOME,
            automation=automation,
            run_id=item.run_id,
            item_id=item.item_id,
            outcome=item.status.value,
            reason_code=item.reason_code,
        )


def _dequeue_count(msg: func.QueueMessage) -> int:
    return getattr(msg, "dequeue_count", None) or 1


def _ended(row: ledger.ItemRow, **update: Any) -> ledger.ItemRow:
    """An item's ending, validated (model_copy alone would skip the reason-code and personal-data checks)."""
    return ledger.ItemRow.model_validate({**row.model_dump(), **update})


def _reason(text: str) -> str:
    return redact(text)[:_REASON_TEXT_LIMIT]


def _write_lines(blob: str, records: Sequence[Mapping[str, Any]]) -> None:
    body = json_lines(dict(record) for record in records)
    storage.container(WORK_CONTAINER).upload_blob(blob, body, overwrite=True)


def _read_lines(blob: str) -> list[dict[str, Any]]:
    try:
        body = storage.container(WORK_CONTAINER).download_blob(blob).readall()
    except ResourceNotFoundError as missing:
        raise RuntimeError(f"chunk data {blob} is gone") from missing
    return read_json_lines(body)
