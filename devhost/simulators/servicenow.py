"""A ServiceNow simulator: OAuth client credentials and the Table API, with the faults real instances show.

Endpoints as in ServiceNow: `POST /oauth_token.do` (form: grant_type=client_credentials, client_id,
client_secret -> access_token, expires_in), `GET/POST /api/now/table/{table}`,
`GET/PATCH /api/now/table/{table}/{sys_id}`, with `sysparm_query` (encoded query: `field=value`,
`field!=value`, `fieldINa,b`, `fieldSTARTSWITHx`, `fieldISEMPTY`, `fieldISNOTEMPTY`, joined by `^`, and
`ORDERBYfield` / `ORDERBYDESCfield`), `sysparm_limit`, `sysparm_offset`, `sysparm_fields` (catalog variables
only when asked for as `variables.<name>`). Bodies `{"result": ...}`, errors `{"error": {"message": ...}}`,
`X-Total-Count` on lists. Tables: `sc_req_item` (states 1 open, 2 work in progress, -5 pending, 3 closed
complete, 4 closed incomplete), `sc_task`, `incident`.

Faults for tests (`/_control/...`): tokens expire (401 "User Not Authenticated"), the next N requests
answer 429 with Retry-After or 5xx, or hang past the client's timeout; every request can be slowed.
"""

import json
import secrets
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlparse

from devhost.simulators.base import JsonHandler, LoopbackServer, fault_arguments

REQ_ITEM_STATES = {
    "1": "Open",
    "2": "Work in Progress",
    "-5": "Pending",
    "3": "Closed Complete",
    "4": "Closed Incomplete",
}
_PREFIX = {"sc_req_item": "RITM", "sc_task": "SCTASK", "incident": "INC", "sys_user": "USR"}
#: Journal fields: what is written is appended to the record's journal, and reads return it empty.
_JOURNALS = ("work_notes", "comments")
_CLOSED_STATES = {"3", "4", "7"}


class ServiceNowState:
    """The simulated instance: records, credentials, issued tokens and pending faults."""

    def __init__(self, client_id: str = "devhost", client_secret: str = "devhost-secret") -> None:  # noqa: S107
        self.lock = threading.RLock()
        self.client_id, self.client_secret = client_id, client_secret
        self.tables: dict[str, dict[str, dict[str, Any]]] = {table: {} for table in _PREFIX}
        self.tokens: dict[str, datetime] = {}
        self.token_lifetime = 1800
        self.token_requests = 0
        self.requests: list[tuple[str, str]] = []
        self.faults: list[tuple[str, float, str]] = []  # (kind, retry-after or hang seconds, error message)
        self.slow_seconds = 0.0
        self._numbers = dict.fromkeys(_PREFIX, 1000000)
        self._clock = datetime(2026, 1, 1, tzinfo=UTC)

    def insert(self, table: str, record: dict[str, Any], *, created: datetime | None = None) -> dict[str, Any]:
        """Adds a record as the instance would: sys_id, number, sys_created_on, default state."""
        with self.lock:
            self._numbers[table] += 1
            self._clock += timedelta(seconds=1)
            stamp = created or self._clock
            full = {
                "sys_id": uuid.uuid4().hex,
                "number": f"{_PREFIX[table]}{self._numbers[table]:07d}",
                "sys_created_on": stamp.strftime("%Y-%m-%d %H:%M:%S"),
                "sys_updated_on": stamp.strftime("%Y-%m-%d %H:%M:%S"),
                "state": "1",
                "active": "true",
                **record,
            }
            self.tables[table][full["sys_id"]] = full
            return full

    def expire_tokens(self) -> None:
        """Every issued token stops working (as after expires_in)."""
        with self.lock:
            self.tokens.clear()

    def inject(self, kind: str, count: int = 1, value: float = 0, message: str = "") -> None:
        """The next `count` API requests fail this way (kind: "429", "hang" or an HTTP status)."""
        with self.lock:
            self.faults += [(kind, value, message)] * count


