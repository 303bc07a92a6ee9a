from datetime import UTC, datetime, timedelta
from decimal import Decimal

from shared.ledger import (
    ITEM_TABLES,
    MISSING_SHOWN,
    RunStatus,
    bucket_count,
    items_partition,
    items_table_name,
    new_run_id,
    reconcile,
    run_row_key,
    run_started_at,
)
from shared.outcomes import ItemStatus
from shared.personal_data import redact


def rows(*specs: tuple[str, str, str]) -> list[dict[str, str]]:
    return [
        {"ItemId": i, "Status": s, "Amount": a, "ReasonCode": "", "CaseNumber": "SCTASK1" if s == "handed_off" else ""}
        for i, s, a in specs
    ]


def test_run_ids_sort_newest_first_and_survive_redaction():
    start = datetime(2026, 11, 24, 5, 14, 38, 267000, tzinfo=UTC)
    older = new_run_id("sample", start, "a.csv@1")
    newer = new_run_id("sample", start + timedelta(milliseconds=1), "a.csv@1")
    assert run_started_at(older) == start
    assert run_row_key(newer) < run_row_key(older)
    assert redact(older) == older and redact(items_partition(older, 3)) == items_partition(older, 3)
    assert new_run_id("sample", start, "a.csv@1") == older != new_run_id("sample", start, "b.csv@1")


def test_bucket_count_spreads_large_runs_and_is_bounded():
    assert bucket_count(0, 5000) == 1
    assert bucket_count(5000, 5000) == 1
    assert bucket_count(100_000, 5000) == 20
    assert bucket_count(10_000_000, 5000) == 64


def test_a_large_runs_buckets_spread_over_the_item_tables_and_each_bucket_has_one():
    run_id = new_run_id("claim_payouts", datetime(2026, 11, 24, tzinfo=UTC), "krav.csv@1")
    tables = [items_table_name(items_partition(run_id, bucket)) for bucket in range(bucket_count(100_000, 5000))]
    assert set(tables) == set(ITEM_TABLES), "20 buckets use all eight tables"
    assert max(tables.count(table) for table in ITEM_TABLES) == 3
    assert tables[0] == tables[8] == tables[16] == "items0" and tables[7] == "items7"


def test_complete_when_every_item_is_terminal_and_totals_reconcile():
    result = reconcile(
        3,
        Decimal("30.50"),
        rows(("1", "done", "10.25"), ("2", "handed_off", "20.25"), ("3", "rejected", "")),
    )
    assert result.status is RunStatus.COMPLETE
    assert result.counts[ItemStatus.DONE] == 1 and result.counts[ItemStatus.REJECTED] == 1
    assert result.amount_total == Decimal("30.50")


def test_open_while_items_are_pending_and_says_which():
    result = reconcile(3, Decimal(3), rows(("1", "done", "1"), ("2", "pending", "1"), ("3", "pending", "1")))
    assert result.status is RunStatus.OPEN
    assert result.missing == ("2", "3") and result.missing_count == 2


def test_unreconciled_when_an_item_is_missing_from_the_ledger():
    result = reconcile(3, Decimal(2), rows(("000001", "done", "1"), ("000002", "done", "1")))
    assert result.status is RunStatus.UNRECONCILED
    assert result.problems == ("ledger has 2 items, the input had 3", "absent from the ledger: 000003")


def test_unreconciled_when_amounts_disagree_with_the_control_total():
    result = reconcile(2, Decimal("2.00"), rows(("1", "done", "1.00"), ("2", "done", "1.01")))
    assert result.status is RunStatus.UNRECONCILED
    assert "2.01" in result.problems[0]


def test_zero_item_run_is_complete():
    assert reconcile(0, Decimal(0), []).status is RunStatus.COMPLETE


def test_an_item_handed_off_without_a_case_yet_keeps_the_run_open():
    awaiting = [{"ItemId": "000001", "Status": "handed_off", "Amount": "1", "ReasonCode": "REGEL", "CaseNumber": ""}]
    result = reconcile(1, Decimal(1), awaiting)
    assert result.status is RunStatus.OPEN and result.missing == ("000001",)


def test_a_large_unsettled_run_reports_its_count_and_first_items_in_bounded_memory():
    ids = [f"{n:06d}" for n in range(1, 5001)]
    shuffled = ids[2500:] + ids[:2500][::-1]  # rows come bucket by bucket, not in order
    result = reconcile(5002, Decimal(5000), rows(*((i, "pending", "1") for i in shuffled)))
    assert result.missing_count == 5000
    assert list(result.missing) == ids[:MISSING_SHOWN]
    assert "absent from the ledger: 005001, 005002" in result.problems
