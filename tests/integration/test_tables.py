"""shared.tables against the SDK on Azurite: the same entities, ETags and errors, by the lean path."""

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from azure.core import MatchConditions
from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import (
    EdmType,
    EntityProperty,
    TableClient,
    TableServiceClient,
    TableTransactionError,
    UpdateMode,
)

from shared import tables


@pytest.fixture
def table(azurite_connection: str) -> Iterator[TableClient]:
    service = TableServiceClient.from_connection_string(azurite_connection)
    client = service.create_table(f"lean{uuid.uuid4().hex[:10]}")
    yield client
    service.delete_table(client.table_name)


class Sent:
    """Counts the requests a client sends, by method and path end."""

    def __init__(self, client: TableClient, monkeypatch: pytest.MonkeyPatch) -> None:
        self.requests: list[str] = []
        original = client._client.send_request

        def send(request, **kwargs):
            self.requests.append(f"{request.method} {request.url.split('?')[0].rsplit('/', 1)[-1]}")
            return original(request, **kwargs)

        monkeypatch.setattr(client._client, "send_request", send)


def _awkward(n: int) -> dict:
    return {
        "PartitionKey": "p'1",
        "RowKey": f"r {n:03d} ø'x",
        "Text": f'tekst æøå {n} "quoted" \r\n--changeset_x',
        "Small": n,
        "Big": EntityProperty(2**40 + n, EdmType.INT64),
        "When": datetime(2026, 11, 24, 15, 0, n % 60, 123456, tzinfo=UTC),
        "Flag": n % 2 == 0,
        "Ratio": n / 3,
        "Id": uuid.UUID(int=n),
        "Raw": bytes([n % 256, 0, 255]),
    }


def test_a_lean_transaction_and_query_equal_the_sdks(table: TableClient, monkeypatch: pytest.MonkeyPatch) -> None:
    sent = Sent(table, monkeypatch)
    etags = tables.transact(table, [("create", _awkward(n)) for n in range(100)])
    assert sent.requests == ["POST $batch"]  # one request, not the SDK's retry of it
    assert len(etags) == 100 and all(e["etag"].startswith('W/"') for e in etags)

    lean = list(tables.query(table, "PartitionKey eq @pk", parameters={"pk": "p'1"}))
    sdk = list(table.query_entities("PartitionKey eq @pk", parameters={"pk": "p'1"}))
    assert lean == sdk and len(lean) == 100
    assert [e.metadata for e in lean] == [e.metadata for e in sdk]
    assert [e.metadata["etag"] for e in lean] == [e["etag"] for e in etags]
    assert lean[3]["When"].tables_service_value == sdk[3]["When"].tables_service_value
    assert {type(v) for v in lean[5].values()} == {type(v) for v in sdk[5].values()}

    table.submit_transaction([("create", {**_awkward(n), "PartitionKey": "sdk"}) for n in range(100)])
    by_sdk = list(table.query_entities("PartitionKey eq 'sdk'"))
    assert [{**e, "PartitionKey": "p'1"} for e in by_sdk] == lean  # written alike, read alike

    chosen = list(tables.query(table, "PartitionKey eq @pk and Small lt 3", {"pk": "p'1"}, select=["RowKey", "Small"]))
    assert [dict(e) for e in chosen] == [{"RowKey": f"r {n:03d} ø'x", "Small": n} for n in range(3)]
    assert [e.metadata["etag"] for e in chosen] == [e["etag"] for e in etags[:3]]  # a selection keeps the ETag


def test_updates_upserts_and_deletes_in_one_transaction(table: TableClient, monkeypatch: pytest.MonkeyPatch) -> None:
    tables.transact(table, [("create", {"PartitionKey": "p", "RowKey": str(n), "S": "a"}) for n in range(4)])
    current = {e["RowKey"]: e for e in tables.query(table, "PartitionKey eq 'p'")}
    sent = Sent(table, monkeypatch)
    guarded = {"mode": UpdateMode.MERGE, "etag": current["0"].metadata["etag"]}
    etags = tables.transact(
        table,
        [
            (
                "update",
                {"PartitionKey": "p", "RowKey": "0", "T": "b"},
                {**guarded, "match_condition": MatchConditions.IfNotModified},
            ),
            ("update", {"PartitionKey": "p", "RowKey": "1", "S": "c"}, {"mode": UpdateMode.REPLACE}),
            ("upsert", {"PartitionKey": "p", "RowKey": "9", "S": "new"}, {"mode": UpdateMode.MERGE}),
            ("delete", {"PartitionKey": "p", "RowKey": "2"}),
            ("upsert", {"PartitionKey": "p", "RowKey": "3", "U": 1}, {"mode": UpdateMode.REPLACE}),
        ],
    )
    assert sent.requests == ["POST $batch"]
    assert [bool(e["etag"]) for e in etags] == [True, True, True, False, True]
    rows = {e["RowKey"]: dict(e) for e in table.query_entities("PartitionKey eq 'p'")}
    assert rows == {
        "0": {"PartitionKey": "p", "RowKey": "0", "S": "a", "T": "b"},
        "1": {"PartitionKey": "p", "RowKey": "1", "S": "c"},
        "3": {"PartitionKey": "p", "RowKey": "3", "U": 1},
        "9": {"PartitionKey": "p", "RowKey": "9", "S": "new"},
    }


def test_a_failed_transaction_raises_the_sdks_error_and_changes_nothing(table: TableClient) -> None:
    tables.transact(table, [("create", {"PartitionKey": "p", "RowKey": "a", "S": "x"})])
    stale = tables.transact(table, [("upsert", {"PartitionKey": "p", "RowKey": "a", "S": "y"})])[0]["etag"]
    tables.transact(table, [("upsert", {"PartitionKey": "p", "RowKey": "a", "S": "z"})])

    with pytest.raises(TableTransactionError) as conflict:
        tables.transact(
            table,
            [("create", {"PartitionKey": "p", "RowKey": "b"}), ("create", {"PartitionKey": "p", "RowKey": "a"})],
        )
    assert conflict.value.error_code == "EntityAlreadyExists"
    with pytest.raises(TableTransactionError) as modified:
        tables.transact(
            table,
            [
                (
                    "update",
                    {"PartitionKey": "p", "RowKey": "a", "S": "w"},
                    {"etag": stale, "match_condition": MatchConditions.IfNotModified},
                )
            ],
        )
    assert modified.value.status_code == 412 or modified.value.error_code == "UpdateConditionNotSatisfied"
    assert [dict(e) for e in tables.query(table, "PartitionKey eq 'p'")] == [
        {"PartitionKey": "p", "RowKey": "a", "S": "z"}
    ]


def test_a_query_follows_continuations_and_reports_a_missing_table(table: TableClient, azurite_connection: str) -> None:
    for start in range(0, 2500, 100):
        tables.transact(
            table, [("create", {"PartitionKey": "p", "RowKey": f"{n:05d}"}) for n in range(start, start + 100)]
        )
    keys = [e["RowKey"] for e in tables.query(table, "PartitionKey eq 'p'")]
    assert keys == [f"{n:05d}" for n in range(2500)]  # more than one page of 1,000

    missing = TableServiceClient.from_connection_string(azurite_connection).get_table_client("nosuchtable")
    with pytest.raises(ResourceNotFoundError):
        list(tables.query(missing, "PartitionKey eq 'p'"))