_TESTS = {
    "ISNOTEMPTY": lambda actual, value: actual != "",
    "ISEMPTY": lambda actual, value: actual == "",
    "STARTSWITH": lambda actual, value: actual.startswith(value),
    "!=": lambda actual, value: actual != value,
    "IN": lambda actual, value: actual in value.split(","),
    "=": lambda actual, value: actual == value,
}


def _matches(record: dict[str, Any], condition: str) -> bool:
    # The operator is the one that starts first after the field name (the longest, where two start together).
    found = [(condition.find(op), -len(op), op) for op in _TESTS if condition.find(op) > 0]
    if not found:
        raise ValueError(f"unsupported condition {condition!r}")
    operator = min(found)[2]
    field, _, value = condition.partition(operator)
    return _TESTS[operator](str(_field(record, field) or ""), value)


def _field(record: dict[str, Any], name: str) -> Any:
    if name.startswith("variables."):
        return record.get("variables", {}).get(name.split(".", 1)[1], "")
    return record.get(name, "")


def query(records: list[dict[str, Any]], encoded: str) -> list[dict[str, Any]]:
    """Records matching an encoded query, in its ORDERBY order (sys_id order when none is given)."""
    order: list[tuple[str, bool]] = []
    conditions = []
    for part in filter(None, encoded.split("^")):
        if part.startswith("ORDERBYDESC"):
            order.append((part[len("ORDERBYDESC") :], True))
        elif part.startswith("ORDERBY"):
            order.append((part[len("ORDERBY") :], False))
        else:
            conditions.append(part)
    found = [r for r in records if all(_matches(r, c) for c in conditions)]
    found.sort(key=lambda r: r["sys_id"])
    for field, descending in reversed(order):
        found.sort(key=lambda r, f=field: str(_field(r, f)), reverse=descending)
    return found


#: Reference fields and the table they point into, for dot-walked fields such as `requested_for.email`.
REFERENCES = {"requested_for": "sys_user", "opened_by": "sys_user", "request_item": "sc_req_item"}


def _project(
    record: dict[str, Any], fields: str | None, tables: dict[str, dict[str, dict[str, Any]]] | None = None
) -> dict[str, Any]:
    visible = {k: v for k, v in record.items() if k not in ("variables", "journal")}
    if not fields:
        return visible
    projected = {}
    for name in fields.split(","):
        head, _, tail = name.partition(".")
        if head == "variables":
            projected[name] = _field(record, name)
        elif tail and head in REFERENCES:  # dot-walking: the referenced record's field
            projected[name] = (tables or {}).get(REFERENCES[head], {}).get(record.get(head, ""), {}).get(tail, "")
        else:
            projected[name] = visible.get(name, "")
    return projected


