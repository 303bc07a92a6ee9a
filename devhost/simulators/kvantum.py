"""A Kvantum simulator: KS's SAP-based ERP's vendor master service, SAP Gateway-style JSON over plain HTTP.

The service root is `/sap/opu/kvantum/vendor/v1`; every request needs HTTP basic authentication (401 with
`WWW-Authenticate: Basic realm="SAP NetWeaver Application Server [KVA/100]"` otherwise).

- `GET /` (the service document) or any GET with `X-CSRF-Token: Fetch` answers a CSRF token in the
  `X-CSRF-Token` header and sets the session cookie `SAP_SESSIONID_KVA_100` (an existing session keeps its
  token). Every POST must send both, else `403`, header `X-CSRF-Token: Required`, body `{"error": {"code":
  "CSRF", "message": {"lang": "da", "value": "CSRF token validation failed"}}}`. `expire_csrf()` ends every
  session, as SAP's session timeout does.
- `GET /Vendors?stcd1=<cvr>&p_number=<p>&name=<search term>` (each filter optional, all must hold): `stcd1`
  is STCD1 (CVR), `p_number` the customer field ZZPNR, `name` SAP's search term MCOD1 (NAME1 upper-cased,
  whitespace collapsed, first 25 characters), compared as given: a caller must normalise its name the same
  way; `*` stands for any characters, as in SAP's search help (`BLOMSTERHUSET*`). Answers
  `{"d": {"results": [vendor, ...]}}` in vendor-number order, at most `$top` (default 50) per page, with
  `"__next"` (an absolute link with `$skiptoken`) while there are more. A vendor is
  `{"__metadata", "LIFNR", "NAME1", "NAME2", "STRAS", "PSTLZ", "ORT01", "LAND1", "STCD1", "STCEG", "KTOKK",
  "SPERR" ("" or "X" = blocked), "ZZPNR", "SMTP_ADDR", "LFB1": [{"BUKRS", "AKONT", "ZTERM", "ZWELS"}],
  "LFBK": [{"BANKS", "BANKL", "BANKN", "IBAN", "SWIFT"}]}`.
- `POST /Vendors` with `{"RequestKey", "LFA1": {...}, "LFB1": [...], "LFBK": [...]}` creates a vendor with the
  next number from a counter (`0000200001`, ...) and answers `201 {"d": vendor}` with a `Location`. It is
  **idempotent by RequestKey**: a POST whose key was seen before answers `200` with the vendor created then,
  whatever its body says, and creates nothing - that is how a repeat after a lost answer or a crash gets the
  same vendor. Refusals are `400` with SAP's error body, in this order:
  `00/055` a required field empty (RequestKey, LAND1, LFB1's BUKRS and AKONT, LFBK's BANKS),
  `F2/014` NAME1 empty or longer than 35 characters, `F2/027` KTOKK not an allowed account group
  (`state.account_groups`, by default LEVD, LEVU, LEVP, LEVO), `AD/204` LAND1 DK with a PSTLZ that is not four
  digits, `F2/173` STCEG already on another vendor, `AR/191` an IBAN failing ISO 13616 (country length,
  mod 97), or what `refuse_next(message, code)` asked for. A body the Gateway cannot read (not JSON, unknown
  fields) gets the framework's `/IWBEP/CM_MGW_RT/...` codes. The message numbers are this simulator's,
  modelled on SAP's message classes; the texts are Danish, as for a logon in language DA.

- The chart of accounts, read-only, paged the same way (`$top`, `__next`, in key order), each entity with
  `__metadata`: `GET /GLAccounts` (artskonti, SKB1-like: `{"SAKNR", "BUKRS", "XSPEB"}`, `XSPEB` "X" = blocked
  for posting), `GET /CostCenters` (CSKS-like: `{"KOSTL", "KOKRS", "DATAB", "DATBI", "BKZKP"}`, valid from
  DATAB to DATBI (`YYYYMMDD`, `99991231` = open-ended), `BKZKP` "X" = locked for actual postings) and
  `GET /WBSElements` (PRPS-like: `{"POSID", "STATUS"}`, `STATUS` SAP's system status: `REL` released = open,
  `TECO` technically completed or `CLSD` closed = no postings). SAKNR and KOSTL are numeric and held in
  SAP's internal form, zero-padded to 10 (`0022110000`); POSID is held as given, upper-cased. Nothing is
  seeded by default: `state.add_gl_account(number, open=True)`, `add_cost_center(number, open=True,
  valid_to="99991231")` and `add_wbs_element(code, open=True)` seed it.

Errors: `{"error": {"code": "<class>/<number>", "message": {"lang": "da", "value": ...}, "innererror":
{"application", "transactionid", "timestamp", "Error_Resolution", "errordetails"}}}`.

Faults for tests: `state.inject(kind, count, value, message, endpoint)` for the next `count` reads (any GET)
or creates (POST /Vendors): "429" (Retry-After `value`) and any HTTP status are answered before anything is
done, as SAP's web dispatcher would; "timeout" processes the request and answers only `value` seconds later
- for a create the vendor IS created, and a client that gave up has lost the answer. `slow_seconds` delays
every answer. For devhost users: `GET /_control/vendors`, `POST /_control/reset`, `/_control/vendors` (seed
one, SAP fields), `/_control/fault` `{"kind", "count", "value", "message", "endpoint"}`,
`/_control/refuse_next` `{"message", "code"}`, `/_control/expire_csrf`, `/_control/slow` `{"seconds"}`,
`/_control/gl_accounts` `{"number", "open"}`, `/_control/cost_centers` `{"number", "open", "valid_to"}`,
`/_control/wbs_elements` `{"code", "open"}`.

Quiet: no access log and nothing else logged; vendor numbers are 10 digits, which the tests' personal-data
scan would take for CPR numbers.
"""

