"""Hand-off to a person: one ServiceNow task per item, linked to its request, created once."""

import threading
import uuid
from datetime import UTC, datetime

import pytest

from shared import ledger
from shared.connectors.servicenow import ServiceNowClient
from shared.handoff import HandoffMessage, HandoffNotReadyError, hand_off
from shared.outcomes import ItemStatus

pytestmark = pytest.mark.integration
CPR = "2412581234"


@pytest.fixture
def client(sample_env) -> ServiceNowClient:
    state = sample_env.servicenow.state
    return ServiceNowClient(sample_env.servicenow.url, state.client_id, state.client_secret)


def handed_off_item(status: ItemStatus = ItemStatus.HANDED_OFF, origin: str = "") -> tuple[str, str]:
    run_id = ledger.new_run_id("sample", datetime.now(UTC), uuid.uuid4().hex)
    row = ledger.ItemRow(run_id=run_id, bucket=0, item_id="000001", status=ItemStatus.PENDING, origin=origin)
    ledger.create_items([row])
    if status is not ItemStatus.PENDING:
        ended = row.model_copy(update={"status": status})
        ended = ledger.ItemRow.model_validate(
            {**ended.model_dump(), "reason_code": "INGEN_NEMKONTO", "reason_text": "Modtageren har ingen NemKonto."}
        )
        ledger.end_items([ended], ledger.chunk_rows(run_id, 0, ["000001"]))
    return run_id, "000001"


def message(run_id: str, item_id: str) -> HandoffMessage:
    return HandoffMessage(automation="sample", run_id=run_id, bucket=0, item_ids=(item_id,))


def test_a_case_is_created_once_linked_to_its_request_and_recorded(sample_env, client):
    request = sample_env.servicenow.state.insert("sc_req_item", {"short_description": "Ny leverandør"})
    run_id, item_id = handed_off_item(origin=f"sc_req_item:{request['sys_id']}")
    (number,) = hand_off(message(run_id, item_id), claimant="m1", client=client)
    assert hand_off(message(run_id, item_id), claimant="m2", client=client) == []
    (task,) = sample_env.tasks(run_id)[item_id]
    assert task["number"] == number and task["request_item"] == request["sys_id"]
    assert task["correlation_id"] == f"{run_id}/{item_id}" and "INGEN_NEMKONTO" in task["short_description"]
    assert "Modtageren har ingen NemKonto." in task["description"]
    assert ledger.get_item(run_id, 0, item_id)["CaseNumber"] == number


def test_a_case_created_before_a_crash_is_found_not_created_again(sample_env, client, monkeypatch):
    run_id, item_id = handed_off_item()
    monkeypatch.setattr(ledger, "set_case_number", lambda *a: (_ for _ in ()).throw(OSError("died")))
    with pytest.raises(OSError):
        hand_off(message(run_id, item_id), claimant="m1", client=client)
    monkeypatch.undo()
    (number,) = hand_off(message(run_id, item_id), claimant="m1", client=client)  # the redelivery
    assert [t["number"] for t in sample_env.tasks(run_id)[item_id]] == [number]


def test_two_messages_at_once_create_one_case(sample_env, client):
    run_id, item_id = handed_off_item()
    sample_env.servicenow.state.slow_seconds = 0.2  # widen the window between look-up and create
    results: list[list[str]] = []
    threads = [
        threading.Thread(target=lambda c=c: results.append(hand_off(message(run_id, item_id), c, client)))
        for c in ("m1", "m2", "m3")
    ]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sample_env.servicenow.state.slow_seconds = 0
    assert len(sample_env.tasks(run_id)[item_id]) == 1
    assert sorted(len(r) for r in results) == [0, 0, 1]


def test_an_item_not_yet_ended_is_retried_later_and_one_ended_otherwise_is_left(sample_env, client):
    run_id, item_id = handed_off_item(ItemStatus.PENDING)
    with pytest.raises(HandoffNotReadyError):
        hand_off(message(run_id, item_id), claimant="m1", client=client)
    done_run, done_item = handed_off_item(ItemStatus.DONE)
    assert hand_off(message(done_run, done_item), claimant="m1", client=client) == []
    assert sample_env.tasks(done_run) == {}
