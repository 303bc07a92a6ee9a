"""The step pipeline on Azurite through devhost: outcomes, retries, idempotency, reconciliation."""

import base64
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from devhost.host import LocalHost
from devhost.sample.data import sample_file
from functions.operations.run_closer import close_run
from shared import ledger, storage
from shared.outcomes import ItemStatus
from shared.personal_data import contains_cpr
from tests.integration.conftest import make_host

pytestmark = pytest.mark.integration
MAX_ATTEMPTS = 3  # tests.conftest.TEST_SETTINGS


def expected_by_item(sample) -> dict[str, tuple[str, str]]:
    """The sample's expectations keyed by ledger item id (the row's position in the file)."""
    return {f"{n:06d}": outcome for n, outcome in enumerate(sample.expected.values(), start=1)}


def assert_run_settled(env, name, sample) -> ledger.Run:
    """Every item in exactly its expected terminal state, each booking made once, the run complete."""
    run = env.run_for(name)
    closed = close_run(run.run_id)
    assert closed is not None
    items = env.items(closed)
    assert {i: (row["Status"], row["ReasonCode"]) for i, row in items.items()} == expected_by_item(sample)
    assert closed.status is ledger.RunStatus.COMPLETE, closed.problems
    assert closed.expected_items == len(sample.expected)
    assert closed.amount_total == closed.expected_amount == sample.total
    assert closed.config_version == "2026.1" and {row["ConfigVersion"] for row in items.values()} == {"2026.1"}
    booked = {key.split("/")[1] for key in env.bookings()["bookings"] if key.startswith(f"{run.run_id}/")}
    assert booked == {i for i, row in items.items() if row["Status"] == "done"}
    # every item handed to a person has exactly one task, its number on the item, and no CPR in its title
    tasks = env.tasks(run.run_id)
    handed = {i: row for i, row in items.items() if row["Status"] == "handed_off"}
    assert set(tasks) == set(handed)
    for item_id, row in handed.items():
        (task,) = tasks[item_id]
        assert row["CaseNumber"] == task["number"] and row["ReasonCode"] in task["short_description"]
        assert not contains_cpr(task["short_description"]) and not contains_cpr(task["description"])
        assert task["assignment_group"] and "request_item" not in task, "standalone: the sample has no origin"
    return closed


def test_chain_settles_every_item_in_exactly_one_terminal_state(sample_env, host):
    sample = sample_file(rows=30, seed=11, max_attempts=MAX_ATTEMPTS)
    sample_env.configure_faults(sample)
    sample_env.drop("chain.csv", sample.text)
    host.run_until_idle(timeout=120)

    run = assert_run_settled(sample_env, "chain.csv", sample)
    expected = Counter(status for status, _ in sample.expected.values())
    assert run.counts == {status: expected.get(status.value, 0) for status in ItemStatus}
    assert run.reasons == dict(Counter(reason for _, reason in sample.expected.values() if reason))
    assert set(run.reasons) == {
        "UGYLDIGT_CPR",
        "BELOEB_OVER_GRAENSE",
        "UGYLDIGT_BELOEB",
        "INGEN_NEMKONTO",
        "TEKNISK_FEJL",
    }
    items = sample_env.items(run)
    handed = next(row for row in items.values() if row["ReasonCode"] == "TEKNISK_FEJL")
    assert handed["Attempts"] == MAX_ATTEMPTS and handed["Step"] == "enrich"
    assert "teknisk fejl" in handed["ReasonText"] and not contains_cpr(handed["ReasonText"])
    recovered = [row for row in items.values() if row["Status"] == "done" and row["Attempts"] > 1]
    assert recovered, "the flaky items should have recovered on a later attempt"
    # every booking request was answered once: no step did its work twice
    assert set(sample_env.bookings()["requests"].values()) == {1}
    # history is one row per chunk transition, not per item per step
    history = ledger.transitions(run.run_id)
    assert 0 < len(history) < len(items)
    assert {row["Step"] for row in history} == {"validate", "enrich", "book"}
    assert sum(row["TechnicalHandoff"] for row in history) == 1