import copy
import json
import re
from typing import Any

from devhost.simulators.sap_gateway import (
    PAGE_SIZE,
    Answer,
    RefusalError,
    SapGatewayHandler,
    SapGatewayServer,
    SapGatewayState,
)

SERVICE_PATH = "/sap/opu/kvantum/vendor/v1"
SESSION_COOKIE = "SAP_SESSIONID_KVA_100"
REALM = "SAP NetWeaver Application Server [KVA/100]"
DEFAULT_ACCOUNT_GROUPS = frozenset({"LEVD", "LEVU", "LEVP", "LEVO"})
#: The company code and controlling area the chart of accounts is seeded under.
COMPANY_CODE = "1000"
CONTROLLING_AREA = "1000"
#: SAP's "valid to" of an open-ended record.
OPEN_ENDED = "99991231"
#: The chart of accounts' entity sets: (entity set, key field, entity type), in the service document's order.
CHART_SETS = (
    ("GLAccounts", "SAKNR", "GLAccount"),
    ("CostCenters", "KOSTL", "CostCenter"),
    ("WBSElements", "POSID", "WBSElement"),
)

#: LFA1's fields as the service names them (ZZPNR: the P number, a customer field; SMTP_ADDR: the e-mail).
LFA1_FIELDS = (
    "NAME1",
    "NAME2",
    "STRAS",
    "PSTLZ",
    "ORT01",
    "LAND1",
    "STCD1",
    "STCEG",
    "KTOKK",
    "SPERR",
    "ZZPNR",
    "SMTP_ADDR",
)
LFB1_FIELDS = ("BUKRS", "AKONT", "ZTERM", "ZWELS")
LFBK_FIELDS = ("BANKS", "BANKL", "BANKN", "IBAN", "SWIFT")
#: ISO 13616 IBAN lengths of the countries KS pays to (others are checked by mod 97 and a length of 15-34).
IBAN_LENGTHS = {
    "DK": 18,
    "FO": 18,
    "GL": 18,
    "NO": 15,
    "SE": 24,
    "FI": 18,
    "DE": 22,
    "NL": 18,
    "BE": 16,
    "FR": 27,
    "GB": 22,
    "IE": 22,
    "ES": 24,
    "IT": 27,
    "PL": 28,
    "AT": 20,
    "CH": 21,
    "LU": 20,
    "EE": 20,
    "LT": 20,
    "LV": 21,
    "IS": 26,
}


def search_term(name: str) -> str:
    """SAP's MCOD1 for a NAME1: upper case, whitespace collapsed, the first 25 characters."""
    return " ".join(name.split()).upper()[:25]


def iban_valid(iban: str) -> bool:
    """Whether an IBAN passes ISO 13616: letters-and-digits shape, the country's length, mod 97 = 1."""
    compact = iban.replace(" ", "").upper()
    if not re.fullmatch(r"[A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}", compact):
        return False
    if len(compact) != IBAN_LENGTHS.get(compact[:2], len(compact)):
        return False
    digits = "".join(str(int(char, 36)) for char in compact[4:] + compact[:4])
    return int(digits) % 97 == 1


