"""The step pipeline: how an automation opens a run, moves chunks of items from step to step, and ends them.

An automation declares a `Chain` of named steps. Its intake calls `start_run`; each queue-triggered step calls
`run_step` with a function that does the step's work for one item. Per item the work either returns (done:
on to the next step, or ended DONE after the last), raises `BusinessException` (a rule said no: ended
HANDED_OFF with its reason code and Danish text, never retried) or raises anything else (technical failure:
the item leaves its chunk and is retried alone with exponential backoff through the visibility timeout;
after the last attempt it is ended HANDED_OFF with TEKNISK_FEJL and an operator alert).

Effects are ordered so that a crash anywhere, and any message delivered twice, loses and doubles nothing:
item rows and follow-up messages first, the chunk's history row last. A redelivered message whose history row
exists does nothing; one without it is worked again, which is why work must be keyed by `WorkItem.key`.
"""

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, ClassVar

import azure.functions as func
from azure.core.exceptions import ResourceNotFoundError

from shared import ledger, storage
from shared.events import Event, emit
from shared.logs import get_logger, log_context
from shared.messages import ItemRef, StepMessage, chunked, fit_to_queue, single, to_json_line
from shared.outcomes import TECHNICAL_FAILURE, TECHNICAL_FAILURE_TEXT, ItemStatus
from shared.personal_data import redact
from shared.settings import get_settings

#: Blob container for chunk data (items' records between steps).
WORK_CONTAINER = "work"
_REASON_TEXT_LIMIT = 2000

_log = get_logger("ks.pipeline")


class BusinessException(Exception):  # noqa: N818 - the domain's own word for "a rule said no"
    """Raised by a step's work when a business rule says no: the item goes to a person, never retried."""

    def __init__(self, reason_code: str, text_da: str) -> None:
        super().__init__(reason_code)
        self.reason_code = reason_code
        self.text_da = text_da


@dataclass(frozen=True)
class NewItem:
    """An item as the intake found it: its data, control amount, reference, and a rejection if unreadable."""

    data: Mapping[str, Any]
    amount: Decimal | None = None
    reference: str = ""
    rejected: tuple[str, str] | None = None  # (reason code, Danish text) for input that is not a case


@dataclass
class WorkItem:
    """One item handed to a step's work function."""

    run_id: str
    item_id: str
    attempt: int
    data: dict[str, Any]

    @property
    def key(self) -> str:
        """Idempotency key for side effects: the same item gives the same key on every attempt."""
        return f"{self.run_id}/{self.item_id}"


StepWork = Callable[[WorkItem], Mapping[str, Any] | None]


def backoff_seconds(failed_attempt: int, base: int, cap: int) -> int:
    """Delay before the next attempt after attempt `failed_attempt` failed: base, 2·base, 4·base ..., capped."""
    return min(cap, base * 2 ** (failed_attempt - 1))


@dataclass
class _ChunkOutcome:
    done: list[tuple[ItemRef, dict[str, Any]]] = field(default_factory=list)
    changed: bool = False  # some work returned new data, so the next step needs a new data blob
    business: list[tuple[ItemRef, BusinessException]] = field(default_factory=list)
    failed: list[tuple[ItemRef, Exception]] = field(default_factory=list)


