"""Table reads and batch transactions for the ledger's hot paths, without the SDK's per-entity overhead.

Measured on the claims benchmark, the Tables SDK spent two thirds of the host's CPU on two things: building and
parsing a batch's multipart body with the `email` package, and deserialising query results through its
generated model layer and `strptime`. Azurite meanwhile idled at a fifth of a core. These functions speak the
same protocols (entity group transactions; OData JSON with minimal metadata, paged by continuation headers)
through the same client pipeline (its authentication, retries and headers) and serialise entities with the
SDK's own serialiser, so what goes over the wire is what the SDK sends. A transaction that does not succeed
is handed to the SDK's `submit_transaction`: a failed transaction changed nothing, so the SDK sends it again
and raises its own typed error (or succeeds, if the failure was passing). `tests/unit/test_tables.py` holds
both paths to the SDK's results.
"""

import base64
import json
import re
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import orjson
from azure.core import MatchConditions
from azure.core.rest import HttpRequest
from azure.data.tables import EdmType, EntityProperty, TableClient, TableEntity, UpdateMode
from azure.data.tables._deserialize import TablesEntityDatetime
from azure.data.tables._error import _decode_error
from azure.data.tables._serialize import _add_entity_properties, _parameter_filter_substitution, _prepare_key

API_VERSION = "2019-02-02"  # the SDK's, for the same wire format
#: Sent with every request and with every operation of a batch, as the SDK sends them.
_SERVICE_HEADERS = {"x-ms-version": API_VERSION, "DataServiceVersion": "3.0"}
_ETAG = re.compile(rb"^ETag: (.*?)\r?$", re.MULTILINE | re.IGNORECASE)
_STATUS = re.compile(rb"^HTTP/1\.1 (\d{3})", re.MULTILINE)
_JSON_TYPES = {EdmType.STRING, EdmType.INT32, EdmType.BOOLEAN}

Operation = tuple[str, dict[str, Any]] | tuple[str, dict[str, Any], dict[str, Any]]


def _base(table: TableClient) -> str:
    return f"{table.scheme}://{table._primary_hostname}"  # the SDK's own endpoint


def _entity_url(base: str, table_name: str, entity: dict[str, Any]) -> str:
    partition = quote(_prepare_key(entity["PartitionKey"]), safe="")
    row = quote(_prepare_key(entity["RowKey"]), safe="")
    return f"{base}/{table_name}(PartitionKey='{partition}',RowKey='{row}')"


def _if_match(options: dict[str, Any]) -> str:
    if options.get("match_condition") == MatchConditions.IfNotModified:
        return str(options["etag"])
    return "*"


def _part(method: str, url: str, index: int, headers: dict[str, str], body: str | None) -> str:
    lines = [
        "Content-Type: application/http",
        "Content-Transfer-Encoding: binary",
        f"Content-ID: {index}",
        "",
        f"{method} {url} HTTP/1.1",
        *(f"{name}: {value}" for name, value in (_SERVICE_HEADERS | headers).items()),
    ]
    if body is None:
        return "\r\n".join([*lines, "", ""])
    encoded = body.encode()
    return "\r\n".join([*lines, "Content-Type: application/json", f"Content-Length: {len(encoded)}", "", body])


def _properties(entity: dict[str, Any]) -> str:
    """An entity as JSON: strings, Int32 and booleans bare (their OData default), datetimes in UTC, anything
    else typed by the SDK's own serialiser; None is left out, as the SDK leaves it."""
    body: dict[str, Any] = {}
    for name, value in entity.items():
        kind = type(value)
        if kind is str or kind is bool or (kind is int and -(2**31) <= value < 2**31):
            body[name] = value
        elif kind is datetime and value.tzinfo is not None:
            body[name] = value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            body[f"{name}@odata.type"] = "Edm.DateTime"
        elif value is not None:
            body |= _add_entity_properties({name: value})
    return json.dumps(body)


def _operation_part(base: str, table_name: str, operation: Operation, index: int) -> str:
    kind, entity = operation[0].lower(), operation[1]
    options: dict[str, Any] = operation[2] if len(operation) > 2 else {}  # type: ignore[misc]
    if kind == "create":
        body = _properties(entity)
        accept = {"Accept": "application/json;odata=minimalmetadata"}
        return _part("POST", f"{base}/{table_name}", index, accept, body)
    url = _entity_url(base, table_name, entity)
    if kind == "delete":
        return _part("DELETE", url, index, {"Accept": "application/json", "If-Match": _if_match(options)}, None)
    method = "PUT" if options.get("mode", UpdateMode.MERGE) == UpdateMode.REPLACE else "PATCH"
    headers = {"Accept": "application/json"}
    if kind == "update":
        headers["If-Match"] = _if_match(options)
    elif kind != "upsert":
        raise ValueError(f"unknown table operation {kind!r}")
    return _part(method, url, index, headers, _properties(entity))


