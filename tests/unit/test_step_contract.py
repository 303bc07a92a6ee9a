"""The step contract with storage replaced by in-memory fakes: outcomes, retries, idempotency, alerts."""

import logging
from typing import Any

import azure.functions as func
import pytest

from shared import ledger
from shared.messages import ItemRef, StepMessage
from shared.outcomes import TECHNICAL_FAILURE, ItemStatus
from shared.pipeline import BusinessException, Chain, WorkItem

CPR = "2412581234"


class FakeStorage:
    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.transitions: dict[str, ledger.ChunkTransition] = {}
        self.rows: dict[str, ledger.ItemRow] = {}
        self.sent: list[tuple[StepMessage, int]] = []
        self.blobs: dict[str, list[dict[str, Any]]] = {"d": [{"n": n, "cpr": CPR} for n in range(4)]}
        monkeypatch.setattr("shared.pipeline._read_lines", lambda blob: self.blobs[blob])
        monkeypatch.setattr("shared.pipeline._write_lines", self.blobs.__setitem__)
        monkeypatch.setattr("shared.ledger.chunk_already_done", lambda *k: "/".join(map(str, k)) in self.transitions)
        monkeypatch.setattr(
            "shared.ledger.record_transition",
            lambda t: self.transitions.__setitem__(f"{t.run_id}/{t.step}/{t.chunk_id}/{t.attempt}", t),
        )
        monkeypatch.setattr("shared.ledger.write_items", lambda rows, created: self._write(rows))
        monkeypatch.setattr("shared.ledger.end_item_once", self._end_once)
        monkeypatch.setattr(Chain, "_send", lambda chain, m, delay_seconds=0: self.sent.append((m, delay_seconds)))

    def _write(self, rows: list[ledger.ItemRow]) -> None:
        for row in rows:
            self.rows[row.item_id] = row

    def _end_once(self, row: ledger.ItemRow) -> bool:
        if row.item_id in self.rows:
            return False
        self.rows[row.item_id] = row
        return True


@pytest.fixture
def fake(monkeypatch):
    return FakeStorage(monkeypatch)


@pytest.fixture
def chain():
    chain = Chain("contract", ["first", "last"])
    yield chain
    del Chain.registry["contract"]


def delivery(step: str = "first", attempt: int = 1, items: int = 4) -> func.QueueMessage:
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
    return func.QueueMessage(body=message.encode().encode())


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
    ((retry, delay),) = retried
    assert [i.id for i in retry.items] == ["000002"] and retry.attempt == 2 and delay == 1
    (transition,) = fake.transitions.values()
    assert (transition.done, transition.business, transition.retried, transition.technical_handoff) == (2, 1, 1, 0)


def test_a_second_delivery_of_a_completed_chunk_does_nothing(fake, chain):
    calls: list[str] = []

    def counting(item: WorkItem) -> None:
        calls.append(item.item_id)

    chain.run_step("first", delivery(), counting)
    sent, rows = list(fake.sent), dict(fake.rows)
    chain.run_step("first", delivery(), counting)
    assert calls == ["000000", "000001", "000002", "000003"]
    assert fake.sent == sent and fake.rows == rows


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


def test_a_message_for_another_step_is_refused(fake, chain):
    with pytest.raises(ValueError, match="reached contract/last"):
        chain.run_step("last", delivery("first"), work)
