"""A CVR register simulator: the "system-til-system" Elasticsearch search for companies, with its faults.

`POST /cvr-permanent/virksomhed/_search` with basic authentication (401 `security_exception` otherwise) and a
body `{"query": {"term": {"Vrvirksomhed.cvrNummer": <cvr>}}}` (a number or text, or `{"value": <cvr>}`),
optionally `"_source"` (dotted paths, or true/false), `"size"` and `"from"`. The answer is Elasticsearch's:
`{"took", "timed_out", "_shards", "hits": {"total", "max_score", "hits": [{"_index", "_type", "_id", "_score",
"_source": {"Vrvirksomhed": ...}}]}}`, with `hits.total` a number (Elasticsearch 6, as the register runs) or,
with `state.total_as_object`, `{"value", "relation"}` (7 and later). Any other query shape is 400
`parsing_exception`, another path 404 `index_not_found_exception`, as Elasticsearch answers.

Plain HTTP: the real register is HTTPS, but the client's TLS is requests' default and not what is tested here.

For devhost users and tests: `POST /_control/reset` (an empty register again), `/_control/fault` `{"kind",
"count", "value", "message"}`, `/_control/slow` `{"seconds"}` and `/_control/company` (the arguments of
`CvrState.add_company`).
Fault kinds: "429" (Retry-After `value`), "500", "502", "503" (Elasticsearch error bodies), "timeout" (answer
only after `value` seconds, then as normal) and "partial" (200 with `timed_out` and no hits, as a search that
ran out of time answers). The simulator logs nothing: its handler keeps no access log.
"""

import contextlib
import json
import secrets
import string
import threading
import time
from collections import Counter
from typing import Any

from devhost.simulators.base import JsonHandler, LoopbackServer, basic_credentials_match, fault_arguments

SEARCH_PATH = "/cvr-permanent/virksomhed/_search"
CVR_FIELD = "Vrvirksomhed.cvrNummer"
#: The index behind the alias that answers; no digit run in it, so nothing in an answer looks CPR-shaped.
INDEX = "cvr-permanent-virksomhed-v7"
FORMS = {
    "APS": "Anpartsselskab",
    "A/S": "Aktieselskab",
    "IVS": "Iværksætterselskab",
    "ENK": "Enkeltmandsvirksomhed",
    "I/S": "Interessentskab",
    "K/S": "Kommanditselskab",
    "P/S": "Partnerselskab",
    "FMBA": "Forening med begrænset ansvar",
    "SMBA": "Selskab med begrænset ansvar",
    "FON": "Fonde og andre selvejende institutioner",
}
_ERRORS = {
    429: ("es_rejected_execution_exception", "rejected execution of search: the search queue is full"),
    500: ("search_phase_execution_exception", "all shards failed"),
    502: ("bad_gateway_exception", "the proxy in front of the cluster got no answer"),
    503: ("cluster_block_exception", "blocked by: [SERVICE_UNAVAILABLE/1/state not recovered / initialized];"),
}
_CHALLENGE = {"WWW-Authenticate": 'Basic realm="security" charset="UTF-8"'}
_SEARCH_KEYS = frozenset({"query", "_source", "size", "from"})


def _letters(length: int = 20) -> str:
    """A random id of letters only: no digit runs that a log scan could take for a CPR number."""
    return "".join(secrets.choice(string.ascii_letters) for _ in range(length))