def transact(table: TableClient, operations: Sequence[Operation]) -> list[dict[str, str]]:
    """One entity group transaction (at most 100 operations on one partition), as the SDK's `submit_transaction`
    takes them; returns each operation's ETag. Anything but success is the SDK's to report (see the module)."""
    base = _base(table)
    changeset, batch = f"changeset_{uuid.uuid4()}", f"batch_{uuid.uuid4()}"
    parts = "".join(
        f"--{changeset}\r\n{_operation_part(base, table.table_name, operation, index)}\r\n"
        for index, operation in enumerate(operations)
    )
    body = (
        f"--{batch}\r\nContent-Type: multipart/mixed; boundary={changeset}\r\n\r\n"
        f"{parts}--{changeset}--\r\n\r\n--{batch}--\r\n"
    ).encode()
    request = HttpRequest(
        "POST",
        f"{base}/$batch",
        headers={
            **_SERVICE_HEADERS,
            "MaxDataServiceVersion": "3.0;NetFx",
            "Content-Type": f"multipart/mixed; boundary={batch}",
            "Accept": "application/json",
        },
        content=body,
    )
    response = table._client.send_request(request, stream=True)  # the SDK's pipeline: auth, retries
    pieces = _STATUS.split(response.read())[1:]  # each operation's status, then the rest of its part
    statuses = [int(status) for status in pieces[0::2]]
    if response.status_code != 202 or len(statuses) != len(operations) or any(s >= 300 for s in statuses):
        return list(table.submit_transaction(list(operations)))  # type: ignore[arg-type]
    return [{"etag": _etag(rest)} for rest in pieces[1::2]]


def _etag(part: bytes) -> str:
    """The ETag header of one operation's response (none for a delete)."""
    match = _ETAG.search(part)
    return match.group(1).decode() if match else ""


def _value(value: Any, edm_type: str | None) -> Any:
    if edm_type is None:  # a JSON string, bool, double or Int32; a larger integer is an Int64 as the SDK reads it
        if isinstance(value, int) and not isinstance(value, bool) and not -(2**31) <= value < 2**31:
            return EntityProperty(value, EdmType.INT64)
        return value
    if edm_type in _JSON_TYPES:
        return value
    convert = _CONVERSIONS.get(edm_type)
    return convert(value) if convert else EntityProperty(value, edm_type)


def _datetime(value: str) -> TablesEntityDatetime:
    parsed = datetime.fromisoformat(value)
    result = TablesEntityDatetime(
        parsed.year, parsed.month, parsed.day, parsed.hour, parsed.minute, parsed.second, parsed.microsecond, UTC
    )
    result._service_value = value  # as the SDK keeps it
    return result


_CONVERSIONS = {
    EdmType.DATETIME: _datetime,
    EdmType.INT64: lambda value: EntityProperty(int(value), EdmType.INT64),
    EdmType.DOUBLE: float,
    EdmType.GUID: uuid.UUID,
    EdmType.BINARY: base64.b64decode,
}


def _entity(raw: dict[str, Any]) -> TableEntity:
    entity = TableEntity()
    etag = raw.pop("odata.etag", None)
    timestamp = raw.pop("Timestamp", None)
    typed = [name for name in raw if name.endswith("@odata.type")]
    types = {name[:-11]: raw.pop(name) for name in typed}
    for name, value in raw.items():
        if name.startswith("odata."):
            continue
        if value is None:  # a selected column the entity lacks: absent, as in a full read
            continue
        kind = type(value)
        if kind is str and name not in types:  # the common case: a string column
            entity[name] = value
        else:
            entity[name] = _value(value, types.get(name))
    if timestamp:
        if not etag:
            etag = "W/\"datetime'" + quote(timestamp) + "'\""
        timestamp = _datetime(timestamp)
    entity._metadata = {"etag": etag, "timestamp": timestamp}  # as the SDK's entities carry it
    return entity


def query(
    table: TableClient,
    query_filter: str,
    parameters: dict[str, Any] | None = None,
    select: list[str] | None = None,
    page_size: int | None = None,
) -> Iterator[TableEntity]:
    """The entities matching a filter (`@name` parameters as the SDK's `query_entities`), page by page."""
    params = {"$filter": _parameter_filter_substitution(parameters, query_filter)}
    if select:
        params["$select"] = ",".join(select)
    if page_size:
        params["$top"] = str(page_size)
    url = f"{_base(table)}/{table.table_name}()"
    headers = {**_SERVICE_HEADERS, "Accept": "application/json;odata=minimalmetadata"}
    while True:
        response = table._client.send_request(HttpRequest("GET", url, params=params, headers=headers), stream=True)
        if response.status_code != 200:
            raise _decode_error(response)
        for raw in orjson.loads(response.read())["value"]:
            yield _entity(raw)
        next_partition = response.headers.get("x-ms-continuation-NextPartitionKey")
        if not next_partition:
            return
        params["NextPartitionKey"] = next_partition
        next_row = response.headers.get("x-ms-continuation-NextRowKey")
        if next_row:
            params["NextRowKey"] = next_row
        else:
            params.pop("NextRowKey", None)
