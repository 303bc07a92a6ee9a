"""An Opus Debitor simulator: KS's receivables (SAP FI-CA), an SAP Gateway-style JSON service over plain HTTP.

The service root is `/sap/opu/odata/opus/debitor/v1`; every request needs HTTP basic authentication (401 with
`WWW-Authenticate: Basic realm="SAP NetWeaver Application Server [OPD/100]"` otherwise).

- `GET /` or any GET with `X-CSRF-Token: Fetch` answers a CSRF token in the `X-CSRF-Token` header and sets the
  session cookie `SAP_SESSIONID_OPD_100`. The POST must send both, else `403`, header `X-CSRF-Token: Required`.
  `expire_csrf()` ends every session, as SAP's session timeout does.
- `GET /BusinessPartners?partner_id=<id>&id_type=<CPR|CVR|SE|P>` answers `{"d": {"results": [{"GPART",
  "TYPE", "IDNUMBER"}]}}` for the partner with that identification (BUT0ID), or an empty list.
- `GET /BusinessPartners?$filter=(TYPE eq 'CPR' and IDNUMBER eq '...') or (...)` answers every identification
  (one result per partner and identification, `{"__metadata", "GPART", "TYPE", "IDNUMBER"}`) the filter
  matches, by GPART, type and number, in pages as below; identifications without a partner are simply absent.
- `GET /OpenItems?partner=<GPART>&due_before=<YYYYMMDD>` answers the partner's open items (open amount above
  zero) due on or before the key date, by due date then document number, at most `$top` (default 50) per page
  with an absolute `__next` link (`$skiptoken`) while more follow. An item is `{"__metadata", "OPBEL" (12
  digits), "GPART", "BETRH" (open amount, dot decimal), "BETRW" (original amount), "WAERS", "FAEDN" (YYYYMMDD),
  "HVORG", "TVORG", "INKGS" ("" or "X": with the collection agency, Gældsstyrelsen)}`.
- `GET /OpenItems?$filter=(GPART eq '...' or GPART eq '...') and FAEDN le 'YYYYMMDD'` answers the open items
  the filter matches, by GPART, due date and document number, paged the same way (`__next` keeps the filter).
- `$filter` is the OData v2 subset SAP Gateway services commonly implement: `eq`, `ne`, `lt`, `le`, `gt`, `ge`
  between a property and a string literal (`'...'`, a quote doubled), joined by `and`/`or` (`and` binds
  tighter) with parentheses. Properties compare as the strings the service shows (FAEDN as YYYYMMDD, so dates
  order correctly). Anything else, or a property the entity set does not have, is `400`
  `/IWBEP/CM_MGW_RT/022`; `$filter` wins over the custom parameters when both are given. `state.filters`
  records `(path, $filter)` of every authenticated read that carried one (for tests counting identifications
  per request).
- `POST /Clearings` with `{"ClaimKey", "Partner", "Amount", "Items": [OPBEL, ...]}` books a clearing document
  (AUGBL, 12 digits) that reduces the items in the order given until the amount is used, and answers `201
  {"d": {"ClaimKey", "AUGBL", "Partner", "Amount", "Items": [{"OPBEL", "Amount", "Remaining"}]}}`. It is
  **idempotent by ClaimKey**: a key seen before answers `200` with the first clearing, whatever the body says,
  and changes nothing. Refusals are `400` with SAP's error body, in this order: `00/055` a required field
  empty; `ZOPUS/001` an amount that is not positive with two decimals; `ZOPUS/002` an unknown partner;
  per item, named by its position in `Items` (never by number): `ZOPUS/003` unknown, not the partner's or
  named twice, `ZOPUS/004` already cleared, `ZOPUS/005` with the collection agency; `ZOPUS/006` an amount above
  the items' open amount. A body the Gateway cannot read gets `/IWBEP/CM_MGW_RT/...`. The message numbers are
  this simulator's (class ZOPUS); the texts are Danish.

Faults for tests: `state.inject(kind, count, value, message, endpoint)` for the next `count` reads (any GET,
endpoint "read") or clearings (endpoint "clearing"): "429" (Retry-After `value`) and any HTTP status are answered
before anything is done; "timeout" processes the request and answers `value` seconds later - a clearing IS
booked, and a client that gave up has lost the answer. `slow_seconds` delays every answer. For devhost users:
`POST /_control/reset`, `/_control/partners` `{"id", "id_type"}`, `/_control/items` `{"partner", "amount",
"due" (YYYY-MM-DD), "collection"}`, `/_control/fault`, `/_control/expire_csrf`, `/_control/slow` `{"seconds"}`;
`GET /_control/items`, `/_control/clearings`.

Quiet: no access log and nothing else logged; partner numbers (10 digits) are CPR-shaped, document numbers
(12 digits) are not to be logged either, and the partner ids in queries are CPR numbers.
"""

