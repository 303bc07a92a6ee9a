"""The run ledger in Table storage: the admins' source of truth for what each run did to each item.

Tables (all provisioned by infra/, created locally by devhost from the manifest):

- `runs`: one row per run, PartitionKey = automation, RowKey = inverted start time, so "newest runs of an
  automation" is a single-partition query reading from the top. Two index partitions live beside them:
  `open-runs` (a row per run not yet closed, read by the run closer) and `source-<automation>` (the run a
  source - a blob name and ETag, a timer tick - already started, so a second event starts nothing).
- `items0` .. `items7`: one row per item, written when it is created and when it ends (not at every touch).
  PartitionKey = `<run id>.<bucket>`, so a large run spreads over several partitions; a chunk's items share
  a bucket, so their rows go in 100-entity batch transactions. Bucket b is in `items<b mod 8>`
  (`items_table_name`). Azure would serve one table as well; Azurite keeps a table in one in-memory
  collection whose updates and filtered reads cost time in proportion to its size, and with one table a
  100,000-claim run spent 60 % of Azurite's time there.
- `history`: one row per chunk transition (step, chunk, attempt) with its counts. The row is written last,
  after the step's effects, and is the marker that makes a redelivered message a no-op.
"""

import itertools
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from functools import lru_cache
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import TableClient, TableTransactionError, UpdateMode
from pydantic import Field, field_validator

from shared import storage, tables
from shared.models import BoundaryModel
from shared.outcomes import REASON_CODE_PATTERN, TERMINAL, ItemStatus
from shared.personal_data import contains_cpr, digest

RUNS_TABLE = "runs"
#: A run's items are spread over these tables by bucket (`items_table`); see the module docstring.
ITEM_TABLES = tuple(f"items{n}" for n in range(8))
HISTORY_TABLE = "history"
MAILS_TABLE = "mails"  # receipts and notices owed, and which have been sent (shared.mail)
TABLES = (RUNS_TABLE, *ITEM_TABLES, HISTORY_TABLE, MAILS_TABLE)
OPEN_RUNS_PARTITION = "open-runs"
BATCH_LIMIT = 100  # entities per table transaction
MISSING_SHOWN = 50  # item ids listed on a run row that is not complete
_MAX_MS = 10**13 - 1
#: The item row's own columns, which an automation's details may not overwrite.
_ITEM_COLUMNS = frozenset(
    {"Status", "Step", "Attempts", "ReasonCode", "ReasonText", "ConfigVersion", "UpdatedAt", "Amount", "Reference"}
    | {"Origin", "CreatedAt", "EndedAt", "CaseNumber", "HandoffClaim", "HandoffClaimedAt"}
)


class RunStatus(StrEnum):
    """Where a run is."""

    INTAKE = "intake"  # items being created
    OPEN = "open"  # items moving; not every item terminal yet
    COMPLETE = "complete"  # every item terminal and counts and totals reconcile with the input
    UNRECONCILED = "unreconciled"  # every item terminal but counts or totals disagree with the input


class Run(BoundaryModel):
    """A run row."""

    automation: str
    run_id: str
    trigger: str
    source: str
    submitted_by: str = ""  # who delivered the input (an inbox blob's uploader), when the source says
    started_at: datetime
    ended_at: datetime | None = None
    status: RunStatus
    expected_items: int = 0
    expected_amount: Decimal = Decimal(0)
    buckets: int = 1
    chunk_size: int = 500  # the layout of the intake's chunks; a resumed intake must reuse it
    opened_at: datetime | None = None  # when the intake finished and the items started to move
    code_version: str
    config_version: str
    counts: dict[ItemStatus, int] = Field(default_factory=dict)
    reasons: dict[str, int] = Field(default_factory=dict)
    amount_total: Decimal = Decimal(0)
    missing_count: int = 0
    missing: tuple[str, ...] = ()
    problems: tuple[str, ...] = ()