class CvrState:
    """The simulated register: credentials, companies by CVR number, searches seen, pending faults."""

    def __init__(
        self,
        username: str = "devhost",
        password: str = "devhost-secret",  # noqa: S107 - the simulator's documented local password
        *,
        total_as_object: bool = False,
    ) -> None:
        self.lock = threading.RLock()
        self.username, self.password = username, password
        self._configured_shape = total_as_object
        self.reset()

    def reset(self) -> None:
        """Back to as started: an empty register, no searches seen, no faults or slowness, the configured shape."""
        with self.lock:
            #: CVR number -> the `_source` documents with it (more than one makes the number ambiguous).
            self.companies: dict[str, list[dict[str, Any]]] = {}
            self.total_as_object = self._configured_shape
            #: Search requests per CVR number asked for ("" when the query named none), faulted ones included.
            self.requests: Counter[str] = Counter()
            self.faults: list[tuple[str, float, str]] = []  # (kind, Retry-After or delay seconds, message)
            self.slow_seconds = 0.0

    def add_company(  # noqa: PLR0917 - the order a company's address is written in
        self,
        cvr: str,
        name: str,
        street_name: str,
        house_number: int | None,
        postal_code: str | int,
        city: str,
        status: str = "NORMAL",
        form: str | None = "APS",
        letter: str | None = None,
        co_name: str | None = None,
    ) -> dict[str, Any]:
        """Adds a company document for this CVR number (a second one for a number makes it ambiguous)."""
        if len(cvr) != 8 or not cvr.isascii() or not cvr.isdigit():
            raise ValueError("a CVR number is 8 digits")
        metadata = {
            "nyesteNavn": {"navn": name, "periode": {"gyldigFra": "2015-03-02", "gyldigTil": None}},
            "nyesteBeliggenhedsadresse": {
                "landekode": "DK",
                "fritekst": None,
                "vejkode": 7500,
                "kommune": {"kommuneKode": 101, "kommuneNavn": "KØBENHAVN"},
                "husnummerFra": house_number,
                "husnummerTil": None,
                "bogstavFra": letter,
                "bogstavTil": None,
                "etage": None,
                "sidedoer": None,
                "conavn": co_name,
                "postboks": None,
                "vejnavn": street_name,
                "bynavn": None,
                "postnummer": int(postal_code),
                "postdistrikt": city,
                "periode": {"gyldigFra": "2015-03-02", "gyldigTil": None},
            },
            "sammensatStatus": status,
            "nyesteVirksomhedsform": (
                {"virksomhedsformkode": 80, "kortBeskrivelse": form, "langBeskrivelse": FORMS.get(form, form)}
                if form
                else None
            ),
            "nyesteHovedbranche": {"branchekode": "620100", "branchetekst": "Computerprogrammering"},
            "stiftelsesDato": "2015-03-02",
        }
        document = {
            "Vrvirksomhed": {
                "cvrNummer": int(cvr),
                "enhedstype": "VIRKSOMHED",
                "reklamebeskyttet": False,
                "virksomhedMetadata": metadata,
                "sidstOpdateret": "2025-11-03T08:15:12.000+01:00",
            }
        }
        with self.lock:
            self.companies.setdefault(cvr, []).append(document)
        return document

    def inject(self, kind: str, count: int = 1, value: float = 0, message: str = "") -> None:
        """The next `count` searches fail this way: "429", "500", "502", "503", "timeout" or "partial"."""
        if kind not in ("429", "500", "502", "503", "timeout", "partial"):
            raise ValueError(f"unknown fault {kind!r}")
        with self.lock:
            self.faults += [(kind, value, message)] * count

    def find(self, value: Any) -> list[dict[str, Any]]:
        """The documents whose CVR number equals a term query's value (a number or digits as text)."""
        number = int(value)  # as Elasticsearch reads a term on a long field: "01234567" and 1234567 are one
        with self.lock:
            return [
                document for cvr, documents in self.companies.items() if int(cvr) == number for document in documents
            ]

    def take_fault(self) -> tuple[str, float, str] | None:
        """Removes and returns the next pending fault, if any."""
        with self.lock:
            return self.faults.pop(0) if self.faults else None


def _term_value(search: Any) -> tuple[Any, str | None]:
    """The CVR value of a search body, or (None, Elasticsearch's reason for refusing it)."""
    if not isinstance(search, dict):
        return None, "request body must be a JSON object"
    unknown = sorted(set(search) - _SEARCH_KEYS)
    if unknown:
        return None, f"Unknown key for a START_OBJECT in [{unknown[0]}]."
    query = search.get("query")
    if not isinstance(query, dict) or list(query) != ["term"]:
        kinds = list(query) if isinstance(query, dict) else []
        return None, f"unknown query [{kinds[0] if kinds else ''}]; the register answers term queries only"
    term = query["term"]
    if not isinstance(term, dict) or list(term) != [CVR_FIELD]:
        return None, f"[term] query must be on [{CVR_FIELD}]"
    value = term[CVR_FIELD]
    if isinstance(value, dict):  # the long form {"value": ..., "boost": ...}
        value = value.get("value")
    if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).strip().isdigit():
        return None, f"failed to create query: For input string: [{CVR_FIELD}] is not a number"
    return value, None


def _recorded(search: Any) -> str:
    """The CVR number a search asks for, as the request log keys it ("" when it names none)."""
    value, _ = _term_value(search)
    if value is None:
        return ""
    return f"{value:08d}" if isinstance(value, int) else str(value).strip()


def _project(source: dict[str, Any], includes: Any) -> dict[str, Any]:
    """The document with only the `_source` paths asked for (all of it for true or none, nothing for false)."""
    if includes is None or includes is True:
        return source
    if includes is False:
        return {}
    paths = [includes] if isinstance(includes, str) else list(includes)
    projected: dict[str, Any] = {}
    for path in paths:
        keys = str(path).split(".")
        value: Any = source
        for key in keys:
            if not isinstance(value, dict) or key not in value:
                break
            value = value[key]
        else:
            target = projected
            for key in keys[:-1]:
                target = target.setdefault(key, {})
            target[keys[-1]] = value
    return projected