class Chain:
    """An automation's steps in order, and the queues between them."""

    registry: ClassVar[dict[str, "Chain"]] = {}

    def __init__(self, automation: str, steps: Sequence[str]) -> None:
        if not steps:
            raise ValueError("a chain needs at least one step")
        self.automation = automation
        self.steps = tuple(steps)
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
    ) -> str:
        """Opens a run for a source (once per run_key), records its items and hands them to the first step."""
        settings = get_settings()
        started = started_at or datetime.now(UTC)
        run_id = ledger.claim_source(self.automation, run_key, ledger.new_run_id(self.automation, started, run_key))
        with log_context(automation=self.automation, run_id=run_id, step="intake"):
            existing = ledger.get_run(run_id)
            if existing is not None and existing.status is not ledger.RunStatus.INTAKE:
                _log.info("source already has run %s; nothing to do", run_id)
                return run_id
            run = ledger.Run(
                automation=self.automation,
                run_id=run_id,
                trigger=trigger,
                source=redact(source),
                started_at=ledger.run_started_at(run_id),
                status=ledger.RunStatus.INTAKE,
                expected_items=len(items),
                expected_amount=sum((item.amount or Decimal(0) for item in items), Decimal(0)),
                buckets=ledger.bucket_count(len(items), settings.items_per_bucket),
                code_version=settings.code_version,
                config_version=settings.config_version,
            )
            ledger.save_run(run)
            self._create_items(run, items, resumed=existing is not None)
            if not items:
                run = run.model_copy(update={"status": ledger.RunStatus.COMPLETE, "ended_at": datetime.now(UTC)})
            else:
                run = run.model_copy(update={"status": ledger.RunStatus.OPEN})
            ledger.save_run(run)
            emit(Event.RUN_STARTED, automation=self.automation, run_id=run_id, items=len(items))
            if not items:
                emit(Event.RUN_COMPLETED, automation=self.automation, run_id=run_id, items=0)
            _log.info("run opened with %d items from %s", len(items), trigger)
            return run_id

    def _create_items(self, run: ledger.Run, items: Sequence[NewItem], *, resumed: bool) -> None:
        settings = get_settings()
        width = max(6, len(str(len(items))))
        refs = [ItemRef(id=f"{n + 1:0{width}d}", line=0) for n in range(len(items))]
        already = {row["ItemId"] for row in ledger.item_rows(run)} if resumed else set()
        messages: list[StepMessage] = []
        for number, chunk_refs in chunked(refs, settings.chunk_size):
            start = number * settings.chunk_size
            chunk_items = items[start : start + len(chunk_refs)]
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
                    reason_text=redact(item.rejected[1]) if item.rejected else "",
                    config_version=run.config_version,
                )
                for ref, item in zip(chunk_refs, chunk_items, strict=True)
                if ref.id not in already
            ]
            # A resumed intake never rewrites a row: a chunk sent before the crash may have ended it already.
            ledger.write_items(rows, created=True)
            self._emit_outcomes([row for row in rows if row.status is ItemStatus.REJECTED])
            pending = tuple(
                ref.model_copy(update={"line": line})
                for line, (ref, item) in enumerate(zip(chunk_refs, chunk_items, strict=True))
                if not item.rejected
            )
            if pending:
                messages.append(
                    StepMessage(
                        automation=self.automation,
                        run_id=run.run_id,
                        step=self.steps[0],
                        chunk_id=f"c{number:05d}",
                        bucket=bucket,
                        data=data,
                        items=pending,
                    )
                )
        for message in messages:
            self._send(message)

    # --- steps --------------------------------------------------------------------------------------------

    def run_step(self, step: str, msg: func.QueueMessage, work: StepWork) -> None:
        """Does one step for a chunk: the work per item, then outcomes, follow-ups and the chunk's history row."""
        message = StepMessage.decode(msg.get_body())
        if message.automation != self.automation or message.step != step:
            raise ValueError(f"message for {message.automation}/{message.step} reached {self.automation}/{step}")
        with log_context(automation=self.automation, run_id=message.run_id, step=step):
            if ledger.chunk_already_done(message.run_id, step, message.chunk_id, message.attempt):
                _log.info("chunk %s attempt %d already done; redelivery ignored", message.chunk_id, message.attempt)
                return
            started = time.perf_counter()
            outcome = self._work_chunk(message, work)
            technical_handoffs = self._settle(message, outcome)
            transition = ledger.ChunkTransition(
                run_id=message.run_id,
                step=step,
                chunk_id=message.chunk_id,
                attempt=message.attempt,
                items=len(message.items),
                done=len(outcome.done),
                business=len(outcome.business),
                retried=len(outcome.failed) - technical_handoffs,
                technical_handoff=technical_handoffs,
            )
            ledger.record_transition(transition)
            emit(
                Event.CHUNK_COMPLETED,
                automation=self.automation,
                duration_ms=round((time.perf_counter() - started) * 1000),
                **transition.model_dump(),
            )

    def _work_chunk(self, message: StepMessage, work: StepWork) -> _ChunkOutcome:
        records = _read_lines(message.data)
        outcome = _ChunkOutcome()
        for ref in message.items:
            with log_context(item_id=ref.id):
                data = dict(records[ref.line])
                try:
                    output = work(WorkItem(message.run_id, ref.id, message.attempt, data))
                except BusinessException as rule:
                    outcome.business.append((ref, rule))
                except Exception as error:  # anything else is technical: retried, never lost
                    _log.warning("attempt %d failed: %s", message.attempt, error, exc_info=True)
                    outcome.failed.append((ref, error))
                else:
                    outcome.done.append((ref, dict(output) if output is not None else data))
                    outcome.changed |= output is not None
        return outcome

    def _settle(self, message: StepMessage, outcome: _ChunkOutcome) -> int:
        """Ends, retries and forwards the chunk's items; returns how many were handed off as TEKNISK_FEJL."""
        settings = get_settings()
        row = ledger.ItemRow(
            run_id=message.run_id,
            bucket=message.bucket,
            item_id="-",
            status=ItemStatus.HANDED_OFF,
            step=message.step,
            attempts=message.retries + message.attempt,
            config_version=settings.config_version,
        )
        ended = [
            row.model_copy(
                update={"item_id": ref.id, "reason_code": rule.reason_code, "reason_text": _reason(rule.text_da)}
            )
            for ref, rule in outcome.business
        ]
        last_step = message.step == self.steps[-1]
        if last_step:
            ended += [row.model_copy(update={"item_id": ref.id, "status": ItemStatus.DONE}) for ref, _ in outcome.done]
        ledger.write_items(ended, created=False)
        self._emit_outcomes(ended)

        technical_handoffs = 0
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
            technical_handoffs += 1
            handed = row.model_copy(
                update={
                    "item_id": ref.id,
                    "reason_code": TECHNICAL_FAILURE,
                    "reason_text": _reason(f"{TECHNICAL_FAILURE_TEXT}\nSidste fejl: {type(error).__name__}: {error}"),
                }
            )
            if ledger.end_item_once(handed):
                emit(
                    Event.OPERATOR_ALERT,
                    level=40,
                    automation=self.automation,
                    run_id=message.run_id,
                    item_id=ref.id,
                    step=message.step,
                    reason_code=TECHNICAL_FAILURE,
                )
                self._emit_outcomes([handed])

        if outcome.done and not last_step:
            self._forward(message, outcome)
        return technical_handoffs

    def _emit_outcomes(self, ended: Sequence[ledger.ItemRow]) -> None:
        for item in ended:
            emit(
                Event.ITEM_OUTCOME,
                automation=self.automation,
                run_id=item.run_id,
                item_id=item.item_id,
                outcome=item.status.value,
                reason_code=item.reason_code,
            )

    def _forward(self, message: StepMessage, outcome: _ChunkOutcome) -> None:
        next_step = self.steps[self.steps.index(message.step) + 1]
        data, items = message.data, tuple(ref for ref, _ in outcome.done)
        if outcome.changed:
            data = f"{self.automation}/{message.run_id}/{message.step}/{message.chunk_id}.{message.attempt}.jsonl"
            _write_lines(data, [record for _, record in outcome.done])
            items = tuple(ref.model_copy(update={"line": line}) for line, ref in enumerate(items))
        self._send(
            message.model_copy(
                update={
                    "step": next_step,
                    "attempt": 1,
                    "retries": message.retries + message.attempt - 1,
                    "data": data,
                    "items": items,
                }
            )
        )

    def _send(self, message: StepMessage, delay_seconds: int = 0) -> None:
        for part in fit_to_queue(message):
            storage.queue(self.queue_name(part.step)).send_message(
                part.encode(), visibility_timeout=delay_seconds or None
            )


def _reason(text: str) -> str:
    return redact(text)[:_REASON_TEXT_LIMIT]


def _write_lines(blob: str, records: Sequence[Mapping[str, Any]]) -> None:
    body = "".join(to_json_line(dict(record)) + "\n" for record in records).encode("utf-8")
    storage.container(WORK_CONTAINER).upload_blob(blob, body, overwrite=True)


def _read_lines(blob: str) -> list[dict[str, Any]]:
    try:
        body = storage.container(WORK_CONTAINER).download_blob(blob).readall()
    except ResourceNotFoundError as missing:
        raise RuntimeError(f"chunk data {blob} is gone") from missing
    return [json.loads(line) for line in body.decode("utf-8").splitlines() if line]
