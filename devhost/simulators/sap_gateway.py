"""What the SAP Gateway simulators (Kvantum, Opus Debitor) share: SAP Gateway's JSON plumbing over plain HTTP.

- HTTP basic authentication on every service request (401 with `WWW-Authenticate: Basic realm=...`).
- SAP's CSRF handshake: any GET with `X-CSRF-Token: Fetch` answers the session's token in `X-CSRF-Token` and
  sets the session cookie (an existing session keeps its token); a POST without both gets `403` with
  `X-CSRF-Token: Required`. `expire_csrf()` ends every session, as SAP's session timeout does.
- Pages of at most `$top` results with an absolute `__next` link (`$skiptoken`) while more follow.
- SAP Gateway's error body, and the faults for tests: "429", "timeout" and any HTTP status, plus slowness.

A simulator subclasses `SapGatewayState`, `SapGatewayHandler` and `SapGatewayServer` and names its service.
"""

import secrets
import string
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from http.cookies import CookieError, SimpleCookie
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlencode, urlparse

from devhost.simulators.base import JsonHandler, LoopbackServer, basic_credentials_match, fault_arguments

PAGE_SIZE = 50

#: (status, body, headers) of one service answer.
Answer = tuple[int, Any, dict[str, str]]


def letters(length: int = 32) -> str:
    """A random token of letters only: no digit runs that a log scan could take for a CPR number."""
    return "".join(secrets.choice(string.ascii_letters) for _ in range(length))


class RefusalError(Exception):
    """A request the service refuses with an SAP message (status, code, Danish text, the field it concerns)."""

    def __init__(self, code: str, message: str, target: str = "", status: int = 400) -> None:
        super().__init__(message)
        self.code, self.message, self.target, self.status = code, message, target, status


def error_body(code: str, message: str, target: str = "", *, component_id: str, service_id: str) -> dict[str, Any]:
    """SAP Gateway's error body for one message."""
    now = datetime.now(UTC)
    return {
        "error": {
            "code": code,
            "message": {"lang": "da", "value": message},
            "innererror": {
                "application": {
                    "component_id": component_id,
                    "service_namespace": "/SAP/",
                    "service_id": service_id,
                    "service_version": "0001",
                },
                "transactionid": letters(32).upper(),
                "timestamp": now.strftime("%Y%m%d%H%M%S.") + f"{now.microsecond:06d}0",
                "Error_Resolution": {
                    "SAP_Transaction": "For backend administrators: use ADT feed reader /n/IWFND/ERROR_LOG",
                    "SAP_Note": "See SAP Note 1797736 for error analysis",
                },
                "errordetails": [
                    {"code": code, "message": message, "propertyref": "", "severity": "error", "target": target}
                ],
            },
        }
    }


class SapGatewayState:
    """A simulated service's credentials, CSRF sessions, requests, faults and slowness; subclasses add the data."""

    #: The fault endpoint of the service's POST ("read" is every GET).
    write_endpoint: ClassVar[str]

    def __init__(
        self,
        username: str = "devhost",
        password: str = "devhost-secret",  # noqa: S107 - the simulators' documented local password
        page_size: int = PAGE_SIZE,
    ) -> None:
        self.lock = threading.RLock()
        self.username, self.password = username, password
        self.page_size = page_size
        self.reset()

    def reset(self) -> None:
        """Forgets sessions, requests, faults and slowness (a subclass forgets its data too)."""
        with self.lock:
            self.sessions: dict[str, str] = {}  # session cookie -> CSRF token
            self.requests: list[tuple[str, str]] = []  # (method, path) of every service request, on arrival
            self.answers: list[tuple[str, str, int]] = []  # (method, path, status), when answered
            self.faults: list[tuple[str, str, float, str]] = []  # (endpoint, kind, value, message)
            self.slow_seconds = 0.0

    def count(self, method: str, suffix: str) -> int:
        """How many service requests with this method had a path ending so (e.g. "POST", "/Vendors")."""
        with self.lock:
            return sum(1 for m, path in self.requests if m == method and path.endswith(suffix))

    def expire_csrf(self) -> None:
        """Every SAP session ends, and with it its CSRF token (as after the session timeout)."""
        with self.lock:
            self.sessions.clear()

    def inject(self, kind: str, count: int = 1, value: float = 0, message: str = "", endpoint: str = "read") -> None:
        """The next `count` reads (any GET) or POSTs fail this way: "429", "timeout" or an HTTP status."""
        if endpoint not in ("read", self.write_endpoint):
            raise ValueError(f"unknown endpoint {endpoint!r}: 'read' or {self.write_endpoint!r}")
        if kind not in ("429", "timeout") and not kind.isdigit():
            raise ValueError(f"unknown fault {kind!r}: '429', 'timeout' or an HTTP status")
        with self.lock:
            self.faults += [(endpoint, kind, value, message)] * count

    def take_fault(self, endpoint: str) -> tuple[str, float, str] | None:
        """Removes and returns the next fault for this endpoint (kind, value, message), if any."""
        with self.lock:
            for index, fault in enumerate(self.faults):
                if fault[0] == endpoint:
                    del self.faults[index]
                    return fault[1:]
        return None