class _Handler(JsonHandler):
    server: "ServiceNowServer"
    protocol_version = "HTTP/1.1"

    def _error(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        self.reply(status, {"error": {"message": message, "detail": ""}, "status": "failure"}, headers)

    def _body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _authorised(self) -> bool:
        state = self.server.state
        token = self.headers.get("Authorization", "").removeprefix("Bearer ")
        with state.lock:
            expiry = state.tokens.get(token)
        return expiry is not None and expiry > datetime.now(UTC)

    def _fault(self) -> bool:
        state = self.server.state
        with state.lock:
            fault = state.faults.pop(0) if state.faults else None
        if state.slow_seconds:
            time.sleep(state.slow_seconds)
        if fault is None:
            return False
        kind, value, message = fault
        if kind == "429":
            self._error(429, message or "Too many requests", {"Retry-After": str(int(value))})
        elif kind == "hang":
            time.sleep(value)
            self._error(504, message or "Gateway timeout")
        else:
            self._error(int(kind), message or "The instance is unavailable")
        return True

    def _route(self, method: str) -> None:
        state = self.server.state
        url = urlparse(self.path)
        params = {k: v[-1] for k, v in parse_qs(url.query).items()}
        body = self._body()
        with state.lock:
            state.requests.append((method, url.path))
        if url.path.startswith("/_control/"):
            self._control(url.path, json.loads(body or b"{}"))
            return
        if url.path == "/oauth_token.do" and method == "POST":
            self._token(parse_qs(body.decode()))
            return
        parts = url.path.strip("/").split("/")
        if parts[:3] != ["api", "now", "table"] or len(parts) not in (4, 5):
            self._error(400, "Invalid URI")
            return
        if self._fault():
            return
        if not self._authorised():
            self._error(401, "User Not Authenticated")
            return
        table = parts[3]
        if table not in state.tables:
            self._error(400, f"Invalid table {table}")
            return
        with state.lock:
            records = state.tables[table]
            if len(parts) == 4 and method == "GET":
                found = query(list(records.values()), params.get("sysparm_query", ""))
                offset, limit = int(params.get("sysparm_offset", 0)), int(params.get("sysparm_limit", 10000))
                page = [_project(r, params.get("sysparm_fields"), state.tables) for r in found[offset : offset + limit]]
                self.reply(200, {"result": page}, {"X-Total-Count": str(len(found))})
            elif len(parts) == 4 and method == "POST":
                created = state.insert(table, json.loads(body or b"{}"))
                self.reply(201, {"result": _project(created, params.get("sysparm_fields"), state.tables)})
            elif len(parts) == 5 and parts[4] not in records:
                self._error(404, "No Record found")
            elif len(parts) == 5 and method == "GET":
                self.reply(200, {"result": _project(records[parts[4]], params.get("sysparm_fields"), state.tables)})
            elif len(parts) == 5 and method == "PATCH":
                record = records[parts[4]]
                changes = json.loads(body or b"{}")
                for journal in _JOURNALS:
                    if changes.get(journal):
                        record.setdefault("journal", []).append((journal, changes.pop(journal)))
                record.update(changes)
                if str(record.get("state")) in _CLOSED_STATES:
                    record["active"] = "false"
                record["sys_updated_on"] = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")
                self.reply(200, {"result": _project(record, params.get("sysparm_fields"), state.tables)})
            else:
                self._error(405, "Method not supported")

    def _token(self, form: dict[str, list[str]]) -> None:
        state = self.server.state
        values = {k: v[-1] for k, v in form.items()}
        with state.lock:
            state.token_requests += 1
        if values.get("grant_type") != "client_credentials":
            self.reply(400, {"error": "unsupported_grant_type"})
            return
        if (values.get("client_id"), values.get("client_secret")) != (state.client_id, state.client_secret):
            self.reply(401, {"error": "access_denied", "error_description": "access_denied"})
            return
        token = secrets.token_urlsafe(24)
        with state.lock:
            state.tokens[token] = datetime.now(UTC) + timedelta(seconds=state.token_lifetime)
        self.reply(
            200,
            {"access_token": token, "token_type": "Bearer", "expires_in": state.token_lifetime, "scope": "useraccount"},
        )

    def _control(self, path: str, body: dict[str, Any]) -> None:
        state = self.server.state
        if path == "/_control/expire_tokens":
            state.expire_tokens()
        elif path == "/_control/fault":
            state.inject(*fault_arguments(body))
        elif path == "/_control/slow":
            state.slow_seconds = float(body.get("seconds", 0))
        elif path == "/_control/insert":
            self.reply(201, {"result": state.insert(body["table"], body["record"])})
            return
        else:
            self._error(404, "unknown control")
            return
        self.reply(200, {})


class ServiceNowServer(LoopbackServer):
    """The simulator on a loopback port."""

    def __init__(self, port: int = 0, state: ServiceNowState | None = None) -> None:
        super().__init__(port, _Handler)
        self.state = state or ServiceNowState()
