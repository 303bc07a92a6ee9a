"""The sweeper on Azurite: heartbeat, poison depth, stalled intakes, stuck items handed to people."""

import logging
from datetime import UTC, datetime, timedelta

import pytest

from devhost.sample.chain import chain, parse_rows
from devhost.sample.data import sample_file
from functions.operations.run_closer import close_run
from functions.operations.sweeper import sweep_runs
from shared import ledger, storage
from tests.integration.test_pipeline import assert_run_settled

pytestmark = pytest.mark.integration


def events(caplog, name: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if getattr(r, "custom_event", "") == name]


def test_heartbeat_and_poison_depth_per_queue(sample_env, host, caplog):
    caplog.set_level(logging.INFO, logger="ks.events")
    storage.queue_service().get_queue_client("sample-enrich-poison").send_message("aGVsbG8=")
    try:
        assert host.fire("sweeper")
    finally:
        storage.queue_service().get_queue_client("sample-enrich-poison").clear_messages()
    assert len(events(caplog, "Heartbeat")) == 1
    depths = {r.queue: r.depth for r in events(caplog, "PoisonQueueDepth")}
    assert depths["sample-enrich-poison"] == 1 and depths["handoff-poison"] == 0
    assert {"sample-validate-poison", "sample-book-poison"} <= set(depths)


def test_items_stuck_past_the_limit_go_to_people_with_a_reason(sample_env, host, caplog):
    caplog.set_level(logging.INFO, logger="ks.events")
    sample = sample_file(rows=6, seed=41, with_problems=False)
    five_hours_ago = datetime.now(UTC) - timedelta(hours=5)
    run_id = chain.start_run(
        trigger="blob",
        source="sample-inbox/stuck.csv",
        run_key="stuck.csv@1",
        items=parse_rows(sample.text),
        started_at=five_hours_ago,
    )
    assert host.fire("sweeper")
    run = ledger.get_run(run_id)
    assert {row["Status"] for row in ledger.item_rows(run)} == {"pending"}, "it only just started to move"
    sweep_runs(datetime.now(UTC) + timedelta(hours=5))  # five hours on, nothing has moved
    run = ledger.get_run(run_id)
    rows = {row["ItemId"]: row for row in ledger.item_rows(run)}
    assert {(r["Status"], r["ReasonCode"]) for r in rows.values()} == {("handed_off", "FASTLAAST")}
    assert "ikke bevæget sig" in rows["000001"]["ReasonText"] and rows["000001"]["Step"] == "intake"
    assert [r.items for r in events(caplog, "OperatorAlert") if r.reason_code == "FASTLAAST"] == [6]

    host.run_until_idle()  # the late step messages find the items ended; the hand-offs create the cases
    closed = close_run(run_id)
    assert closed is not None and closed.status is ledger.RunStatus.COMPLETE
    assert set(sample_env.tasks(run_id)) == set(rows)
    assert sample_env.bookings()["requests"] == {}, "nothing was booked for items handed to people"


def test_a_stalled_intake_is_reported_and_a_young_run_left_alone(sample_env, host, caplog):
    caplog.set_level(logging.INFO, logger="ks.events")
    stalled = ledger.Run(
        automation="sample",
        run_id=ledger.new_run_id("sample", datetime.now(UTC) - timedelta(hours=6), "stalled"),
        trigger="blob",
        source="sample-inbox/stalled.csv",
        started_at=datetime.now(UTC) - timedelta(hours=6),
        status=ledger.RunStatus.INTAKE,
        code_version="test",
        config_version="2026.1",
    )
    ledger.create_run(stalled)
    sample = sample_file(rows=3, seed=42, with_problems=False)
    sample_env.drop("young.csv", sample.text)
    host.run_until_idle()
    try:
        assert host.fire("sweeper")
    finally:
        ledger.forget_open_run(stalled.run_id)
    assert [r.run_id for r in events(caplog, "RunStalled")] == [stalled.run_id]
    assert_run_settled(sample_env, "young.csv", sample)