class SapGatewayHandler(JsonHandler):
    """Answers an SAP Gateway service: control endpoints, faults, authentication, the CSRF handshake, paging.

    A subclass names the service and implements `_service` (the service's own requests) and `_control`.
    """

    server: "SapGatewayServer"
    protocol_version = "HTTP/1.1"
    #: The state this request works on, taken when it arrives: a late answer (a "timeout" fault) still belongs
    #: to the state it was made in after a test has swapped `server.state` for a fresh one.
    state: SapGatewayState

    service_path: ClassVar[str]
    session_cookie: ClassVar[str]
    realm: ClassVar[str]
    #: `innererror.application` of the error body.
    component_id: ClassVar[str]
    service_id: ClassVar[str]
    #: The text of an injected HTTP status without a message of its own.
    unavailable: ClassVar[str]

    # --- plumbing -------------------------------------------------------------------------------------------

    def _error_body(self, code: str, message: str, target: str = "") -> dict[str, Any]:
        """SAP Gateway's error body for one message of this service."""
        return error_body(code, message, target, component_id=self.component_id, service_id=self.service_id)

    def _body(self) -> bytes:
        """The request body (empty without Content-Length)."""
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _answer(self, method: str, path: str, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        """Answers a service request and notes its status in the state."""
        with self.state.lock:
            self.state.answers.append((method, path, status))
        self.reply(status, body, headers)

    def _session(self) -> str | None:
        """The SAP session cookie the request carries, if any."""
        try:
            cookie = SimpleCookie(self.headers.get("Cookie", ""))
        except CookieError:
            return None
        morsel = cookie.get(self.session_cookie)
        return morsel.value if morsel else None

    def _csrf_valid(self) -> bool:
        """Whether the request carries a live session cookie and that session's CSRF token."""
        session, token = self._session(), self.headers.get("X-CSRF-Token", "")
        with self.state.lock:
            expected = self.state.sessions.get(session or "")
        return expected is not None and bool(token) and secrets.compare_digest(token, expected)

    def _csrf_refused(self) -> Answer | None:
        """SAP's 403 asking for a CSRF token when the request lacks a valid one, else None."""
        if self._csrf_valid():
            return None
        refused = {"code": "CSRF", "message": {"lang": "da", "value": "CSRF token validation failed"}}
        return 403, {"error": refused}, {"X-CSRF-Token": "Required"}

    def _csrf_fetch(self) -> dict[str, str]:
        """The headers that hand out the session's CSRF token (and a new session when there is none)."""
        state = self.state
        session = self._session()
        headers: dict[str, str] = {}
        with state.lock:
            if session not in state.sessions:
                session = letters(40)
                state.sessions[session] = letters(24)
                headers["Set-Cookie"] = f"{self.session_cookie}={session}; path=/; HttpOnly"
            headers["X-CSRF-Token"] = state.sessions[session]
        return headers

    def _page(
        self, entity_set: str, found: list[Any], params: dict[str, str], show: Callable[[Any], Any]
    ) -> dict[str, Any]:
        """One page (`$top`, `$skiptoken`) of the results, shown so, with `__next` while more follow."""
        top = int(params["$top"]) if params.get("$top", "").isdigit() else self.state.page_size
        skip = int(params["$skiptoken"]) if params.get("$skiptoken", "").isdigit() else 0
        page: dict[str, Any] = {"results": [show(record) for record in found[skip : skip + top]]}
        if skip + top < len(found):
            following = {k: v for k, v in params.items() if k != "$skiptoken"} | {"$skiptoken": str(skip + top)}
            page["__next"] = f"{self.server.url}{self.service_path}/{entity_set}?{urlencode(following)}"
        return page

    def _metadata(self, entity_set: str, key: str, entity_type: str) -> dict[str, Any]:
        """OData's `__metadata` of one entity."""
        uri = f"{self.server.url}{self.service_path}/{entity_set}('{key}')"
        return {"__metadata": {"id": uri, "uri": uri, "type": f"{self.service_id}.{entity_type}"}}

    # --- routes ---------------------------------------------------------------------------------------------

    def _route(self, method: str) -> None:
        """Control endpoints, then the service: slowness, faults, the answer (late for a "timeout" fault)."""
        state = self.state = self.server.state
        url = urlparse(self.path)
        body = self._body()
        if url.path.startswith("/_control/"):
            self._control(method, url.path, body)
            return
        if url.path != self.service_path and not url.path.startswith(f"{self.service_path}/"):
            self.reply(404, self._error_body("/IWFND/MED/170", "Ingen service fundet for stien"))
            return
        path = url.path[len(self.service_path) :] or "/"
        with state.lock:
            state.requests.append((method, path))
        if state.slow_seconds:
            time.sleep(state.slow_seconds)
        fault = state.take_fault(state.write_endpoint if method == "POST" else "read")
        late = 0.0
        if fault is not None:
            # Answered before anything is done, as SAP's web dispatcher would; a timeout is processed as normal.
            kind, value, message = fault
            if kind == "timeout":
                late = value
            elif kind == "429":
                body_429 = self._error_body("/IWFND/CM_BEC/429", message or "For mange anmodninger")
                self._answer(method, path, 429, body_429, {"Retry-After": str(int(value))})
                return
            else:
                unavailable = self._error_body("/IWFND/CM_BEC/026", message or self.unavailable)
                self._answer(method, path, int(kind), unavailable)
                return
        status, answer, headers = self._respond(method, path, url.query, body)
        if late:
            time.sleep(late)
        self._answer(method, path, status, answer, headers)

    def _respond(self, method: str, path: str, query: str, body: bytes) -> Answer:
        """The answer to one service request: authentication and the CSRF fetch, then the service's own."""
        state = self.state
        if not basic_credentials_match(self.headers.get("Authorization", ""), state.username, state.password):
            challenge = {"WWW-Authenticate": f'Basic realm="{self.realm}"'}
            return 401, self._error_body("/IWFND/CM_CONSUMER/401", "Anmeldelse mislykkedes"), challenge
        headers = self._csrf_fetch() if self.headers.get("X-CSRF-Token", "").lower() == "fetch" else {}
        params = {key: values[-1] for key, values in parse_qs(query, keep_blank_values=True).items()}
        return self._service(method, path, params, body, headers)

    def _service(self, method: str, path: str, params: dict[str, str], body: bytes, headers: dict[str, str]) -> Answer:
        """The service's answer to an authenticated request (`headers`: the CSRF fetch's, to be sent along)."""
        raise NotImplementedError

    def _control(self, method: str, path: str, body: bytes) -> None:
        """The `/_control/...` endpoints for devhost users (never logged, no fault applies)."""
        raise NotImplementedError

    def _control_common(self, path: str, arguments: dict[str, Any]) -> bool:
        """Performs the control commands every simulator has (a POST); False when `path` is none of them."""
        state = self.state
        if path == "/_control/reset":
            state.reset()
        elif path == "/_control/expire_csrf":
            state.expire_csrf()
        elif path == "/_control/slow":
            state.slow_seconds = float(arguments.get("seconds", 0))
        elif path == "/_control/fault":
            state.inject(*fault_arguments(arguments, "read"))
        else:
            return False
        return True


class SapGatewayServer(LoopbackServer):
    """A simulator on a loopback port, over plain HTTP (SAP sits on the municipality's own network)."""

    state: SapGatewayState
    service_path: ClassVar[str]

    @property
    def service_url(self) -> str:
        """The service's root on this server."""
        return f"{self.url}{self.service_path}"

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Quiet about a client that went away (one that timed out closes its end before the late answer)."""
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)