class ItemRow(BoundaryModel):
    """An item row as written at creation or at its end."""

    run_id: str
    bucket: int
    item_id: str
    status: ItemStatus
    step: str = ""
    attempts: int = 0  # 1 + the technical retries the item needed along the chain
    amount: Decimal | None = None
    reference: str = ""  # pseudonymous business reference, never the personal id itself
    reason_code: str = Field(default="", pattern=f"^({REASON_CODE_PATTERN.strip('^$')})?$")
    reason_text: str = ""
    config_version: str = ""
    origin: str = ""  # the record the item came from, e.g. "sc_req_item:<sys_id>", for linking its case
    #: The automation's own columns (a claim id, a document number), written with the row; never personal ids.
    details: dict[str, str] = Field(default_factory=dict)

    @field_validator("reference", "reason_text")
    @classmethod
    def _no_cpr(cls, value: str) -> str:
        if contains_cpr(value):
            raise ValueError("a CPR-shaped number may not be stored as a reference or reason text")
        return value

    @field_validator("details")
    @classmethod
    def _plain_details(cls, details: dict[str, str]) -> dict[str, str]:
        for name, value in details.items():
            if not name.isidentifier() or name[0].islower() or name in _ITEM_COLUMNS:
                raise ValueError(f"detail column {name!r} must be a new PascalCase name")
            if contains_cpr(value):
                raise ValueError("a CPR-shaped number may not be stored in an item's details")
        return details


class ChunkTransition(BoundaryModel):
    """A history row: what one delivery of a step did to one chunk."""

    run_id: str
    step: str
    chunk_id: str
    attempt: int
    items: int
    done: int
    business: int
    retried: int
    technical_handoff: int
    skipped: int = 0  # items that had already ended through another message


def _utcnow() -> datetime:
    return datetime.now(UTC)


def new_run_id(automation: str, started_at: datetime, run_key: str) -> str:
    """A readable, unique run id: automation, UTC start to the millisecond, and a hash of its source."""
    source = digest(run_key, 6)
    started = started_at.astimezone(UTC)
    # The dash before the milliseconds keeps the id free of CPR-shaped digit runs, so redaction leaves it alone.
    return f"{automation}.{started:%Y%m%dT%H%M%S}-{started.microsecond // 1000:03d}Z.{source}"


@lru_cache(maxsize=1024)
def run_started_at(run_id: str) -> datetime:
    """The start time a run id carries (parsed once per run: steps ask for every item)."""
    stamp = run_id.split(".")[1]
    seconds, millis = stamp.rstrip("Z").split("-")
    return datetime.strptime(seconds, "%Y%m%dT%H%M%S").replace(microsecond=int(millis) * 1000, tzinfo=UTC)


def run_row_key(run_id: str) -> str:
    """RowKey of a run row: inverted milliseconds, so the newest run sorts first."""
    millis = int(run_started_at(run_id).timestamp() * 1000)
    return f"{_MAX_MS - millis:013d}.{run_id.rsplit('.', 1)[1]}"


def items_partition(run_id: str, bucket: int) -> str:
    """PartitionKey of a run's items in one bucket."""
    return f"{run_id}.{bucket:03d}"


def items_table_name(partition: str) -> str:
    """The table that holds the items of one partition (`items_partition`): bucket b is in `items<b mod 8>`."""
    return ITEM_TABLES[int(partition.rsplit(".", 1)[1]) % len(ITEM_TABLES)]


def _items_table(partition: str) -> TableClient:
    return storage.table(items_table_name(partition))


def item_ids(count: int) -> Iterator[str]:
    """The ids of a run's items, one by one (a run may have 100,000): their position in the input, zero-padded so
    they sort as they came."""
    width = max(6, len(str(count)))
    return (f"{n:0{width}d}" for n in range(1, count + 1))


def item_position(item_id: str) -> int:
    """An item id's position in its run (what `item_ids` made it from), or 0 for an id that is not one."""
    return int(item_id) if item_id.isascii() and item_id.isdigit() else 0


