"""The sweeper on Azurite: heartbeat, poison depth, stalled intakes, stuck items, lost inbox events, missed runs."""

import logging
from datetime import UTC, datetime, timedelta

import pytest

from devhost.sample.chain import chain, parse_rows
from devhost.sample.data import sample_file
from functions.operations.run_closer import close_run
from functions.operations.sweeper import pick_up_orphans, report_missed_schedules, sweep_runs
from shared import ledger, storage
from shared.inbox import PICKUP_QUEUE
from shared.schedules import Schedule
from shared.settings import get_settings
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


def test_an_inbox_blob_whose_event_was_lost_is_picked_up_once(sample_env, host, caplog):
    caplog.set_level(logging.INFO, logger="ks.events")
    sample = sample_file(rows=4, seed=43, with_problems=False)
    sample_env.drop("lost-event.csv", sample.text)
    assert host.lose_blob_events() >= 1
    host.run_until_idle()
    assert not [r for r in ledger.newest_runs("sample", 200) if r.source == "sample-inbox/lost-event.csv"]

    assert pick_up_orphans(datetime.now(UTC)) == 0
    assert storage.queue(PICKUP_QUEUE).peek_messages() == [], "a blob within its grace period is left alone"
    later = datetime.now(UTC) + timedelta(minutes=20)
    pick_up_orphans(later)
    pick_up_orphans(later)  # a second sweep before the first pick-up ran asks again, harmlessly
    host.run_until_idle()
    run = sample_env.run_for("lost-event.csv")  # exactly one run, whoever asked how often
    assert_run_settled(sample_env, "lost-event.csv", sample)
    assert run.trigger == "blob"
    assert len(events(caplog, "InboxBlobPickedUp")) == 2  # the second found the run there and opened nothing new
    pick_up_orphans(later)
    assert storage.queue(PICKUP_QUEUE).peek_messages() == [], "a blob with a run is not picked up again"


def missed(caplog, automation: str) -> list[logging.LogRecord]:
    return [r for r in events(caplog, "ScheduleMissed") if r.automation == automation]


def test_a_scheduled_automation_without_its_run_is_reported(sample_env, monkeypatch, caplog):
    caplog.set_level(logging.INFO, logger="ks.events")
    monkeypatch.setenv("SWEEPER_SCHEDULE", "0 0 6 * * 1-5")  # borrowed: any setting holding a schedule
    get_settings.cache_clear()
    schedule = Schedule("sample-scheduled", "sweeper_schedule")
    try:
        monday_noon = datetime(2026, 11, 23, 11, 0, tzinfo=UTC)
        report_missed_schedules(monday_noon)
        assert [(r.automation, r.due) for r in missed(caplog, "sample-scheduled")] == [
            ("sample-scheduled", "2026-11-23T06:00:00+00:00")
        ]
        caplog.clear()
        on_time = datetime(2026, 11, 23, 6, 0, 2, tzinfo=UTC)
        ledger.create_run(
            ledger.Run(
                automation="sample-scheduled",
                run_id=ledger.new_run_id("sample-scheduled", on_time, "tick"),
                trigger="timer",
                source="test",
                started_at=on_time,
                status=ledger.RunStatus.COMPLETE,
                code_version="test",
                config_version="2026.1",
            )
        )
        report_missed_schedules(monday_noon)
        report_missed_schedules(datetime(2026, 11, 23, 6, 5, tzinfo=UTC))  # due 06:00 is within its grace
        assert missed(caplog, "sample-scheduled") == []
        report_missed_schedules(datetime(2026, 11, 24, 6, 30, tzinfo=UTC))  # Tuesday's run is missing
        assert [r.due for r in missed(caplog, "sample-scheduled")] == ["2026-11-24T06:00:00+00:00"]
    finally:
        del Schedule.registry[schedule.automation]
        get_settings.cache_clear()


def test_a_daily_report_that_was_not_written_is_reported_as_a_missed_schedule(sample_env, caplog):
    from functions.vendor_onboarding import control_list, steps

    caplog.set_level(logging.INFO, logger="ks.events")
    written_at = datetime.now(UTC)
    control_list.write(written_at.date(), steps.CREATED_TABLE, steps.COPENHAGEN)
    report_missed_schedules(written_at + timedelta(minutes=1))
    # The list just written is newer than any 05:30 due time up to now: nothing is missing.
    assert missed(caplog, "vendor_control_list") == []
    report_missed_schedules(written_at + timedelta(days=2))  # two mornings on, no list since
    assert len(missed(caplog, "vendor_control_list")) == 1