@pytest.mark.parametrize("delivery", ["duplicate_delivery", "concurrent_duplicates"])
def test_every_message_delivered_twice_changes_nothing(sample_env, delivery):
    """Twice in a row (the marker absorbs the second), or twice at once (the item rows' ETags decide)."""
    sample = sample_file(rows=20, seed=12, max_attempts=MAX_ATTEMPTS)
    sample_env.configure_faults(sample)
    doubled = make_host(sample_env, **{delivery: True})
    sample_env.drop(f"twice-{delivery}.csv", sample.text)
    doubled.run_until_idle(timeout=120)
    doubled.close()

    assert_run_settled(sample_env, f"twice-{delivery}.csv", sample)
    if delivery == "duplicate_delivery":
        assert set(sample_env.bookings()["requests"].values()) == {1}


def test_a_repeated_blob_event_starts_no_second_run(sample_env, host):
    sample = sample_file(rows=5, seed=13, with_problems=False)
    sample_env.drop("repeat.csv", sample.text)
    host.run_until_idle()
    intake = next(spec for spec in host.functions if spec.name == "sample_intake")
    blob = storage.container("sample-inbox").get_blob_client("repeat.csv")
    intake.handler(blob=blob)  # Event Grid delivers at least once
    host.run_until_idle()
    run = assert_run_settled(sample_env, "repeat.csv", sample)
    assert run.counts[ItemStatus.DONE] == 5


def test_a_source_with_nothing_in_it_still_records_a_run(sample_env, host):
    sample_env.drop("empty.csv", "id;cpr;navn;beloeb\n")
    host.run_until_idle()
    run = sample_env.run_for("empty.csv")
    assert run.status is ledger.RunStatus.COMPLETE
    assert run.expected_items == 0 and run.ended_at is not None
    assert run.run_id not in ledger.open_run_ids()


def test_open_run_names_its_missing_items_and_a_lost_item_never_completes(sample_env, host):
    sample = sample_file(rows=10, seed=14, with_problems=False)
    sample_env.drop("lost.csv", sample.text)
    host._blob_events()  # intake only: the items are created but no step has run
    run = sample_env.run_for("lost.csv")
    opened = close_run(run.run_id)
    assert opened is not None and opened.status is ledger.RunStatus.OPEN
    assert opened.missing_count == 10 and opened.missing[0] == "000001"

    host.run_until_idle()
    partition = ledger.items_partition(run.run_id, 0)
    storage.table(ledger.items_table_name(partition)).delete_entity(partition, "000009")
    closed = close_run(run.run_id)
    assert closed is not None and closed.status is ledger.RunStatus.UNRECONCILED
    assert closed.problems == (
        "ledger has 9 items, the input had 10",
        "absent from the ledger: 000009",
        f"ledger amounts sum to {closed.amount_total}, the input to {sample.total}",
    )
    assert run.run_id in ledger.open_run_ids()


def test_unreadable_message_goes_to_poison_and_replays_after_a_fix(sample_env, host):
    raw = storage.queue_service().get_queue_client("sample-validate")
    raw.send_message("this is not base64 {")
    host.run_until_idle(timeout=60)
    poison = storage.queue_service().get_queue_client("sample-validate-poison")
    (message,) = poison.receive_messages(max_messages=32, visibility_timeout=1)
    assert message.content == "this is not base64 {"
    assert host.stats.poisoned["sample-validate"] == 1
    assert host.stats.failures["sample_validate"] == 5  # host.json maxDequeueCount
    poison.delete_message(message)