def bucket_count(items: int, items_per_bucket: int) -> int:
    """How many partitions a run of this size is spread over (at most 64)."""
    return max(1, min(64, -(-items // items_per_bucket)))


# --- runs ---------------------------------------------------------------------------------------------------


def _run_entity(run: Run) -> dict[str, Any]:
    return {
        "PartitionKey": run.automation,
        "RowKey": run_row_key(run.run_id),
        "RunId": run.run_id,
        "Trigger": run.trigger,
        "Source": run.source,
        "SubmittedBy": run.submitted_by,
        "StartedAt": run.started_at,
        "EndedAt": run.ended_at,
        "Status": run.status.value,
        "ExpectedItems": run.expected_items,
        "ExpectedAmount": str(run.expected_amount),
        "Buckets": run.buckets,
        "ChunkSize": run.chunk_size,
        "OpenedAt": run.opened_at,
        "CodeVersion": run.code_version,
        "ConfigVersion": run.config_version,
        **{f"Count_{status.value}": run.counts.get(status, 0) for status in ItemStatus},
        "Reasons": ";".join(f"{code}={n}" for code, n in sorted(run.reasons.items())),
        "AmountTotal": str(run.amount_total),
        "MissingCount": run.missing_count,
        "Missing": ",".join(run.missing),
        "Problems": "\n".join(run.problems),
    }


def _run_from_entity(entity: dict[str, Any]) -> Run:
    reasons = dict(pair.split("=", 1) for pair in entity.get("Reasons", "").split(";") if pair)
    return Run(
        automation=entity["PartitionKey"],
        run_id=entity["RunId"],
        trigger=entity["Trigger"],
        source=entity["Source"],
        submitted_by=entity.get("SubmittedBy", ""),
        started_at=entity["StartedAt"],
        ended_at=entity.get("EndedAt"),
        status=RunStatus(entity["Status"]),
        expected_items=entity.get("ExpectedItems", 0),
        expected_amount=Decimal(entity.get("ExpectedAmount", "0")),
        buckets=entity.get("Buckets", 1),
        chunk_size=entity.get("ChunkSize", 500),
        opened_at=entity.get("OpenedAt"),
        code_version=entity.get("CodeVersion", ""),
        config_version=entity.get("ConfigVersion", ""),
        counts={status: entity.get(f"Count_{status.value}", 0) for status in ItemStatus},
        reasons={code: int(n) for code, n in reasons.items()},
        amount_total=Decimal(entity.get("AmountTotal", "0")),
        missing_count=entity.get("MissingCount", 0),
        missing=tuple(filter(None, entity.get("Missing", "").split(","))),
        problems=tuple(filter(None, entity.get("Problems", "").split("\n"))),
    )


def save_run(run: Run) -> None:
    """Writes a run row, and keeps it in the open-runs index while it is not complete."""
    if run.status is not RunStatus.COMPLETE:
        _index(run)  # first: a run row never exists without its index row while it is open
    storage.table(RUNS_TABLE).upsert_entity(_run_entity(run), mode=UpdateMode.REPLACE)
    if run.status is RunStatus.COMPLETE:
        forget_open_run(run.run_id)


def _index(run: Run) -> None:
    index = {"PartitionKey": OPEN_RUNS_PARTITION, "RowKey": run.run_id, "Automation": run.automation}
    storage.table(RUNS_TABLE).upsert_entity(index)


def create_run(run: Run) -> Run:
    """Writes a new run row; if a concurrent intake wrote it first, returns that one instead."""
    _index(run)
    try:
        storage.table(RUNS_TABLE).create_entity(_run_entity(run))
        return run
    except ResourceExistsError:
        existing = get_run(run.run_id)
        assert existing is not None
        return existing


def advance_run(run: Run, expected: RunStatus) -> bool:
    """Writes the run row only if it is still in `expected` status (an ETag-guarded transition)."""
    table = storage.table(RUNS_TABLE)
    try:
        current = table.get_entity(run.automation, run_row_key(run.run_id))
    except ResourceNotFoundError:
        return False
    if current["Status"] != expected.value:
        return False
    try:
        table.update_entity(
            _run_entity(run),
            mode=UpdateMode.REPLACE,
            etag=current.metadata["etag"],
            match_condition=MatchConditions.IfNotModified,
        )
    except ResourceModifiedError:
        return False
    if run.status is RunStatus.COMPLETE:
        forget_open_run(run.run_id)
    return True


def forget_open_run(run_id: str) -> None:
    """Removes a run from the open-runs index (idempotent)."""
    storage.table(RUNS_TABLE).delete_entity(OPEN_RUNS_PARTITION, run_id)


def get_run(run_id: str) -> Run | None:
    """The run row of a run id, or None."""
    automation = run_id.split(".", 1)[0]
    try:
        return _run_from_entity(storage.table(RUNS_TABLE).get_entity(automation, run_row_key(run_id)))
    except ResourceNotFoundError:
        return None


def newest_runs(automation: str, limit: int = 20) -> list[Run]:
    """The newest runs of an automation, newest first (one partition, read from the top)."""
    entities = tables.query(
        storage.table(RUNS_TABLE), "PartitionKey eq @pk", parameters={"pk": automation}, page_size=limit
    )
    runs: list[Run] = []
    for entity in entities:
        runs.append(_run_from_entity(entity))
        if len(runs) >= limit:
            break
    return runs


def open_run_ids() -> list[str]:
    """Run ids of every run not yet complete."""
    entities = tables.query(
        storage.table(RUNS_TABLE), "PartitionKey eq @pk", parameters={"pk": OPEN_RUNS_PARTITION}, select=["RowKey"]
    )
    return [entity["RowKey"] for entity in entities]


def source_run_id(automation: str, run_key: str) -> str | None:
    """The run that claimed a source, if any has."""
    try:
        return storage.table(RUNS_TABLE).get_entity(f"source-{automation}", digest(run_key, 64))["RunId"]
    except ResourceNotFoundError:
        return None


def claim_source(automation: str, run_key: str, run_id: str, *, abandoned_after: timedelta | None = None) -> str:
    """The run that owns a source: this run id if the source is new, else the one that claimed it first.

    With `abandoned_after`, a claim whose run was never created (its intake died between claiming and
    creating the run) and that is older than that is taken over, so the source is not lost.
    """
    key = digest(run_key, 64)
    partition = f"source-{automation}"
    table = storage.table(RUNS_TABLE)
    try:
        table.create_entity({"PartitionKey": partition, "RowKey": key, "RunId": run_id})
        return run_id
    except ResourceExistsError:
        entity = table.get_entity(partition, key)
    owner = str(entity["RunId"])
    if (
        abandoned_after is None
        or owner == run_id
        or run_started_at(owner) > _utcnow() - abandoned_after
        or get_run(owner) is not None
    ):
        return owner
    try:
        table.update_entity(
            {"PartitionKey": partition, "RowKey": key, "RunId": run_id, "AbandonedBy": owner},
            mode=UpdateMode.MERGE,
            etag=entity.metadata["etag"],
            match_condition=MatchConditions.IfNotModified,
        )
    except ResourceModifiedError:
        return str(table.get_entity(partition, key)["RunId"])
    return run_id


# --- items --------------------------------------------------------------------------------------------------


def _item_entity(row: ItemRow, now: datetime, *, created: bool) -> dict[str, Any]:
    entity: dict[str, Any] = {
        "PartitionKey": items_partition(row.run_id, row.bucket),
        "RowKey": row.item_id,
        "Status": row.status.value,
        "Step": row.step,
        "Attempts": row.attempts,
        "ReasonCode": row.reason_code,
        "ReasonText": row.reason_text,
        "ConfigVersion": row.config_version,
        "UpdatedAt": now,
    }
    if created:
        entity |= {
            "Amount": "" if row.amount is None else str(row.amount),
            "Reference": row.reference,
            "Origin": row.origin,
            "CreatedAt": now,
        }
    if row.status in TERMINAL:
        entity["EndedAt"] = now
    return entity | row.details


def _batched(entities: Sequence[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    by_partition: dict[str, list[dict[str, Any]]] = {}
    for entity in entities:
        by_partition.setdefault(entity["PartitionKey"], []).append(entity)
    for rows in by_partition.values():
        for start in range(0, len(rows), BATCH_LIMIT):
            yield rows[start : start + BATCH_LIMIT]


class ItemEndedElsewhereError(RuntimeError):
    """An item this step meant to end was ended meanwhile by another delivery; the step must run again."""


def create_items(rows: Sequence[ItemRow]) -> list[ItemRow]:
    """Writes new item rows in batch transactions, never over an existing row; returns the rows it created.

    A repeated or concurrent intake creates only what is missing: a chunk sent before a crash may already
    have ended its items. A concurrent intake creating the same rows at the same moment makes this raise,
    and the intake's next delivery finds them.
    """
    now = _utcnow()
    by_id = {row.item_id: row for row in rows}
    created: list[ItemRow] = []
    for batch in _batched([_item_entity(row, now, created=True) for row in rows]):
        table = _items_table(batch[0]["PartitionKey"])
        try:
            tables.transact(table, [("create", entity) for entity in batch])
        except TableTransactionError as error:
            if error.error_code != "EntityAlreadyExists":
                raise
            existing = set(_rows_in_range(batch[0]["PartitionKey"], [e["RowKey"] for e in batch]))
            batch = [entity for entity in batch if entity["RowKey"] not in existing]  # noqa: PLW2901
            if batch:
                tables.transact(table, [("create", entity) for entity in batch])
        created += [by_id[entity["RowKey"]] for entity in batch]
    return created


def get_item(run_id: str, bucket: int, item_id: str) -> dict[str, Any] | None:
    """One item row (with its keys and ETag), or None."""
    try:
        partition = items_partition(run_id, bucket)
        entity = _items_table(partition).get_entity(partition, item_id)
    except ResourceNotFoundError:
        return None
    return {
        **entity,
        "PartitionKey": entity["PartitionKey"],
        "RowKey": entity["RowKey"],
        "etag": entity.metadata["etag"],
    }


def claim_handoff(row: dict[str, Any], claimant: str, stale_after: timedelta) -> bool:
    """Claims an item's hand-off for one message (its id), so two messages never create two cases.

    The claim is the claimant's own on a redelivery of the same message; another claimant's is respected
    until it is stale (that message's redelivery will finish the job), then taken over.
    """
    claimed_by, claimed_at = row.get("HandoffClaim"), row.get("HandoffClaimedAt")
    if claimed_by and claimed_by != claimant and claimed_at and claimed_at > _utcnow() - stale_after:
        return False
    entity = {
        "PartitionKey": row["PartitionKey"],
        "RowKey": row["RowKey"],
        "HandoffClaim": claimant,
        # A redelivery renews its own claim (ETag-guarded) but keeps its time: the settle time before it may
        # post again runs from the first attempt, not from the latest.
        "HandoffClaimedAt": claimed_at if claimed_by == claimant and claimed_at else _utcnow(),
    }
    try:
        _items_table(row["PartitionKey"]).update_entity(
            entity, mode=UpdateMode.MERGE, etag=row["etag"], match_condition=MatchConditions.IfNotModified
        )
    except ResourceModifiedError:
        return False
    return True


def set_case_number(run_id: str, bucket: int, item_id: str, case_number: str) -> None:
    """Records the case a person got for an item handed off."""
    entity = {"PartitionKey": items_partition(run_id, bucket), "RowKey": item_id, "CaseNumber": case_number}
    _items_table(entity["PartitionKey"]).upsert_entity(entity, mode=UpdateMode.MERGE)


#: The columns the chain itself reads from an item's row (its ETag comes with every row).
CHAIN_COLUMNS = ("RowKey", "Status", "Attempts", "ConfigVersion")


def chunk_rows(
    run_id: str, bucket: int, ids: Sequence[str], columns: Sequence[str] | None = None
) -> dict[str, dict[str, Any]]:
    """The current rows of a chunk's items (one range query), by item id: every column, or the chain's and
    `columns` (a step that reads none of the row spares the table and itself the rest)."""
    select = None if columns is None else [*CHAIN_COLUMNS, *columns]
    return _rows_in_range(items_partition(run_id, bucket), ids, select=select)


def _rows_in_range(
    partition: str,
    ids: Sequence[str],
    select: list[str] | None = ["RowKey", "Status"],  # noqa: B006 - never mutated
) -> dict[str, dict[str, Any]]:
    wanted = set(ids)
    entities = tables.query(
        _items_table(partition),
        "PartitionKey eq @pk and RowKey ge @first and RowKey le @last",
        parameters={"pk": partition, "first": min(ids), "last": max(ids)},
        select=select,
    )
    return {entity["RowKey"]: entity for entity in entities if entity["RowKey"] in wanted}


def end_items(
    rows: Sequence[ItemRow],
    current: dict[str, dict[str, Any]],
    committed: Callable[[list[ItemRow]], None] = lambda rows: None,
) -> None:
    """Ends items in batch transactions, each only if its row is still as read in `current` (first end wins).

    `committed` is called with each batch's rows once it is written. Raises ItemEndedElsewhereError when
    another delivery changed a row meanwhile; nothing of that batch is written, and a fresh read skips the
    items that have ended.
    """
    now = _utcnow()
    by_id = {row.item_id: row for row in rows}
    for batch in _batched([_item_entity(row, now, created=False) for row in rows]):
        table = _items_table(batch[0]["PartitionKey"])
        operations: list[Any] = []
        for entity in batch:
            seen = current.get(entity["RowKey"])
            if seen is None:  # no row (an anomaly): write it rather than lose the ending
                operations.append(("upsert", entity, {"mode": UpdateMode.MERGE}))
            else:
                condition = {"etag": seen.metadata["etag"], "match_condition": MatchConditions.IfNotModified}
                operations.append(("update", entity, {"mode": UpdateMode.MERGE, **condition}))
        try:
            tables.transact(table, operations)
        except TableTransactionError as error:
            if error.status_code == 412 or error.error_code == "UpdateConditionNotSatisfied":
                raise ItemEndedElsewhereError(f"an item of {batch[0]['PartitionKey']} ended meanwhile") from None
            raise
        committed([by_id[entity["RowKey"]] for entity in batch])


def mark_items(run_id: str, bucket: int, marks: Sequence[tuple[dict[str, Any], dict[str, str]]]) -> None:
    """Writes columns on pending items, all or none (one transaction: at most 100, one bucket), each only if
    its row is still as read; ItemEndedElsewhereError when another delivery changed one meanwhile.

    The atomic claim an automation takes before an outside effect (a posting file) that must never be made
    for the same item twice: a row names its effect once, and no other delivery can name another.
    """
    if not marks:
        return
    if len(marks) > BATCH_LIMIT:
        raise ValueError(f"at most {BATCH_LIMIT} items are marked at once")
    operations: list[Any] = []
    partition = items_partition(run_id, bucket)
    for row, columns in marks:
        if set(columns) & _ITEM_COLUMNS - {"Step"} or any(contains_cpr(value) for value in columns.values()):
            raise ValueError("marks write an automation's own columns (and Step), never a CPR")
        entity = {"PartitionKey": partition, "RowKey": row["RowKey"], **columns}
        entity["UpdatedAt"] = _utcnow()
        condition = {"etag": row.metadata["etag"], "match_condition": MatchConditions.IfNotModified}
        operations.append(("update", entity, {"mode": UpdateMode.MERGE, **condition}))
    try:
        tables.transact(_items_table(partition), operations)
    except TableTransactionError as error:
        if error.status_code == 412 or error.error_code == "UpdateConditionNotSatisfied":
            raise ItemEndedElsewhereError(f"an item of {partition} changed meanwhile") from None
        raise


def items_where(
    run_id: str, bucket: int, column: str, value: str, columns: Sequence[str] | None = None
) -> list[dict[str, Any]]:
    """The items of one bucket whose `column` equals `value` (one query over the partition), with their ETags:
    every column, or the chain's and `columns`."""
    if not column.isidentifier():
        raise ValueError("a column name is an identifier")
    query = f"PartitionKey eq @pk and {column} eq @value"
    partition = items_partition(run_id, bucket)
    select = None if columns is None else [*CHAIN_COLUMNS, *columns]
    parameters = {"pk": partition, "value": value}
    return list(tables.query(_items_table(partition), query, parameters=parameters, select=select))


def item_rows(
    run: Run, status: ItemStatus | None = None, columns: Sequence[str] | None = None
) -> Iterator[dict[str, Any]]:
    """A run's item rows, optionally only those in one status, bucket by bucket: every column, or `columns`."""
    select = None if columns is None else ["RowKey", *columns]
    for bucket in range(run.buckets):
        query = "PartitionKey eq @pk" + (" and Status eq @status" if status else "")
        partition = items_partition(run.run_id, bucket)
        parameters = {"pk": partition, "status": status.value if status else ""}
        for entity in tables.query(_items_table(partition), query, parameters=parameters, select=select):
            yield {"ItemId": entity["RowKey"], "Bucket": bucket, **dict(entity)}


# --- history: chunk transitions -----------------------------------------------------------------------------


def _transition_key(step: str, chunk_id: str, attempt: int) -> str:
    return f"{step}.{chunk_id}.{attempt}"


def chunk_already_done(run_id: str, step: str, chunk_id: str, attempt: int) -> bool:
    """Whether this step already completed this chunk at this attempt (its history row exists)."""
    try:
        storage.table(HISTORY_TABLE).get_entity(run_id, _transition_key(step, chunk_id, attempt), select=["RowKey"])
        return True
    except ResourceNotFoundError:
        return False


def record_transition(transition: ChunkTransition) -> None:
    """Writes the history row of a chunk transition; written last, it marks the step done for the chunk."""
    storage.table(HISTORY_TABLE).upsert_entity(
        {
            "PartitionKey": transition.run_id,
            "RowKey": _transition_key(transition.step, transition.chunk_id, transition.attempt),
            "Step": transition.step,
            "ChunkId": transition.chunk_id,
            "Attempt": transition.attempt,
            "Items": transition.items,
            "Done": transition.done,
            "Business": transition.business,
            "Retried": transition.retried,
            "TechnicalHandoff": transition.technical_handoff,
            "Skipped": transition.skipped,
            "At": _utcnow(),
        }
    )


def last_activity(run: Run) -> datetime:
    """When the run last moved: its newest chunk transition, or when its items started to move."""
    moments = [run.opened_at or run.started_at]
    history = storage.table(HISTORY_TABLE)
    rows = tables.query(history, "PartitionKey eq @pk", parameters={"pk": run.run_id}, select=["At"])
    moments += [row["At"] for row in rows if row.get("At")]
    return max(moments)


def transitions(run_id: str) -> list[dict[str, Any]]:
    """A run's history rows."""
    return list(tables.query(storage.table(HISTORY_TABLE), "PartitionKey eq @pk", parameters={"pk": run_id}))


# --- reconciliation -----------------------------------------------------------------------------------------


class Reconciliation(BoundaryModel):
    """What a run's item rows say against its input's control totals."""

    counts: dict[ItemStatus, int]
    reasons: dict[str, int]
    amount_total: Decimal
    missing: tuple[str, ...]
    missing_count: int
    problems: tuple[str, ...]

    @property
    def status(self) -> RunStatus:
        """COMPLETE only when every item is settled (ended, with a case if handed off) and totals agree."""
        if self.missing_count:
            return RunStatus.OPEN
        return RunStatus.UNRECONCILED if self.problems else RunStatus.COMPLETE


#: What reconciling reads of each item's row (`item_rows(run, columns=RECONCILE_COLUMNS)`).
RECONCILE_COLUMNS = ("Status", "ReasonCode", "Amount", "CaseNumber")


def reconcile(expected_items: int, expected_amount: Decimal, rows: Iterable[dict[str, Any]]) -> Reconciliation:
    """Counts, reasons and totals of a run's item rows, checked against the input's control totals."""
    counts: Counter[ItemStatus] = Counter()
    reasons: Counter[str] = Counter()
    amount = Decimal(0)
    # Held in a run's size only as a bitmap: which positions (item ids) the ledger has; of the unsettled items
    # only a count and the first MISSING_SHOWN.
    seen = bytearray(expected_items + 1)
    missing_count = 0
    missing: list[str] = []
    for row in rows:
        position = item_position(row["ItemId"])
        if 0 < position <= expected_items:
            seen[position] = 1
        status = ItemStatus(row["Status"])
        counts[status] += 1
        if row.get("ReasonCode"):
            reasons[row["ReasonCode"]] += 1
        if row.get("Amount"):
            amount += Decimal(row["Amount"])
        # An item is not settled until it has ended and, if a person must act, the person has a case.
        if status not in TERMINAL or (status is ItemStatus.HANDED_OFF and not row.get("CaseNumber")):
            missing_count += 1
            missing.append(row["ItemId"])
            if len(missing) > 2 * MISSING_SHOWN:
                missing = sorted(missing)[:MISSING_SHOWN]
    total = sum(counts.values())
    problems: list[str] = []
    if total != expected_items:
        problems.append(f"ledger has {total} items, the input had {expected_items}")
        absent = list(
            itertools.islice(
                (item_id for position, item_id in enumerate(item_ids(expected_items), 1) if not seen[position]),
                MISSING_SHOWN,
            )
        )
        if absent:
            problems.append(f"absent from the ledger: {', '.join(absent)}")
    if amount != expected_amount:
        problems.append(f"ledger amounts sum to {amount}, the input to {expected_amount}")
    return Reconciliation(
        counts={status: counts.get(status, 0) for status in ItemStatus},
        reasons=dict(reasons),
        amount_total=amount,
        missing=tuple(sorted(missing)[:MISSING_SHOWN]),
        missing_count=missing_count,
        problems=tuple(problems),
    )


# --- retention ----------------------------------------------------------------------------------------------


def expired_runs(automation: str, cutoff: datetime) -> list[Run]:
    """An automation's runs that started before `cutoff` (the oldest sort last: inverted keys)."""
    millis = int(cutoff.timestamp() * 1000)
    entities = tables.query(
        storage.table(RUNS_TABLE),
        "PartitionKey eq @pk and RowKey gt @rk",
        parameters={"pk": automation, "rk": f"{_MAX_MS - millis:013d}"},
    )
    return [_run_from_entity(entity) for entity in entities]


def _delete_partition(table: str, partition: str) -> int:
    """Deletes every row of a partition in batch transactions; returns how many."""
    client = storage.table(table)
    keys = [
        {"PartitionKey": e["PartitionKey"], "RowKey": e["RowKey"]}
        for e in tables.query(
            client, "PartitionKey eq @pk", parameters={"pk": partition}, select=["PartitionKey", "RowKey"]
        )
    ]
    for batch in _batched(keys):
        tables.transact(client, [("delete", entity) for entity in batch])
    return len(keys)


def delete_run(run: Run) -> int:
    """Deletes a run's items, history and mail rows, then its index entry and its row (last, so a purge that
    stops half-way is found and finished by the next one); returns how many rows went."""
    partitions = [items_partition(run.run_id, b) for b in range(run.buckets)]
    deleted = sum(_delete_partition(items_table_name(partition), partition) for partition in partitions)
    deleted += _delete_partition(HISTORY_TABLE, run.run_id)
    deleted += _delete_partition(MAILS_TABLE, run.run_id)
    forget_open_run(run.run_id)
    storage.table(RUNS_TABLE).delete_entity(run.automation, run_row_key(run.run_id))
    return deleted + 1


#: Tables whose PartitionKey is an ISO date (an automation's daily records); purged by date with the runs.
DATED_TABLES: set[str] = set()


def purge_dated_table(table: str, before: date) -> int:
    """Deletes the rows of every day before `before` in a date-partitioned table; returns how many."""
    client = storage.table(table)
    keys = [
        {"PartitionKey": e["PartitionKey"], "RowKey": e["RowKey"]}
        for e in tables.query(
            client, "PartitionKey lt @day", parameters={"day": before.isoformat()}, select=["PartitionKey", "RowKey"]
        )
    ]
    for batch in _batched(keys):
        tables.transact(client, [("delete", entity) for entity in batch])
    return len(keys)