class KvantumState(SapGatewayState):
    """The simulated Kvantum: credentials, vendors, request keys seen, CSRF sessions, requests and faults."""

    write_endpoint = "create"

    def __init__(
        self,
        username: str = "devhost",
        password: str = "devhost-secret",  # noqa: S107 - the simulator's documented local password
        account_groups: frozenset[str] | set[str] = DEFAULT_ACCOUNT_GROUPS,
        page_size: int = PAGE_SIZE,
    ) -> None:
        self._configured_groups = frozenset(account_groups)  # before the base's reset(), which reads it
        super().__init__(username, password, page_size)

    def reset(self) -> None:
        """Forgets vendors, request keys, sessions, requests, faults, refusals and slowness."""
        with self.lock:
            super().reset()
            self.account_groups: set[str] = set(self._configured_groups)
            self.vendors: dict[str, dict[str, Any]] = {}  # by LIFNR
            self.by_request_key: dict[str, str] = {}  # RequestKey -> LIFNR
            self.refusals: list[tuple[str, str]] = []  # (code, message) for the next creates
            self._created: list[str] = []
            self._next_created = 200001
            self._next_seeded = 100001
            # The chart of accounts, by entity set and then by key (SAKNR, KOSTL, POSID).
            self.chart: dict[str, dict[str, dict[str, str]]] = {name: {} for name, _, _ in CHART_SETS}

    # --- seeding and inspection -------------------------------------------------------------------------------

    def add_vendor(self, **fields: Any) -> dict[str, Any]:
        """Seeds an existing vendor from SAP fields (LIFNR optional, from 0000100001 on); returns a copy of it.

        E.g. `add_vendor(NAME1="Tømrer Hansen ApS", STCD1="12345674", SPERR="X")` for a blocked one, or with
        `STCEG="DK12345674"` for the duplicate VAT number a create is refused on.
        """
        unknown = set(fields) - {"LIFNR", *LFA1_FIELDS, "LFB1", "LFBK"}
        if unknown:
            raise ValueError(f"not vendor fields: {sorted(unknown)}")
        with self.lock:
            if fields.get("LIFNR"):
                number = str(fields["LIFNR"]).zfill(10)
            else:
                number = f"{self._next_seeded:010d}"
                self._next_seeded += 1
            if number in self.vendors:
                raise ValueError("a vendor with this number exists already")
            general = {name: str(fields.get(name, "")) for name in LFA1_FIELDS}
            general["LAND1"] = general["LAND1"] or "DK"
            general["KTOKK"] = general["KTOKK"] or "LEVD"
            default_lfb1 = [{"BUKRS": "1000", "AKONT": "29100000", "ZTERM": "NT30", "ZWELS": "N"}]
            vendor = {
                "LIFNR": number,
                **general,
                "LFB1": _rows(fields.get("LFB1", default_lfb1), LFB1_FIELDS),
                "LFBK": _rows(fields.get("LFBK", []), LFBK_FIELDS),
            }
            self.vendors[number] = vendor
            return copy.deepcopy(vendor)

    def add_gl_account(self, number: str, open: bool = True) -> dict[str, str]:  # noqa: A002 - SAP's word
        """Seeds a GL account (artskonto) in company code 1000, blocked for posting unless `open`; returns it."""
        record = {"SAKNR": _internal(number), "BUKRS": COMPANY_CODE, "XSPEB": "" if open else "X"}
        return self._add_chart("GLAccounts", "SAKNR", record)

    def add_cost_center(
        self,
        number: str,
        open: bool = True,  # noqa: A002 - SAP's word
        valid_to: str = OPEN_ENDED,
    ) -> dict[str, str]:
        """Seeds a cost centre, locked for actual postings unless `open`, valid until `valid_to`; returns it."""
        if not re.fullmatch(r"[0-9]{8}", valid_to):
            raise ValueError("valid_to is a date YYYYMMDD")
        record = {
            "KOSTL": _internal(number),
            "KOKRS": CONTROLLING_AREA,
            "DATAB": "19000101",
            "DATBI": valid_to,
            "BKZKP": "" if open else "X",
        }
        return self._add_chart("CostCenters", "KOSTL", record)

    def add_wbs_element(self, code: str, open: bool = True) -> dict[str, str]:  # noqa: A002 - SAP's word
        """Seeds a WBS element (PSP-element), released (REL) if `open`, else closed (CLSD); returns it."""
        if not code.strip():
            raise ValueError("a WBS element has a code")
        record = {"POSID": code.strip().upper(), "STATUS": "REL" if open else "CLSD"}
        return self._add_chart("WBSElements", "POSID", record)

    def _add_chart(self, entity_set: str, key: str, record: dict[str, str]) -> dict[str, str]:
        """Stores one chart-of-accounts record under its key (replacing an earlier one); returns a copy."""
        with self.lock:
            self.chart[entity_set][record[key]] = record
            return dict(record)

    def chart_records(self, entity_set: str) -> list[dict[str, str]]:
        """The records of one chart-of-accounts entity set, in key order."""
        with self.lock:
            return [dict(record) for _, record in sorted(self.chart[entity_set].items())]

    def created(self) -> list[dict[str, Any]]:
        """The vendors created through the service (not seeded), in creation order, each with its RequestKey."""
        with self.lock:
            keys = {number: key for key, number in self.by_request_key.items()}
            return [{**copy.deepcopy(self.vendors[number]), "RequestKey": keys[number]} for number in self._created]

    # --- behaviour ----------------------------------------------------------------------------------------------

    def refuse_next(self, message: str, code: str = "ZKV/001") -> None:
        """The next create (with a request key not seen before) is refused with this SAP message."""
        with self.lock:
            self.refusals.append((code, message))

    def search(self, params: dict[str, str]) -> list[dict[str, Any]]:
        """The vendors matching a query's filters, in vendor-number order."""
        with self.lock:
            found = [
                vendor
                for number, vendor in sorted(self.vendors.items())
                if ("stcd1" not in params or vendor["STCD1"] == params["stcd1"])
                and ("p_number" not in params or vendor["ZZPNR"] == params["p_number"])
                and ("name" not in params or _pattern(params["name"]).fullmatch(search_term(vendor["NAME1"])))
            ]
            return copy.deepcopy(found)

    def create(self, request: Any) -> tuple[int, dict[str, Any]]:
        """Creates the vendor of a POST body, or finds the one created for its RequestKey: (status, vendor)."""
        if not isinstance(request, dict):
            raise RefusalError("/IWBEP/CM_MGW_RT/004", "Anmodningens indhold kunne ikke læses")
        unknown = set(request) - {"RequestKey", "LFA1", "LFB1", "LFBK"}
        if unknown:
            raise RefusalError("/IWBEP/CM_MGW_RT/020", f"Egenskaben '{sorted(unknown)[0]}' er ugyldig")
        key = request.get("RequestKey")
        if not isinstance(key, str) or not key.strip():
            raise RefusalError("00/055", "Udfyld alle obligatoriske felter (RequestKey)", "RequestKey")
        with self.lock:
            if key in self.by_request_key:  # idempotent: the vendor created for this request the first time
                return 200, copy.deepcopy(self.vendors[self.by_request_key[key]])
            if self.refusals:
                code, message = self.refusals.pop(0)
                raise RefusalError(code, message)
            general = _record(request.get("LFA1"), LFA1_FIELDS, "LFA1")
            company_codes = [_record(row, LFB1_FIELDS, "LFB1") for row in _list(request.get("LFB1"), "LFB1")]
            banks = [_record(row, LFBK_FIELDS, "LFBK") for row in _list(request.get("LFBK"), "LFBK")]
            self._validate(general, company_codes, banks)
            number = f"{self._next_created:010d}"
            self._next_created += 1
            vendor = {"LIFNR": number, **general, "SPERR": "", "LFB1": company_codes, "LFBK": banks}
            self.vendors[number] = vendor
            self.by_request_key[key] = number
            self._created.append(number)
            return 201, copy.deepcopy(vendor)

    def _validate(
        self, general: dict[str, str], company_codes: list[dict[str, str]], banks: list[dict[str, str]]
    ) -> None:
        """Raises the refusal SAP would give for the first thing wrong with a new vendor."""
        name = general["NAME1"].strip()
        if not name or len(general["NAME1"]) > 35:
            raise RefusalError("F2/014", "Navn 1 skal udfyldes og må højst have 35 tegn", "NAME1")
        if not general["LAND1"]:
            raise RefusalError("00/055", "Udfyld alle obligatoriske felter (LAND1)", "LAND1")
        if general["KTOKK"] not in self.account_groups:
            raise RefusalError("F2/027", f"Kontogruppe {general['KTOKK']} er ikke defineret", "KTOKK")
        if general["LAND1"] == "DK" and not re.fullmatch(r"[0-9]{4}", general["PSTLZ"]):
            raise RefusalError(
                "AD/204", f"Postnummer {general['PSTLZ']} er ugyldigt for land DK (skal have 4 cifre)", "PSTLZ"
            )
        vat = general["STCEG"].replace(" ", "").upper()
        if vat:
            for number, vendor in sorted(self.vendors.items()):
                if vendor["STCEG"].replace(" ", "").upper() == vat:
                    raise RefusalError(
                        "F2/173", f"Momsnummer {general['STCEG']} findes allerede på kreditor {number}", "STCEG"
                    )
        for row in company_codes:
            for field in ("BUKRS", "AKONT"):
                if not row[field].strip():
                    raise RefusalError("00/055", f"Udfyld alle obligatoriske felter (LFB1-{field})", f"LFB1/{field}")
        for row in banks:
            if not row["BANKS"].strip():
                raise RefusalError("00/055", "Udfyld alle obligatoriske felter (LFBK-BANKS)", "LFBK/BANKS")
            if row["IBAN"] and not iban_valid(row["IBAN"]):
                raise RefusalError("AR/191", f"IBAN {row['IBAN']} er ugyldig", "LFBK/IBAN")


