"""Ledger retention on Azurite: a run older than the retention goes with everything it wrote; younger ones stay."""

from datetime import UTC, datetime, timedelta

import pytest

from devhost.sample.chain import chain, parse_rows
from devhost.sample.data import sample_file
from functions.operations.ledger_retention import purge
from functions.operations.run_closer import close_run
from shared import ledger, storage
from shared.ledger import HISTORY_TABLE, ITEM_TABLES, MAILS_TABLE, RUNS_TABLE

pytestmark = pytest.mark.integration


def rows(table: str, partition_prefix: str) -> list[dict]:
    return [
        e
        for e in storage.table(table).query_entities(
            "PartitionKey ge @lo and PartitionKey lt @hi",
            parameters={"lo": partition_prefix, "hi": partition_prefix + "~"},
        )
    ]


def item_rows(run_id: str) -> list[dict]:
    """A run's item rows, from whichever item tables its buckets are in."""
    return [e for table in ITEM_TABLES for e in rows(table, run_id)]


def test_runs_older_than_the_retention_are_deleted_with_their_rows(sample_env, host):
    # Configuration versions start in 2026, so "old" is an hour here and the cutoff half an hour.
    an_hour_ago = datetime.now(UTC) - timedelta(hours=1)
    sample = sample_file(rows=5, seed=71, with_problems=False)
    old = chain.start_run(
        trigger="blob",
        source="sample-inbox/retention-old.csv",
        run_key="retention-old.csv@1",
        items=parse_rows(sample.text),
        started_at=an_hour_ago,
    )
    young = chain.start_run(
        trigger="blob",
        source="sample-inbox/retention-young.csv",
        run_key="retention-young.csv@1",
        items=parse_rows(sample.text),
    )
    host.run_until_idle()
    for run_id in (old, young):
        close_run(run_id)
    host.run_until_idle()  # the receipts: mail rows of both runs
    assert item_rows(old) and rows(HISTORY_TABLE, old) and rows(MAILS_TABLE, old)

    assert purge(datetime.now(UTC) - timedelta(minutes=30)) >= 1
    assert ledger.get_run(old) is None
    assert item_rows(old) == [] and rows(HISTORY_TABLE, old) == [] and rows(MAILS_TABLE, old) == []
    assert ledger.get_run(young) is not None and len(item_rows(young)) == 5
    assert purge(datetime.now(UTC) - timedelta(minutes=30)) == 0, "a second purge finds nothing"
    assert not [e for e in rows(RUNS_TABLE, "open-runs") if e["RowKey"] == old]