def test_a_valid_message_that_fails_every_time_ends_in_poison_not_silence(sample_env, host, monkeypatch):
    sample = sample_file(rows=3, seed=15, with_problems=False)
    monkeypatch.setattr("shared.ledger.chunk_already_done", lambda *a: (_ for _ in ()).throw(OSError("storage down")))
    sample_env.drop("poison.csv", sample.text)
    host.run_until_idle(timeout=60)
    poison = storage.queue_service().get_queue_client("sample-validate-poison")
    messages = list(poison.receive_messages(max_messages=32, visibility_timeout=1))
    assert len(messages) == 1
    body = base64.b64decode(messages[0].content)
    assert b'"step":"validate"' in body and not contains_cpr(body.decode())
    # replay (what `devhost replay` does) after the "fix"
    monkeypatch.undo()
    for message in messages:
        storage.queue_service().get_queue_client("sample-validate").send_message(message.content)
        poison.delete_message(message)
    host.run_until_idle(timeout=60)
    assert_run_settled(sample_env, "poison.csv", sample)


def test_no_cpr_in_any_blob_queue_or_table_key(sample_env):
    names = [b.name for c in storage.blob_service().list_containers() for b in storage.container(c.name).list_blobs()]
    names += [q.name for q in storage.queue_service().list_queues()]
    for table in ledger.TABLES:
        names += [
            f"{e['PartitionKey']}/{e['RowKey']}"
            for e in storage.table(table).list_entities(select=["PartitionKey", "RowKey"])
        ]
    assert names
    assert [n for n in names if contains_cpr(n)] == []


def test_a_new_version_of_a_blob_is_a_new_event(sample_env, host):
    sample = sample_file(rows=3, seed=16, with_problems=False)
    sample_env.drop("versioned.csv", sample.text)
    host.run_until_idle()
    sample_env.drop("versioned.csv", sample.text)  # same name, new ETag
    host.run_until_idle()
    runs = [r for r in ledger.newest_runs("sample", 200) if r.source == "sample-inbox/versioned.csv"]
    assert len(runs) == 2


def test_timers_fire_on_their_ncrontab_schedule_seconds_first(sample_env, monkeypatch):
    # Read seconds-first this is 00:30 past every hour; read seconds-last it would be every second of 00:30.
    after = datetime(2026, 1, 1, 5, 10, tzinfo=UTC)
    assert LocalHost._next_due("30 0 * * * *", after) == datetime(2026, 1, 1, 6, 0, 30, tzinfo=UTC)
    monkeypatch.setenv("RUN_CLOSER_SCHEDULE", "*/1 * * * * *")
    ticking = make_host(sample_env)
    thread = threading.Thread(target=ticking.serve_forever, daemon=True)
    thread.start()
    time.sleep(3.5)
    ticking.stop()
    thread.join(timeout=60)
    assert ticking.stats.invocations.get("run_closer", 0) >= 2


def test_an_occurrence_missed_while_the_host_was_down_fires_late_with_past_due(sample_env, monkeypatch):
    monkeypatch.setenv("RUN_CLOSER_SCHEDULE", "0 0 * * * *")  # hourly
    an_hour_ago = datetime.now(UTC) - timedelta(hours=1, minutes=1)
    storage.table_service().create_table_if_not_exists("devhosttimers")
    storage.table("devhosttimers").upsert_entity(
        {"PartitionKey": "timers", "RowKey": "run_closer", "Last": an_hour_ago}
    )
    calls: list[bool] = []
    late = make_host(sample_env)
    monkeypatch.setattr(late, "_invoke", lambda s, arguments: calls.append(arguments["timer"].past_due) or True)
    late.run_once()
    late.close()
    assert calls == [True]
    last = storage.table("devhosttimers").get_entity("timers", "run_closer")["Last"]
    assert last > an_hour_ago