import copy
import json
import re
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from devhost.simulators.sap_gateway import (
    PAGE_SIZE,  # noqa: F401 - still this module's public default page size
    Answer,
    RefusalError,
    SapGatewayHandler,
    SapGatewayServer,
    SapGatewayState,
)

SERVICE_PATH = "/sap/opu/odata/opus/debitor/v1"
SESSION_COOKIE = "SAP_SESSIONID_OPD_100"
REALM = "SAP NetWeaver Application Server [OPD/100]"
ID_TYPES = ("CPR", "CVR", "SE", "P")
_AMOUNT = re.compile(r"[0-9]{1,13}\.[0-9]{2}")
_CENT = Decimal("0.01")
#: The properties `$filter` may name, per entity set (as the service shows them).
FILTERABLE = {
    "BusinessPartners": frozenset({"GPART", "TYPE", "IDNUMBER"}),
    "OpenItems": frozenset({"OPBEL", "GPART", "WAERS", "FAEDN", "HVORG", "TVORG", "INKGS"}),
}
_TOKEN = re.compile(r"\s*(?:(?P<paren>[()])|'(?P<text>(?:[^']|'')*)'|(?P<word>[A-Za-z_][A-Za-z0-9_]*))")
_COMPARISONS: dict[str, Callable[[str, str], bool]] = {
    "eq": lambda a, b: a == b,
    "ne": lambda a, b: a != b,
    "lt": lambda a, b: a < b,
    "le": lambda a, b: a <= b,
    "gt": lambda a, b: a > b,
    "ge": lambda a, b: a >= b,
}
#: A compiled `$filter`: whether an entity (its properties as shown) matches.
Predicate = Callable[[dict[str, str]], bool]


class FilterError(ValueError):
    """A `$filter` the simulated service cannot read (the text says what, never a literal's value)."""


def parse_filter(text: str, properties: frozenset[str]) -> Predicate:
    """A `$filter` expression (the OData v2 subset in the module docstring) as a predicate over shown entities."""
    tokens: list[tuple[str, str]] = []
    position = 0
    text = text.rstrip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            raise FilterError(f"uventet tegn ved position {position}")
        kind = match.lastgroup or ""
        value = match.group(kind)
        tokens.append((kind, value.replace("''", "'") if kind == "text" else value))
        position = match.end()
    parser = _FilterParser(tokens, properties)
    predicate = parser.disjunction()
    if parser.index != len(tokens):
        raise FilterError("uventet led efter udtrykket")
    return predicate


class _FilterParser:
    """Recursive descent over `$filter` tokens: or-terms of and-terms of comparisons or parenthesised groups."""

    def __init__(self, tokens: list[tuple[str, str]], properties: frozenset[str]) -> None:
        self.tokens, self.properties, self.index = tokens, properties, 0

    def _peek(self) -> tuple[str, str]:
        """The next token, or ("end", "") past the last."""
        return self.tokens[self.index] if self.index < len(self.tokens) else ("end", "")

    def _take(self) -> tuple[str, str]:
        """The next token, consumed."""
        token = self._peek()
        self.index += 1
        return token

    def _keyword(self, word: str) -> bool:
        """Consumes the keyword if it comes next."""
        if self._peek() == ("word", word):
            self.index += 1
            return True
        return False

    def disjunction(self) -> Predicate:
        """`a or b or ...`."""
        terms = [self.conjunction()]
        while self._keyword("or"):
            terms.append(self.conjunction())
        return terms[0] if len(terms) == 1 else lambda entity: any(term(entity) for term in terms)

    def conjunction(self) -> Predicate:
        """`a and b and ...`."""
        terms = [self.primary()]
        while self._keyword("and"):
            terms.append(self.primary())
        return terms[0] if len(terms) == 1 else lambda entity: all(term(entity) for term in terms)

    def primary(self) -> Predicate:
        """A parenthesised expression or one comparison `Property op 'literal'`."""
        kind, value = self._take()
        if (kind, value) == ("paren", "("):
            inner = self.disjunction()
            if self._take() != ("paren", ")"):
                raise FilterError("manglende ')'")
            return inner
        if kind != "word" or value not in self.properties:
            raise FilterError("ukendt egenskab" if kind == "word" else "en egenskab forventes")
        _, operator = self._take()
        compare = _COMPARISONS.get(operator)
        if compare is None:
            raise FilterError("ukendt eller manglende operator")
        literal_kind, literal = self._take()
        if literal_kind != "text":
            raise FilterError("en tekstkonstant forventes")
        return lambda entity: compare(entity.get(value, ""), literal)


