"""A CVR register simulator: the "system-til-system" Elasticsearch search for companies, with its faults.

`POST /cvr-permanent/virksomhed/_search` with basic authentication (401 `security_exception` otherwise) and a
body `{"query": {"term": {"Vrvirksomhed.cvrNummer": <cvr>}}}` (a number or text, or `{"value": <cvr>}`) or
`{"query": {"terms": {"Vrvirksomhed.cvrNummer": [<cvr>, ...]}}}` (numbers or text, at most 65,536 as
Elasticsearch's `index.max_terms_count`; `"boost"` beside the field allowed), optionally `"_source"` (dotted
paths, or true/false), `"size"` (default 10) and `"from"`; `from + size` above 10,000 is 400
`illegal_argument_exception` ("Result window is too large"), as Elasticsearch's `index.max_result_window`
answers. A `terms` query's hits come in the order the documents were added. The answer is Elasticsearch's:
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
ran out of time answers). A fault answers one search, however many numbers it names.

Recorded per search (faulted ones included): `state.requests` counts each CVR number a search names (a `terms`
search counts once for each of its numbers; "" for a search naming none), and `state.searches` holds each
search's numbers in the order the searches arrived, so `len(state.searches)` is the number of searches.
The simulator logs nothing: its handler keeps no access log.
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
#: Elasticsearch's defaults for `index.max_terms_count` and `index.max_result_window`.
MAX_TERMS = 65_536
MAX_RESULT_WINDOW = 10_000


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
            #: The CVR numbers of each search, in arrival order (empty when it named none), faulted ones included.
            self.searches: list[tuple[str, ...]] = []
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
        return self.find_any([value])

    def find_any(self, values: list[Any]) -> list[dict[str, Any]]:
        """The documents whose CVR number is any of a terms query's values, in the order they were added."""
        numbers = {int(value) for value in values}  # as Elasticsearch reads a long field: "01234567" is 1234567
        with self.lock:
            return [
                document for cvr, documents in self.companies.items() if int(cvr) in numbers for document in documents
            ]

    def take_fault(self) -> tuple[str, float, str] | None:
        """Removes and returns the next pending fault, if any."""
        with self.lock:
            return self.faults.pop(0) if self.faults else None


def _clause(search: Any) -> tuple[str, dict[str, Any]] | str:
    """A search body's query kind ("term" or "terms") and clause, or Elasticsearch's reason for refusing it."""
    if not isinstance(search, dict):
        return "request body must be a JSON object"
    unknown = sorted(set(search) - _SEARCH_KEYS)
    if unknown:
        return f"Unknown key for a START_OBJECT in [{unknown[0]}]."
    query = search.get("query")
    if not isinstance(query, dict) or list(query) not in (["term"], ["terms"]):
        kinds = list(query) if isinstance(query, dict) else []
        return f"unknown query [{kinds[0] if kinds else ''}]; the register answers term and terms queries only"
    kind, clause = next(iter(query.items()))
    # A terms query takes its boost beside the field; a term query inside the field's long form.
    allowed = {CVR_FIELD, "boost"} if kind == "terms" else {CVR_FIELD}
    if not isinstance(clause, dict) or CVR_FIELD not in clause or not set(clause) <= allowed:
        return f"[{kind}] query must be on [{CVR_FIELD}]"
    return kind, clause


def _term_values(search: Any) -> tuple[list[Any] | None, str | None]:
    """The CVR values of a search body's term or terms query, or (None, Elasticsearch's reason for refusing it)."""
    clause = _clause(search)
    if isinstance(clause, str):
        return None, clause
    kind, fields = clause
    values = fields[CVR_FIELD]
    if kind == "term":
        values = [values.get("value") if isinstance(values, dict) else values]  # the long form {"value", "boost"}
    elif not isinstance(values, list):
        return None, f"[terms] query does not support [{CVR_FIELD}] as a single value"
    elif len(values) > MAX_TERMS:
        return None, (
            f"The number of terms [{len(values)}] used in the Terms Query request has exceeded "
            f"the allowed maximum of [{MAX_TERMS}]."
        )
    if any(isinstance(v, bool) or not isinstance(v, int | str) or not str(v).strip().isdigit() for v in values):
        return None, f"failed to create query: For input string: [{CVR_FIELD}] is not a number"
    return values, None


def _recorded(search: Any) -> tuple[str, ...]:
    """The CVR numbers a search asks for, as the request log keys them (none when it names none)."""
    values, _ = _term_values(search)
    return tuple(f"{value:08d}" if isinstance(value, int) else str(value).strip() for value in values or [])


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
    # Headers and body go out in two writes; with Nagle on, the body waits for the client's delayed ACK (40 ms).
    disable_nagle_algorithm = True

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
        numbers = _recorded(search)
        with state.lock:
            state.requests.update(numbers or ("",))
            state.searches.append(numbers)
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
        """Answers an authorised search: its term or terms query's documents, or 400 for any other query."""
        state = self.server.state
        values, refused = _term_values(search)
        size, start = (search.get("size", 10), search.get("from", 0)) if refused is None else (0, 0)
        if refused is None and (not isinstance(size, int) or not isinstance(start, int) or min(size, start) < 0):
            refused = "[size] and [from] must be non-negative numbers"
        if refused is not None or values is None:
            self._es_error(400, "parsing_exception", refused or "no query")
            return
        if start + size > MAX_RESULT_WINDOW:
            self._es_error(
                400,
                "illegal_argument_exception",
                f"Result window is too large, from + size must be less than or equal to: [{MAX_RESULT_WINDOW}] "
                f"but was [{start + size}].",
            )
            return
        found = state.find_any(values)
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