def _internal(number: str) -> str:
    """A GL account or cost centre number in SAP's internal form: digits zero-padded to 10 (ALPHA conversion)."""
    compact = number.strip().upper()
    if not compact or len(compact) > 10 or not compact.isalnum():
        raise ValueError("a GL account or cost centre number is 1 to 10 letters or digits")
    return compact.zfill(10) if compact.isdigit() else compact


def _pattern(term: str) -> re.Pattern[str]:
    """A search term as SAP's search help takes it: `*` stands for any run of characters, all else is literal."""
    return re.compile(".*".join(re.escape(part) for part in term.split("*")))


def _list(value: Any, entity: str) -> list[Any]:
    """A body's list of rows (absent = none), or the Gateway's refusal of anything else."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise RefusalError("/IWBEP/CM_MGW_RT/004", f"{entity} skal være en liste")
    return value


def _record(value: Any, fields: tuple[str, ...], entity: str) -> dict[str, str]:
    """One row of a body with every field as text (absent = empty), or the Gateway's refusal of a bad one."""
    if not isinstance(value, dict):
        raise RefusalError("/IWBEP/CM_MGW_RT/004", f"{entity} mangler eller kunne ikke læses")
    unknown = set(value) - set(fields)
    if unknown:
        raise RefusalError("/IWBEP/CM_MGW_RT/020", f"Egenskaben '{entity}/{sorted(unknown)[0]}' er ugyldig")
    if any(not isinstance(item, str | int | float) and item is not None for item in value.values()):
        raise RefusalError("/IWBEP/CM_MGW_RT/004", f"{entity} indeholder en værdi, der ikke er tekst")
    return {field: "" if value.get(field) is None else str(value[field]) for field in fields}