def _danish(amount: Decimal) -> str:
    """An amount as SAP shows it to a Danish user: 1.234,50."""
    return f"{amount:,.2f}".replace(",", "_").replace(".", ",").replace("_", ".")


class OpusDebitorState(SapGatewayState):
    """The simulated Opus Debitor: credentials, partners, items, clearings, CSRF sessions, requests and faults."""

    write_endpoint = "clearing"

    def reset(self) -> None:
        """Forgets partners, items, clearings, sessions, requests, faults and slowness."""
        with self.lock:
            super().reset()
            self.partners: dict[tuple[str, str], str] = {}  # (id_type, id) -> GPART
            self.items: dict[str, dict[str, Any]] = {}  # OPBEL -> item (amounts as Decimal, FAEDN a date)
            self._clearings: dict[str, dict[str, Any]] = {}  # ClaimKey -> clearing, in booking order
            self._next_partner = 1000000001
            #: (path, $filter) of every authenticated read that carried a `$filter`, in arrival order.
            self.filters: list[tuple[str, str]] = []
            self._next_item = 410000000001
            self._next_clearing = 510000000001

    # --- seeding and inspection -------------------------------------------------------------------------------

    def add_partner(self, partner_id: str, id_type: str = "CPR") -> str:
        """Seeds a business partner identified by a CPR/CVR/SE/P number; returns its number (GPART)."""
        if id_type not in ID_TYPES:
            raise ValueError(f"unknown id type: one of {ID_TYPES}")
        with self.lock:
            if (id_type, partner_id) in self.partners:
                raise ValueError("a partner with this identification exists already")
            number = f"{self._next_partner:010d}"
            self._next_partner += 1
            self.partners[(id_type, partner_id)] = number
            return number

    def add_item(
        self,
        partner: str,
        amount: Decimal | str,
        due: date,
        collection: bool = False,
        *,
        main_transaction: str = "0100",
        sub_transaction: str = "0020",
    ) -> str:
        """Seeds an open item the partner owes (with the collection agency when `collection`); returns its OPBEL."""
        value = Decimal(str(amount))
        if value <= 0 or value != value.quantize(_CENT):
            raise ValueError("an item's amount is positive with at most two decimals")
        with self.lock:
            if partner not in self.partners.values():
                raise ValueError("no such partner")
            number = f"{self._next_item:012d}"
            self._next_item += 1
            self.items[number] = {
                "OPBEL": number,
                "GPART": partner,
                "BETRH": value,
                "BETRW": value,
                "WAERS": "DKK",
                "FAEDN": due,
                "HVORG": main_transaction,
                "TVORG": sub_transaction,
                "INKGS": "X" if collection else "",
            }
            return number

    def open_amount(self, item: str) -> Decimal:
        """What is still open of an item."""
        with self.lock:
            return Decimal(self.items[item]["BETRH"])

    def clearings(self) -> list[dict[str, Any]]:
        """The clearings booked, in booking order (amounts as dot-decimal strings, as the service shows them)."""
        with self.lock:
            return [copy.deepcopy(clearing) for clearing in self._clearings.values()]

    # --- behaviour ----------------------------------------------------------------------------------------------

    def find_partner(self, partner_id: str, id_type: str) -> str | None:
        """The GPART with this identification, if any."""
        with self.lock:
            return self.partners.get((id_type, partner_id))

    def identifications(self, matches: Predicate) -> list[dict[str, str]]:
        """The identifications (`GPART`, `TYPE`, `IDNUMBER`) a filter matches, by partner, type and number."""
        with self.lock:
            shown = [
                {"GPART": gpart, "TYPE": id_type, "IDNUMBER": number}
                for (id_type, number), gpart in self.partners.items()
            ]
        return sorted(
            (entity for entity in shown if matches(entity)),
            key=lambda entity: (entity["GPART"], entity["TYPE"], entity["IDNUMBER"]),
        )

    def open_items_matching(self, matches: Predicate) -> list[dict[str, Any]]:
        """The open items a filter matches (compared as shown), by partner, due date and number."""
        with self.lock:
            found = [
                item
                for item in self.items.values()
                if item["BETRH"] > 0 and matches({k: v for k, v in _shown(item).items() if isinstance(v, str)})
            ]
            return copy.deepcopy(sorted(found, key=lambda item: (item["GPART"], item["FAEDN"], item["OPBEL"])))

    def open_items(self, partner: str, key_date: date) -> list[dict[str, Any]]:
        """The partner's items still open and due on or before the key date, by due date and number."""
        with self.lock:
            found = [
                item
                for item in self.items.values()
                if item["GPART"] == partner and item["BETRH"] > 0 and item["FAEDN"] <= key_date
            ]
            return copy.deepcopy(sorted(found, key=lambda item: (item["FAEDN"], item["OPBEL"])))

    def clear(self, request: Any) -> tuple[int, dict[str, Any]]:
        """Books the clearing of a POST body, or finds the one booked for its ClaimKey: (status, clearing)."""
        if not isinstance(request, dict):
            raise RefusalError("/IWBEP/CM_MGW_RT/004", "Anmodningens indhold kunne ikke læses")
        unknown = set(request) - {"ClaimKey", "Partner", "Amount", "Items"}
        if unknown:
            raise RefusalError("/IWBEP/CM_MGW_RT/020", f"Egenskaben '{sorted(unknown)[0]}' er ugyldig")
        key = request.get("ClaimKey")
        if not isinstance(key, str) or not key.strip():
            raise RefusalError("00/055", "Udfyld alle obligatoriske felter (ClaimKey)", "ClaimKey")
        with self.lock:
            if key in self._clearings:  # idempotent: the clearing booked for this claim the first time
                return 200, copy.deepcopy(self._clearings[key])
            partner, amount, items = self._validate(request)
            left = amount
            lines = []
            for number in items:
                item = self.items[number]
                taken = min(left, item["BETRH"])
                if taken <= 0:
                    break
                item["BETRH"] -= taken
                left -= taken
                lines.append({"OPBEL": number, "Amount": f"{taken:.2f}", "Remaining": f"{item['BETRH']:.2f}"})
            document = f"{self._next_clearing:012d}"
            self._next_clearing += 1
            clearing = {"ClaimKey": key, "AUGBL": document, "Partner": partner, "Amount": f"{amount:.2f}"}
            clearing["Items"] = lines
            self._clearings[key] = clearing
            return 201, copy.deepcopy(clearing)

    def _validate(self, request: dict[str, Any]) -> tuple[str, Decimal, list[str]]:
        """The partner, amount and items of a clearing, or the refusal SAP would give for the first thing wrong."""
        partner, amount_text, items = request.get("Partner"), request.get("Amount"), request.get("Items")
        for name, value in (("Partner", partner), ("Amount", amount_text), ("Items", items)):
            if not value:
                raise RefusalError("00/055", f"Udfyld alle obligatoriske felter ({name})", name)
        if not isinstance(amount_text, str) or not _AMOUNT.fullmatch(amount_text) or Decimal(amount_text) <= 0:
            raise RefusalError("ZOPUS/001", "Beløbet skal være positivt med to decimaler", "Amount")
        if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
            raise RefusalError("/IWBEP/CM_MGW_RT/020", "Egenskaben 'Items' er ugyldig", "Items")
        amount = Decimal(amount_text)
        if partner not in self.partners.values():
            raise RefusalError("ZOPUS/002", "Forretningspartneren findes ikke", "Partner")
        for position, number in enumerate(items, start=1):
            item = self.items.get(number)
            if item is None or item["GPART"] != partner or items.index(number) != position - 1:
                raise RefusalError("ZOPUS/003", f"Post nr. {position} findes ikke for forretningspartneren", "Items")
            if item["BETRH"] <= 0:
                raise RefusalError("ZOPUS/004", f"Post nr. {position} er allerede udlignet", "Items")
            if item["INKGS"] == "X":
                raise RefusalError(
                    "ZOPUS/005",
                    f"Post nr. {position} er overdraget til inddrivelse hos Gældsstyrelsen og kan ikke udlignes",
                    "Items",
                )
        open_total = sum((self.items[number]["BETRH"] for number in items), Decimal(0))
        if amount > open_total:
            raise RefusalError(
                "ZOPUS/006",
                f"Beløbet {_danish(amount)} overstiger posternes åbne beløb {_danish(open_total)}",
                "Amount",
            )
        return partner, amount, items


