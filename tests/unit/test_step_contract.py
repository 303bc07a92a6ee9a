"""The step contract with storage replaced by in-memory fakes: outcomes, retries, idempotency, alerts."""

import logging
import traceback
from typing import Any

import azure.functions as func
import pytest
from azure.functions.queue import QueueMessage

from shared import ledger
from shared.messages import ItemRef, StepMessage
from shared.outcomes import TECHNICAL_FAILURE, TERMINAL, ItemStatus
from shared.pipeline import BusinessException, Chain, NewItem, WorkItem

CPR = "2412581234"


class _Entity(dict):
    def __init__(self, status: str, etag: int) -> None:
        super().__init__(Status=status)
        self.metadata = {"etag": etag}


class FakeStorage:
    """Items, history rows and sent messages in memory, with the ledger's conditional-ending contract."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.transitions: dict[str, ledger.ChunkTransition] = {}
        self.rows: dict[str, ledger.ItemRow] = {}
        self.versions: dict[str, int] = {}
        self.sent: list[tuple[StepMessage, int]] = []
        self.handoffs: list[tuple[str, ...]] = []
        self.blobs: dict[str, list[dict[str, Any]]] = {"d": [{"n": n, "cpr": CPR} for n in range(4)]}
        monkeypatch.setattr("shared.pipeline._read_lines", lambda blob: self.blobs[blob])
        monkeypatch.setattr("shared.pipeline._write_lines", self.blobs.__setitem__)
        monkeypatch.setattr("shared.ledger.chunk_already_done", lambda *k: "/".join(map(str, k)) in self.transitions)
        monkeypatch.setattr(
            "shared.ledger.record_transition",
            lambda t: self.transitions.__setitem__(f"{t.run_id}/{t.step}/{t.chunk_id}/{t.attempt}", t),
        )
        monkeypatch.setattr("shared.ledger.chunk_rows", self.chunk_rows)
        monkeypatch.setattr("shared.ledger.end_items", self.end_items)
        monkeypatch.setattr(Chain, "_send", lambda chain, m, delay_seconds=0: self.sent.append((m, delay_seconds)))
        self.calls: list[str] = []
        monkeypatch.setattr("shared.handoff.request", self.request_handoff)

    def chunk_rows(
        self, run_id: str, bucket: int, ids: list[str], columns: list[str] | None = None
    ) -> dict[str, _Entity]:
        return {
            i: _Entity(self.rows[i].status.value if i in self.rows else "pending", self.versions.get(i, 0)) for i in ids
        }

    def request_handoff(self, automation: str, run_id: str, bucket: int, ids: list[str]) -> None:
        self.handoffs.append(tuple(ids))
        self.calls.append("handoff")

    def end_items(self, rows: list[ledger.ItemRow], current: dict[str, _Entity], committed=lambda rows: None) -> None:
        self.calls.append("end_items")
        if any(self.versions.get(r.item_id, 0) != current[r.item_id].metadata["etag"] for r in rows):
            raise ledger.ItemEndedElsewhereError("changed meanwhile")
        for row in rows:
            self.rows[row.item_id] = row
            self.versions[row.item_id] = self.versions.get(row.item_id, 0) + 1
        committed(list(rows))


@pytest.fixture
def fake(monkeypatch):
    return FakeStorage(monkeypatch)


@pytest.fixture
def chain():
    chain = Chain("contract", ["first", "last"])
    yield chain
    del Chain.registry["contract"]


def delivery(step: str = "first", attempt: int = 1, items: int = 4, dequeue_count: int = 1) -> func.QueueMessage:
    message = StepMessage(
        automation="contract",
        run_id="contract.20261124T051438-267Z.abcdef",
        step=step,
        attempt=attempt,
        config_version="2026.1",
        chunk_id="c00000" if items > 1 else "c00000~000002",
        bucket=0,
        data="d",
        items=tuple(ItemRef(id=f"{n:06d}", line=n) for n in range(items)),
    )
    return QueueMessage(body=message.encode().encode(), dequeue_count=dequeue_count)


def work(item: WorkItem) -> dict[str, Any] | None:
    """Item 1 breaks a rule, item 2 fails technically, the rest pass."""
    if item.data["n"] == 1:
        raise BusinessException("REGEL", "En regel sagde nej.")
    if item.data["n"] == 2:
        raise ConnectionError(f"look-up of {item.data['cpr']} timed out")
    return None


def test_outcomes_are_split_ended_retried_and_forwarded(fake, chain):
    chain.run_step("first", delivery(), work)

    assert fake.rows["000001"].status is ItemStatus.HANDED_OFF and fake.rows["000001"].reason_code == "REGEL"
    assert fake.handoffs == [("000001",)], "a person is asked for, once per chunk"
    assert fake.calls == ["handoff", "end_items"], "asked for before the ending is written: a crash cannot lose it"
    assert set(fake.rows) == {"000001"}, "only the business exception ends at a middle step"
    forwarded = [m for m, _ in fake.sent if m.step == "last"]
    retried = [(m, d) for m, d in fake.sent if m.step == "first"]
    assert [i.id for m in forwarded for i in m.items] == ["000000", "000003"]
    assert forwarded[0].data == "d", "unchanged data is not copied to a new blob"
    assert forwarded[0].chunk_id.startswith("c00000.") and forwarded[0].chunk_id != "c00000", "names its items"
    ((retry, delay),) = retried
    assert [i.id for i in retry.items] == ["000002"] and retry.attempt == 2 and delay == 1
    (transition,) = fake.transitions.values()
    assert (transition.done, transition.business, transition.retried, transition.technical_handoff) == (2, 1, 1, 0)


def test_a_second_delivery_of_a_completed_chunk_does_nothing(fake, chain):
    calls: list[str] = []

    def counting(item: WorkItem) -> None:
        calls.append(item.item_id)

    chain.run_step("first", delivery(), counting)
    assert [m.chunk_id for m, _ in fake.sent] == ["c00000"], "a chunk forwarded whole keeps its id"
    sent, rows = list(fake.sent), dict(fake.rows)
    chain.run_step("first", delivery(), counting)
    assert calls == ["000000", "000001", "000002", "000003"]
    assert fake.sent == sent and fake.rows == rows


def test_items_already_ended_elsewhere_are_skipped_and_keep_their_first_end(fake, chain):
    fake.rows["000002"] = ledger.ItemRow(
        run_id="r", bucket=0, item_id="000002", status=ItemStatus.HANDED_OFF, reason_code="INGEN_NEMKONTO"
    )
    worked: list[str] = []
    chain.run_step("last", delivery("last"), lambda item: worked.append(item.item_id))
    assert worked == ["000000", "000001", "000003"]
    assert fake.rows["000002"].reason_code == "INGEN_NEMKONTO"
    assert {r.status for i, r in fake.rows.items() if i != "000002"} == {ItemStatus.DONE}


def test_changed_data_goes_to_a_new_blob_per_delivery(fake, chain, monkeypatch):
    outcomes = iter([None, None, None, None, RuntimeError("second delivery differs")])

    def enrich(item: WorkItem) -> dict[str, Any]:
        failure = next(outcomes, None)
        if failure:
            raise failure
        return {**item.data, "enriched": True}

    monkeypatch.setattr("shared.ledger.record_transition", lambda t: (_ for _ in ()).throw(OSError("crash")))
    with pytest.raises(Exception, match="crash"):
        chain.run_step("first", delivery(), enrich)
    with pytest.raises(Exception, match="crash"):
        chain.run_step("first", delivery(), enrich)
    first, second = (m for m, _ in fake.sent if m.step == "last")
    assert first.data != second.data
    for message in (first, second):
        lines = fake.blobs[message.data]
        assert [lines[ref.line]["n"] for ref in message.items] == [int(ref.id) for ref in message.items]


def test_last_step_ends_items_done_in_one_batch(fake, chain):
    chain.run_step("last", delivery("last"), lambda item: None)
    assert {r.status for r in fake.rows.values()} == {ItemStatus.DONE}
    assert len(fake.rows) == 4 and not fake.sent


def test_last_attempt_hands_off_with_teknisk_fejl_and_alerts(fake, chain, caplog):
    caplog.set_level(logging.INFO, logger="ks.events")
    chain.run_step("first", delivery(attempt=3, items=1), lambda item: (_ for _ in ()).throw(OSError(CPR)))
    row = fake.rows["000000"]
    assert row.status is ItemStatus.HANDED_OFF and row.reason_code == TECHNICAL_FAILURE
    assert row.attempts == 3 and "teknisk fejl" in row.reason_text and CPR not in row.reason_text
    assert fake.handoffs == [("000000",)]
    alerts = [r for r in caplog.records if getattr(r, "custom_event", "") == "OperatorAlert"]
    assert len(alerts) == 1 and alerts[0].levelno == logging.ERROR
    assert alerts[0].reason_code == TECHNICAL_FAILURE and not fake.sent


def test_a_redelivered_chunk_is_halved_before_any_work(fake, chain):
    worked: list[str] = []
    chain.run_step("first", delivery(dequeue_count=2), lambda item: worked.append(item.item_id))
    assert worked == [] and not fake.rows and not fake.transitions
    halves = [m for m, _ in fake.sent]
    assert [[i.id for i in m.items] for m in halves] == [["000000", "000001"], ["000002", "000003"]]
    assert [m.chunk_id for m in halves] == ["c00000-a", "c00000-b"] and {m.attempt for m in halves} == {1}


def test_a_single_failing_on_its_last_delivery_alerts_and_goes_to_poison_redacted(fake, chain, monkeypatch, caplog):
    caplog.set_level(logging.INFO, logger="ks.events")
    monkeypatch.setattr("shared.ledger.chunk_rows", lambda *a: (_ for _ in ()).throw(OSError(f"down {CPR}")))
    with pytest.raises(Exception, match="down") as error:
        chain.run_step("first", delivery(items=1, dequeue_count=5), work)  # host.json maxDequeueCount
    assert CPR not in str(error.value), "escaping exceptions are redacted"
    assert error.value.__suppress_context__ and CPR not in "".join(traceback.format_exception(error.value))
    alerts = [r for r in caplog.records if getattr(r, "custom_event", "") == "OperatorAlert"]
    assert [a.reason_code for a in alerts] == ["POISON_MESSAGE"]


def test_a_collision_with_another_delivery_is_resolved_by_reading_again(fake, chain, monkeypatch):
    real_chunk_rows = fake.chunk_rows
    reads: list[int] = []

    def racing_chunk_rows(run_id, bucket, ids, columns=None):
        rows = real_chunk_rows(run_id, bucket, ids, columns)
        if not reads:  # another delivery ends item 0 right after our first read
            fake.rows["000000"] = ledger.ItemRow(run_id="r", bucket=0, item_id="000000", status=ItemStatus.DONE)
            fake.versions["000000"] = 1
        reads.append(1)
        return rows

    monkeypatch.setattr("shared.ledger.chunk_rows", racing_chunk_rows)
    chain.run_step("last", delivery("last"), lambda item: None)
    assert len(reads) == 2
    (transition,) = fake.transitions.values()
    assert transition.skipped == 1 and transition.done == 3


def test_a_malformed_reason_code_is_a_technical_failure_not_a_stored_cpr(fake, chain):
    chain.run_step("first", delivery(items=1), lambda item: (_ for _ in ()).throw(BusinessException(CPR, "x")))
    assert not fake.rows
    ((retry, _),) = fake.sent
    assert retry.attempt == 2


def test_new_items_refuse_what_the_ledger_would_refuse():
    with pytest.raises(ValueError):
        NewItem(data={}, rejected=("ugyldig række", "tekst"))
    with pytest.raises(ValueError):
        NewItem(data={}, reference=CPR)


def test_a_chunk_out_of_time_continues_in_a_new_message(fake, chain, monkeypatch):
    monkeypatch.setenv("STEP_TIME_BUDGET_SECONDS", "1")
    from shared.settings import get_settings

    get_settings.cache_clear()
    clock = iter([0.0, 0.5, 2.0, 3.0, 4.0])  # deadline at 1.0; the first item is worked unchecked
    monkeypatch.setattr("shared.pipeline.time.monotonic", lambda: next(clock))
    try:
        chain.run_step("last", delivery("last"), lambda item: None)
    finally:
        get_settings.cache_clear()
    assert {i for i, r in fake.rows.items() if r.status in TERMINAL} == {"000000", "000001"}
    ((continuation, _),) = fake.sent
    assert [i.id for i in continuation.items] == ["000002", "000003"]
    assert continuation.step == "last" and continuation.chunk_id == "c00000+000002"


def test_a_message_for_another_step_is_refused(fake, chain):
    with pytest.raises(ValueError, match="reached contract/last"):
        chain.run_step("last", delivery("first"), work)


def test_business_reason_codes_must_be_codes_not_free_text():
    with pytest.raises(ValueError):
        ledger.ItemRow(run_id="r", bucket=0, item_id="1", status=ItemStatus.HANDED_OFF, reason_code=CPR)
    with pytest.raises(ValueError):
        ledger.ItemRow(run_id="r", bucket=0, item_id="1", status=ItemStatus.HANDED_OFF, reference=CPR)


def test_a_continuation_always_works_one_item_and_keeps_a_short_id(fake, chain, monkeypatch):
    monkeypatch.setenv("STEP_TIME_BUDGET_SECONDS", "1")
    from shared.settings import get_settings

    get_settings.cache_clear()
    clock = iter(float(n * 10) for n in range(100))  # every check is past the deadline
    monkeypatch.setattr("shared.pipeline.time.monotonic", lambda: next(clock))
    message = StepMessage.decode(delivery("last").get_body())
    continued = QueueMessage(
        body=message.model_copy(update={"chunk_id": "c00000+000001"}).encode().encode(), dequeue_count=1
    )
    try:
        chain.run_step("last", continued, lambda item: None)
    finally:
        get_settings.cache_clear()
    assert set(fake.rows) == {"000000"}
    ((continuation, _),) = fake.sent
    assert continuation.chunk_id == "c00000+000001"