def _rows(rows: list[dict[str, Any]], fields: tuple[str, ...]) -> list[dict[str, str]]:
    """Seeded rows with every field as text."""
    return [{field: str(row.get(field, "")) for field in fields} for row in rows]


class _Handler(SapGatewayHandler):
    """Answers the vendor service, its CSRF handshake and the control endpoints."""

    server: "KvantumServer"
    state: KvantumState
    service_path = SERVICE_PATH
    session_cookie = SESSION_COOKIE
    realm = REALM
    component_id = ""
    service_id = "ZKVANTUM_VENDOR_SRV"
    unavailable = "Tjenesten er ikke tilgængelig"

    def _service(self, method: str, path: str, params: dict[str, str], body: bytes, headers: dict[str, str]) -> Answer:
        """The vendor service's answer to an authenticated request: (status, body, headers)."""
        if method == "GET" and path == "/":
            return 200, {"d": {"EntitySets": ["Vendors", *(name for name, _, _ in CHART_SETS)]}}, headers
        if method == "GET" and path == "/Vendors":
            return 200, self._search(params), headers
        if method == "POST" and path == "/Vendors":
            return self._csrf_refused() or self._create(body)
        chart = {f"/{name}": (name, key, entity_type) for name, key, entity_type in CHART_SETS}
        if method == "GET" and path in chart:
            return 200, self._chart_page(*chart[path], params), headers
        return (
            405 if path == "/Vendors" or path in chart else 404,
            self._error_body("/IWBEP/CM_MGW_RT/021", "Ressourcen findes ikke"),
            {},
        )

    def _search(self, params: dict[str, str]) -> dict[str, Any]:
        """One page of `GET /Vendors`, with `__next` while more follow."""
        found = self.state.search({k: v for k, v in params.items() if k in ("stcd1", "p_number", "name")})
        return {"d": self._page("Vendors", found, params, self._entity)}

    def _create(self, body: bytes) -> Answer:
        """`POST /Vendors`: 201 created, 200 for a request key seen before, or 400 with the refusal."""
        try:
            request = json.loads(body)
        except ValueError:
            return 400, self._error_body("/IWBEP/CM_MGW_RT/004", "Anmodningens indhold er ikke gyldig JSON"), {}
        try:
            status, vendor = self.state.create(request)
        except RefusalError as refusal:
            return refusal.status, self._error_body(refusal.code, refusal.message, refusal.target), {}
        entity = self._entity(vendor)
        return status, {"d": entity}, {"Location": entity["__metadata"]["uri"]}

    def _chart_page(self, entity_set: str, key: str, entity_type: str, params: dict[str, str]) -> dict[str, Any]:
        """One page of a chart-of-accounts entity set, with `__next` while more follow."""

        def show(record: dict[str, str]) -> dict[str, Any]:
            """A record as the service shows it, with OData's `__metadata`."""
            return {**self._metadata(entity_set, record[key], entity_type), **record}

        return {"d": self._page(entity_set, self.state.chart_records(entity_set), params, show)}

    def _entity(self, vendor: dict[str, Any]) -> dict[str, Any]:
        """A vendor as the service shows it, with OData's `__metadata`."""
        return {**self._metadata("Vendors", vendor["LIFNR"], "Vendor"), **vendor}

    def _control(self, method: str, path: str, body: bytes) -> None:
        """The `/_control/...` endpoints for devhost users (never logged, no fault applies)."""
        state = self.state
        arguments = json.loads(body or b"{}")
        if method == "GET" and path == "/_control/vendors":
            with state.lock:
                vendors = [copy.deepcopy(v) for _, v in sorted(state.vendors.items())]
            self.reply(200, vendors)
            return
        if method != "POST":
            self.reply(405, self._error_body("/IWBEP/CM_MGW_RT/021", "Metoden understøttes ikke"))
            return
        if path == "/_control/vendors":
            try:
                self.reply(201, state.add_vendor(**arguments))
            except ValueError as error:
                self.reply(400, self._error_body("/IWBEP/CM_MGW_RT/020", str(error)))
            return
        seeders = {
            "/_control/gl_accounts": lambda: state.add_gl_account(
                str(arguments["number"]), bool(arguments.get("open", True))
            ),
            "/_control/cost_centers": lambda: state.add_cost_center(
                str(arguments["number"]),
                bool(arguments.get("open", True)),
                str(arguments.get("valid_to", OPEN_ENDED)),
            ),
            "/_control/wbs_elements": lambda: state.add_wbs_element(
                str(arguments["code"]), bool(arguments.get("open", True))
            ),
        }
        if path in seeders:
            try:
                self.reply(201, seeders[path]())
            except (KeyError, ValueError) as error:
                self.reply(400, self._error_body("/IWBEP/CM_MGW_RT/020", str(error)))
            return
        if path == "/_control/refuse_next":
            state.refuse_next(str(arguments["message"]), str(arguments.get("code", "ZKV/001")))
        elif not self._control_common(path, arguments):
            self.reply(404, self._error_body("/IWBEP/CM_MGW_RT/021", "Ukendt kontrol"))
            return
        self.reply(200, {})


class KvantumServer(SapGatewayServer):
    """The simulator on a loopback port, over plain HTTP (Kvantum sits on the municipality's own network)."""

    service_path = SERVICE_PATH

    def __init__(self, port: int = 0, state: KvantumState | None = None) -> None:
        super().__init__(port, _Handler)
        self.state: KvantumState = state or KvantumState()

    def settings(self) -> dict[str, str]:
        """App settings that point the app's Kvantum client here."""
        return {
            "KVANTUM_BASE_URL": self.url,
            "KVANTUM_USERNAME": self.state.username,
            "KVANTUM_PASSWORD": self.state.password,
        }