def _shown(item: dict[str, Any]) -> dict[str, Any]:
    """An item's properties as the service shows them: amounts and dates as SAP's strings."""
    shown = {**item, "BETRH": f"{item['BETRH']:.2f}", "BETRW": f"{item['BETRW']:.2f}"}
    shown["FAEDN"] = item["FAEDN"].strftime("%Y%m%d")
    return shown


class _Handler(SapGatewayHandler):
    """Answers the receivables service, its CSRF handshake and the control endpoints."""

    server: "OpusDebitorServer"
    state: OpusDebitorState
    service_path = SERVICE_PATH
    session_cookie = SESSION_COOKIE
    realm = REALM
    component_id = "FI-CA"
    service_id = "ZOPUS_DEBITOR_SRV"
    unavailable = "Ikke tilgængelig"
    # Headers and body go out in two writes; with Nagle on, the body waits for the client's delayed ACK (40 ms).
    disable_nagle_algorithm = True

    def _service(self, method: str, path: str, params: dict[str, str], body: bytes, headers: dict[str, str]) -> Answer:
        """The receivables service's answer to an authenticated request: (status, body, headers)."""
        if method == "GET" and "$filter" in params and path.lstrip("/") in FILTERABLE:
            return self._filtered(path.lstrip("/"), params, headers)
        if method == "GET" and path in ("/", "/BusinessPartners"):
            return 200, self._read(path, params), headers
        if method == "GET" and path == "/OpenItems":
            return self._open_items(params, headers)
        if method == "POST" and path == "/Clearings":
            return self._csrf_refused() or self._clear(body)
        return 404, self._error_body("/IWBEP/CM_MGW_RT/021", "Ressourcen findes ikke"), {}

    def _read(self, path: str, params: dict[str, str]) -> dict[str, Any]:
        """The service document, or `GET /BusinessPartners`: the partner with the identification, if any."""
        if path == "/":
            return {"d": {"EntitySets": ["BusinessPartners", "OpenItems", "Clearings"]}}
        id_type, number = params.get("id_type", ""), params.get("partner_id", "")
        found = self.state.find_partner(number, id_type)
        return {"d": {"results": [{"GPART": found, "TYPE": id_type, "IDNUMBER": number}] if found else []}}

    def _filtered(self, entity_set: str, params: dict[str, str], headers: dict[str, str]) -> Answer:
        """One page of a `$filter` read of BusinessPartners or OpenItems, with `__next` while more follow."""
        with self.state.lock:
            self.state.filters.append((f"/{entity_set}", params["$filter"]))
        try:
            matches = parse_filter(params["$filter"], FILTERABLE[entity_set])
        except FilterError as error:
            return 400, self._error_body("/IWBEP/CM_MGW_RT/022", f"Ugyldigt filterudtryk: {error}"), {}
        if entity_set == "OpenItems":
            return (
                200,
                {"d": self._page(entity_set, self.state.open_items_matching(matches), params, self._item)},
                headers,
            )
        found = self.state.identifications(matches)
        return 200, {"d": self._page(entity_set, found, params, self._identification)}, headers

    def _identification(self, entity: dict[str, str]) -> dict[str, Any]:
        """A business partner's identification as the service shows it, with OData's `__metadata`."""
        key = f"{entity['GPART']}',TYPE='{entity['TYPE']}"  # a composite key: GPART and TYPE
        return {**self._metadata("BusinessPartners", key, "BusinessPartner"), **entity}

    def _open_items(self, params: dict[str, str], headers: dict[str, str]) -> Answer:
        """One page of `GET /OpenItems`, with `__next` while more follow."""
        try:
            key_date = datetime.strptime(params.get("due_before", ""), "%Y%m%d").date()
        except ValueError:
            return 400, self._error_body("/IWBEP/CM_MGW_RT/022", "due_before skal være en dato (ÅÅÅÅMMDD)"), {}
        found = self.state.open_items(params.get("partner", ""), key_date)
        return 200, {"d": self._page("OpenItems", found, params, self._item)}, headers

    def _item(self, item: dict[str, Any]) -> dict[str, Any]:
        """An item as the service shows it: OData's `__metadata`, amounts and dates as SAP's strings."""
        return {**self._metadata("OpenItems", item["OPBEL"], "OpenItem"), **_shown(item)}

    def _clear(self, body: bytes) -> Answer:
        """`POST /Clearings`: 201 booked, 200 for a claim key seen before, or 400 with the refusal."""
        try:
            request = json.loads(body)
        except ValueError:
            return 400, self._error_body("/IWBEP/CM_MGW_RT/004", "Anmodningens indhold er ikke gyldig JSON"), {}
        try:
            status, clearing = self.state.clear(request)
        except (RefusalError, InvalidOperation) as refusal:
            if isinstance(refusal, InvalidOperation):
                refusal = RefusalError("ZOPUS/001", "Beløbet skal være positivt med to decimaler", "Amount")
            return refusal.status, self._error_body(refusal.code, refusal.message, refusal.target), {}
        entity = {**self._metadata("Clearings", clearing["AUGBL"], "Clearing"), **clearing}
        return status, {"d": entity}, {"Location": entity["__metadata"]["uri"]}

    def _control(self, method: str, path: str, body: bytes) -> None:
        """The `/_control/...` endpoints for devhost users (never logged, no fault applies)."""
        state = self.state
        arguments = json.loads(body or b"{}")
        if method == "GET" and path == "/_control/items":
            with state.lock:
                items = [self._item(item) for _, item in sorted(state.items.items())]
            self.reply(200, items)
            return
        if method == "GET" and path == "/_control/clearings":
            self.reply(200, state.clearings())
            return
        if method != "POST":
            self.reply(405, self._error_body("/IWBEP/CM_MGW_RT/021", "Metoden understøttes ikke"))
            return
        try:
            status, answer = self._command(path, arguments)
        except (KeyError, ValueError, InvalidOperation) as error:
            status, answer = 400, self._error_body("/IWBEP/CM_MGW_RT/020", type(error).__name__)
        self.reply(status, answer)

    def _command(self, path: str, arguments: dict[str, Any]) -> tuple[int, Any]:
        """One `POST /_control/...`: (status, answer)."""
        state = self.state
        if path == "/_control/partners":
            return 201, {"GPART": state.add_partner(str(arguments["id"]), str(arguments.get("id_type", "CPR")))}
        if path == "/_control/items":
            due = date.fromisoformat(str(arguments["due"]))
            partner, amount, collection = (
                str(arguments["partner"]),
                str(arguments["amount"]),
                arguments.get("collection"),
            )
            return 201, {"OPBEL": state.add_item(partner, amount, due, bool(collection))}
        if not self._control_common(path, arguments):
            return 404, self._error_body("/IWBEP/CM_MGW_RT/021", "Ukendt kontrol")
        return 200, {}


class OpusDebitorServer(SapGatewayServer):
    """The simulator on a loopback port, over plain HTTP (Opus sits on the municipality's own network)."""

    service_path = SERVICE_PATH

    def __init__(self, port: int = 0, state: OpusDebitorState | None = None) -> None:
        super().__init__(port, _Handler)
        self.state: OpusDebitorState = state or OpusDebitorState()

    def settings(self) -> dict[str, str]:
        """App settings that point the app's Opus Debitor client here."""
        return {
            "OPUS_DEBITOR_BASE_URL": self.url,
            "OPUS_DEBITOR_USERNAME": self.state.username,
            "OPUS_DEBITOR_PASSWORD": self.state.password,
            "OPUS_DEBITOR_TIMEOUT_SECONDS": "30",
        }