def test_an_item_in_two_messages_after_a_crash_ends_once(sample_env, host, monkeypatch):
    """A crash before the marker, a retry already sent, and a redelivery where the retried item succeeds."""
    sample = sample_file(rows=8, seed=18, with_problems=False)
    flaky = sample.text.splitlines()[3].split(";")[1]  # the third row's CPR: fails once, then answers
    sample.faults[flaky] = 1
    sample_env.configure_faults(sample)
    real = ledger.record_transition
    crashed: list[str] = []

    def crash_once_at_enrich(transition: ledger.ChunkTransition) -> None:
        if transition.step == "enrich" and not crashed:
            crashed.append(transition.chunk_id)
            raise OSError("host died before the history row")
        real(transition)

    monkeypatch.setattr(ledger, "record_transition", crash_once_at_enrich)
    sample_env.drop("two-messages.csv", sample.text)
    host.run_until_idle(timeout=120)
    run = assert_run_settled(sample_env, "two-messages.csv", sample)
    assert crashed and run.counts[ItemStatus.DONE] == 8
    item = sample_env.items(run)["000003"]
    assert item["Status"] == "done" and item["ReasonCode"] == ""
    history = ledger.transitions(run.run_id)
    assert any(row["ChunkId"].endswith("~000003") for row in history), "the retry was sent before the crash"
    assert sum(row["Skipped"] for row in history) >= 1, "a second message found items already ended"
    assert sample_env.bookings()["requests"][f"{run.run_id}/000003/book"] == 1


def test_one_broken_run_does_not_keep_the_others_from_closing(sample_env, host):
    sample = sample_file(rows=3, seed=19, with_problems=False)
    storage.table(ledger.RUNS_TABLE).upsert_entity(
        {"PartitionKey": ledger.OPEN_RUNS_PARTITION, "RowKey": "sample.broken", "Automation": "sample"}
    )
    sample_env.drop("closing.csv", sample.text)
    host.run_until_idle()
    assert host.fire("run_closer") is False, "the closer reports the run it could not reconcile"
    assert sample_env.run_for("closing.csv").status is ledger.RunStatus.COMPLETE
    storage.table(ledger.RUNS_TABLE).delete_entity(ledger.OPEN_RUNS_PARTITION, "sample.broken")


def test_a_streamed_run_reads_its_items_a_chunk_at_a_time_and_settles(sample_env, host, monkeypatch):
    from devhost.sample.chain import chain, parse_rows
    from shared import pipeline

    sample = sample_file(rows=20, seed=81, with_problems=False)
    items = parse_rows(sample.text)
    read: list[int] = []
    read_at_each_chunk: list[int] = []
    write_lines = pipeline._write_lines

    def stream():
        for count, item in enumerate(items, start=1):
            read.append(count)
            yield item

    def noting(blob, records):
        read_at_each_chunk.append(len(read))
        write_lines(blob, records)

    monkeypatch.setattr(pipeline, "_write_lines", noting)

    run_id = chain.start_streamed_run(
        trigger="blob",
        source="sample-inbox/streamed.csv",
        run_key="streamed.csv@1",
        items=stream,
        expected_items=len(items),
        expected_amount=sum(item.amount for item in items),
    )
    # CHUNK_SIZE is 8 in the tests: each chunk was written when only its own items had been read
    assert read_at_each_chunk == [8, 16, 20]
    host.run_until_idle()
    assert_run_settled(sample_env, "streamed.csv", sample)
    assert ledger.get_run(run_id).status is ledger.RunStatus.COMPLETE


def test_a_streamed_intake_that_yields_more_than_it_counted_fails(sample_env):
    from devhost.sample.chain import chain, parse_rows

    items = parse_rows(sample_file(rows=5, seed=82, with_problems=False).text)
    with pytest.raises(Exception, match="more than the 4 items"):
        chain.start_streamed_run(
            trigger="blob",
            source="sample-inbox/overcount.csv",
            run_key="overcount.csv@1",
            items=lambda: iter(items),
            expected_items=4,
            expected_amount=sum(item.amount for item in items[:4]),
        )
