"""The step contract with storage replaced by in-memory fakes: outcomes, retries, idempotency, alerts."""

import logging
from typing import Any

import azure.functions as func
import pytest
from azure.functions.queue import QueueMessage

from shared import ledger
from shared.messages import ItemRef, StepMessage
from shared.outcomes import TECHNICAL_FAILURE, TERMINAL, ItemStatus
from shared.pipeline import BusinessException, Chain, WorkItem

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

    def chunk_rows(self, run_id: str, bucket: int, ids: list[str]) -> dict[str, _Entity]:
        return {
            i: _Entity(self.rows[i].status.value if i in self.rows else "pending", self.versions.get(i, 0)) for i in ids
        }

    def end_items(self, rows: list[ledger.ItemRow], current: dict[str, _Entity]) -> None:
        if any(self.versions.get(r.item_id, 0) != current[r.item_id].metadata["etag"] for r in rows):
            raise ledger.ItemEndedElsewhereError("changed meanwhile")
        for row in rows:
            self.rows[row.item_id] = row
            self.versions[row.item_id] = self.versions.get(row.item_id, 0) + 1


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
    alerts = [r for r in caplog.records if getattr(r, "custom_event", "") == "OperatorAlert"]
    assert len(alerts) == 1 and alerts[0].levelno == logging.ERROR
    assert alerts[0].reason_code == TECHNICAL_FAILURE and not fake.sent


def test_a_chunk_failing_on_its_last_delivery_is_split_not_poisoned(fake, chain, monkeypatch):
    monkeypatch.setattr("shared.ledger.chunk_rows", lambda *a: (_ for _ in ()).throw(OSError(f"down {CPR}")))
    with pytest.raises(Exception, match="down") as error:
        chain.run_step("first", delivery(dequeue_count=4), work)
    assert CPR not in str(error.value), "an exception escaping a handler is redacted"
    chain.run_step("first", delivery(dequeue_count=5), work)  # host.json maxDequeueCount
    singles = [m for m, _ in fake.sent]
    assert [[i.id for i in m.items] for m in singles] == [["000000"], ["000001"], ["000002"], ["000003"]]
    assert all(m.attempt == 1 and m.chunk_id.startswith("c00000~") for m in singles)


def test_a_chunk_out_of_time_continues_in_a_new_message(fake, chain, monkeypatch):
    monkeypatch.setenv("STEP_TIME_BUDGET_SECONDS", "1")
    from shared.settings import get_settings

    get_settings.cache_clear()
    clock = iter([0.0, 0.5, 0.9, 2.0, 3.0, 4.0])
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