class _Handler(JsonHandler):
    server: "CvrServer"
    protocol_version = "HTTP/1.1"

    def handle(self) -> None:
        """Serves the connection; a client gone before a late answer (a timeout fault) is no error to print."""
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            super().handle()

    def _body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _es_error(self, status: int, kind: str, reason: str, headers: dict[str, str] | None = None) -> None:
        """An Elasticsearch error answer: `{"error": {"root_cause", "type", "reason"}, "status"}`."""
        cause = {"type": kind, "reason": reason}
        self.reply(status, {"error": {"root_cause": [cause], **cause}, "status": status}, headers)

    def _authorised(self) -> bool:
        state = self.server.state
        return basic_credentials_match(self.headers.get("Authorization", ""), state.username, state.password)

    def _fault(self) -> bool:
        """Applies slowness and the next fault; True when the fault has answered."""
        state = self.server.state
        if state.slow_seconds:
            time.sleep(state.slow_seconds)
        fault = state.take_fault()
        if fault is None:
            return False
        kind, value, message = fault
        if kind == "timeout":
            time.sleep(value)
            return False  # then answered as normal, too late for a client that has given up
        if kind == "partial":
            self.reply(200, _answer([], 0, state.total_as_object, timed_out=True))
            return True
        status = int(kind)
        error, reason = _ERRORS[status]
        headers = {"Retry-After": str(int(value))} if status == 429 else None
        self._es_error(status, error, message or reason, headers)
        return True

    def _route(self, method: str) -> None:
        state = self.server.state
        path = self.path.split("?", 1)[0]
        body = self._body()
        if path.startswith("/_control/") and method == "POST":
            self._control(path, body)
            return
        if path != SEARCH_PATH:
            index = path.strip("/").split("/", 1)[0]
            self._es_error(404, "index_not_found_exception", f"no such index [{index}]")
            return
        if method != "POST":
            self.reply(
                405,
                {
                    "error": f"Incorrect HTTP method for uri [{path}] and method [{method}], allowed: [POST]",
                    "status": 405,
                },
            )
            return
        try:
            search = json.loads(body or b"{}")
        except ValueError:
            search = None
        with state.lock:
            state.requests[_recorded(search)] += 1
        if self._fault():
            return
        if not self._authorised():
            self._es_error(
                401,
                "security_exception",
                f"unable to authenticate user for REST request [{SEARCH_PATH}]",
                _CHALLENGE,
            )
            return
        self._search(search)

    def _search(self, search: Any) -> None:
        """Answers an authorised search: its term query's documents, or 400 for any other query."""
        state = self.server.state
        value, refused = _term_value(search)
        size, start = (search.get("size", 10), search.get("from", 0)) if refused is None else (0, 0)
        if refused is None and (not isinstance(size, int) or not isinstance(start, int) or min(size, start) < 0):
            refused = "[size] and [from] must be non-negative numbers"
        if refused is not None:
            self._es_error(400, "parsing_exception", refused)
            return
        found = state.find(value)
        shown = [_project(document, search.get("_source")) for document in found[start : start + size]]
        self.reply(200, _answer(shown, len(found), state.total_as_object))

    def _control(self, path: str, raw: bytes) -> None:
        try:
            self._apply(path, json.loads(raw or b"{}"))
        except (KeyError, TypeError, ValueError) as error:
            self._es_error(400, "illegal_argument_exception", f"bad control request: {type(error).__name__}")

    def _apply(self, path: str, body: dict[str, Any]) -> None:
        """Carries out one control request and answers it."""
        state = self.server.state
        if path == "/_control/reset":
            state.reset()
        elif path == "/_control/fault":
            state.inject(*fault_arguments(body))
        elif path == "/_control/slow":
            state.slow_seconds = float(body.get("seconds", 0))
        elif path == "/_control/company":
            self.reply(201, state.add_company(**body))
            return
        else:
            self._es_error(404, "resource_not_found_exception", "unknown control")
            return
        self.reply(200, {})


def _answer(documents: list[dict[str, Any]], total: int, as_object: bool, *, timed_out: bool = False) -> dict[str, Any]:
    """An Elasticsearch search answer holding these documents out of `total` matches."""
    hits = [
        {"_index": INDEX, "_type": "_doc", "_id": _letters(), "_score": 1.0, "_source": document}
        for document in documents
    ]
    return {
        "took": 3,
        "timed_out": timed_out,
        "_shards": {"total": 6, "successful": 6, "skipped": 0, "failed": 0},
        "hits": {
            "total": {"value": total, "relation": "eq"} if as_object else total,
            "max_score": 1.0 if hits else None,
            "hits": hits,
        },
    }


class CvrServer(LoopbackServer):
    """The simulator on a loopback port (plain HTTP)."""

    def __init__(self, port: int = 0, state: CvrState | None = None) -> None:
        super().__init__(port, _Handler)
        self.state = state or CvrState()

    def settings(self) -> dict[str, str]:
        """The app settings that point the CVR client at this simulator."""
        return {"CVR_BASE_URL": self.url, "CVR_USERNAME": self.state.username, "CVR_PASSWORD": self.state.password}
