"""Kvantum (KS's SAP-based ERP): the vendor master service, an SAP Gateway-style JSON API.

The protocol, as `devhost.simulators.kvantum` serves it:

- Service root `/sap/opu/kvantum/vendor/v1` under `KVANTUM_BASE_URL` (the client adds it unless the URL already
  ends with it). HTTP basic authentication on every request.
- `GET /Vendors?stcd1=<cvr>[&p_number=<p>]` and `GET /Vendors?name=<search term>` answer
  `{"d": {"results": [vendor, ...], "__next": "<link>"}}`. A vendor carries LFA1's fields (`LIFNR`, `NAME1`,
  `NAME2`, `STRAS`, `PSTLZ`, `ORT01`, `LAND1`, `STCD1` = CVR, `STCEG` = VAT number, `KTOKK` account group,
  `SPERR` "X" = blocked, the customer field `ZZPNR` = P number) with its company codes `LFB1` and banks
  `LFBK`. `name` is matched against SAP's search term MCOD1: NAME1 upper-cased, spaces collapsed, at most 25
  characters; the client normalises the name the same way, and `*` is SAP's wildcard (a prefix search sends
  `TERM*`). The service sends at most `$top` (50) per page and a `__next` link while there are more; the
  client follows it (its path and query only, on the configured host, so credentials never go elsewhere).
- `POST /Vendors` with `{"RequestKey", "LFA1", "LFB1", "LFBK"}` answers `201 {"d": vendor}`. It is
  **idempotent by RequestKey** (the ServiceNow request number): a second POST with a key Kvantum has seen
  answers `200` with the vendor created the first time and creates nothing. So when a create times out (the
  answer lost, the vendor perhaps created), the caller's retry with the same request key is safe: it gets the
  same vendor number, never a second vendor.
- SAP's CSRF protection: a POST must carry the token from a `GET` with `X-CSRF-Token: Fetch` (answered in the
  `X-CSRF-Token` header, with an `SAP_SESSIONID_...` cookie the requests session keeps). The token is
  fetched on the first create and cached; a `403` with `X-CSRF-Token: Required` (the session expired) fetches
  a fresh one and repeats the POST once, which is safe because SAP refuses before processing anything.
- Errors are SAP Gateway's: `{"error": {"code": "<message class>/<number>", "message": {"lang": "da",
  "value": "..."}, "innererror": {...}}}`. A `400` to a create with an application message (`F2/173`
  "Momsnummer ... findes allerede på kreditor ...", `AD/204`, ...) is Kvantum refusing the record:
  `KvantumRefusalError`, for a person to act on. Everything else (outage, 5xx, timeout, 401, the Gateway
  framework's own `/IWBEP/...` errors, CSRF still refused) is technical: `KvantumError`.

- The chart of accounts, read-only and paged like the vendors: `GET /GLAccounts` (`SAKNR`, `XSPEB` "X" =
  blocked for posting), `GET /CostCenters` (`KOSTL`, `BKZKP` "X" = locked, valid `DATAB` to `DATBI`,
  `YYYYMMDD`) and `GET /WBSElements` (`POSID`, `STATUS` `REL` = released; `TECO`, `CLSD` and anything else take
  no postings). `chart_of_accounts()` reads every page of the three and keeps the OPEN numbers only, in SAP's
  external form (a numeric SAKNR or KOSTL without its leading zeros, so `22110000` and `0022110000` are the
  same account; a POSID upper-cased). A claim's account assignment is then checked with
  `ChartOfAccounts.refusal(...)`, which gives the reason code and Danish text of the first thing closed.

Retries follow `shared.connectors.http`: reads are retried on 429, 5xx and timeouts; a create only on 429 or
when it never connected. A 401 is reported at once rather than repeated: the password cannot have changed in
between, and every failed logon counts towards SAP locking the integration user.
Exception texts are redacted; note that a vendor number (10 digits) is CPR-shaped and is redacted with them.
"""

import re
from datetime import date, datetime
from functools import cache
from typing import Any

from pydantic import ConfigDict, Field, ValidationError

from shared.config import DANISH_TIME
from shared.connectors.sap_gateway import SapGatewayClient
from shared.logs import get_logger
from shared.models import BoundaryModel
from shared.personal_data import redact
from shared.settings import get_settings

SERVICE_PATH = "/sap/opu/kvantum/vendor/v1"
#: Length of SAP's search term MCOD1 (LFA1-MCOD1 is CHAR 25).
SEARCH_TERM_LENGTH = 25
_log = get_logger("ks.connectors.kvantum")


class KvantumError(Exception):
    """Kvantum failed technically (outage, 5xx, timeout, authentication, CSRF) or retries ran out."""

    def __init__(self, status: int | None, message: str) -> None:
        super().__init__(redact(f"Kvantum {status}: {message}"))
        self.status = status


#: A vendor number in its ten-digit internal form (SAP pads with zeros; no CPR number starts with day 00).
_PADDED_VENDOR_NUMBER = re.compile(r"(?<![0-9])000+([1-9][0-9]{0,6})(?![0-9])")


def unpad_vendor_numbers(text: str) -> str:
    """Vendor numbers in a message as SAP shows them (no leading zeros), so redaction does not mask them."""
    return _PADDED_VENDOR_NUMBER.sub(r"\1", text)


class KvantumRefusalError(Exception):
    """Kvantum refused the vendor record with an SAP message: a person must act on it, a retry will not help."""

    def __init__(self, code: str, message: str) -> None:
        message = unpad_vendor_numbers(message)
        super().__init__(redact(f"Kvantum afviste kreditoren ({code}): {message}"))
        self.code = code
        self.message = redact(message)


# --- models ---------------------------------------------------------------------------------------------------


class Vendor(BoundaryModel):
    """A vendor as Kvantum has it (the LFA1 fields the automations decide on)."""

    vendor_number: str = Field(min_length=1)
    name: str
    cvr: str | None = None
    p_number: str | None = None
    vat_number: str | None = None
    account_group: str
    blocked: bool
    postal_code: str
    city: str
    country: str

    @classmethod
    def from_sap(cls, record: dict[str, Any]) -> "Vendor":
        """A vendor from the service's JSON (SAP's field names; empty strings mean "not set")."""
        text = {key: str(value or "") for key, value in record.items() if not isinstance(value, list | dict)}
        return cls(
            vendor_number=text.get("LIFNR", ""),
            name=text.get("NAME1", ""),
            cvr=text.get("STCD1") or None,
            p_number=text.get("ZZPNR") or None,
            vat_number=text.get("STCEG") or None,
            account_group=text.get("KTOKK", ""),
            blocked=text.get("SPERR", "").strip().upper() == "X",
            postal_code=text.get("PSTLZ", ""),
            city=text.get("ORT01", ""),
            country=text.get("LAND1", ""),
        )


class _SapModel(BoundaryModel):
    """A part of a new vendor: Python names in code, SAP's field names (the aliases) on the wire."""

    model_config = ConfigDict(validate_by_name=True, validate_by_alias=True)

    def to_sap(self) -> dict[str, str]:
        """SAP's fields; SAP has no nulls, so an unset field is an empty string."""
        return {key: "" if value is None else value for key, value in self.model_dump(by_alias=True).items()}


class VendorGeneral(_SapModel):
    """General data (LFA1). Kvantum validates the values; the model only fixes the shape."""

    name: str = Field(alias="NAME1")
    name2: str | None = Field(default=None, alias="NAME2")
    street: str | None = Field(default=None, alias="STRAS")
    postal_code: str | None = Field(default=None, alias="PSTLZ")
    city: str | None = Field(default=None, alias="ORT01")
    country: str = Field(default="DK", alias="LAND1")
    cvr: str | None = Field(default=None, alias="STCD1")
    vat_number: str | None = Field(default=None, alias="STCEG")
    account_group: str = Field(alias="KTOKK")
    p_number: str | None = Field(default=None, alias="ZZPNR")
    email: str | None = Field(default=None, alias="SMTP_ADDR")


class VendorCompanyCode(_SapModel):
    """Company code data (LFB1)."""

    company_code: str = Field(alias="BUKRS")
    reconciliation_account: str = Field(alias="AKONT")
    payment_terms: str | None = Field(default=None, alias="ZTERM")
    payment_methods: str | None = Field(default=None, alias="ZWELS")


class VendorBank(_SapModel):
    """Bank details (LFBK); a foreign payee's IBAN and SWIFT/BIC."""

    bank_country: str = Field(alias="BANKS")
    bank_key: str | None = Field(default=None, alias="BANKL")
    account_number: str | None = Field(default=None, alias="BANKN")
    iban: str | None = Field(default=None, alias="IBAN")
    swift: str | None = Field(default=None, alias="SWIFT")


class NewVendor(BoundaryModel):
    """A vendor to create, keyed by the request that asked for it (the idempotency key at Kvantum)."""

    request_key: str = Field(min_length=1)
    general: VendorGeneral
    company_codes: list[VendorCompanyCode] = Field(default_factory=list)
    banks: list[VendorBank] = Field(default_factory=list)

    def to_sap(self) -> dict[str, Any]:
        """The body of `POST /Vendors`."""
        return {
            "RequestKey": self.request_key,
            "LFA1": self.general.to_sap(),
            "LFB1": [company_code.to_sap() for company_code in self.company_codes],
            "LFBK": [bank.to_sap() for bank in self.banks],
        }


def sap_number(value: str) -> str:
    """A GL account, cost centre or WBS element as compared: trimmed, upper-cased, a number without leading zeros."""
    compact = value.strip().upper()
    # SAP's ALPHA conversion: internally a numeric key is zero-padded to 10; people write it without the zeros.
    return (compact.lstrip("0") or "0") if compact.isdigit() else compact


#: Reason codes and Danish texts of an account assignment Kvantum will not post to. No numbers in the texts:
#: a cost centre is ten digits, which is CPR-shaped; the code says which field, the claim holds the number.
GL_ACCOUNT_CLOSED = ("ARTSKONTO_LUKKET", "Artskontoen findes ikke eller er spærret for bogføring i Kvantum.")
COST_CENTER_CLOSED = ("OMKOSTNINGSSTED_LUKKET", "Omkostningsstedet findes ikke eller er lukket i Kvantum.")
WBS_ELEMENT_CLOSED = ("PSP_ELEMENT_LUKKET", "PSP-elementet findes ikke eller er lukket i Kvantum.")


class ChartOfAccounts(BoundaryModel):
    """The GL accounts, cost centres and WBS elements Kvantum takes postings on (open ones only)."""

    gl_accounts: frozenset[str]
    cost_centers: frozenset[str]
    wbs_elements: frozenset[str]

    def refusal(
        self, gl_account: str, cost_center: str | None = None, wbs_element: str | None = None
    ) -> tuple[str, str] | None:
        """(Reason code, Danish text) of the first of GL account, cost centre, WBS element not open; else None.

        An empty or absent cost centre or WBS element is not checked (a claim names one of them).
        """
        if sap_number(gl_account) not in self.gl_accounts:
            return GL_ACCOUNT_CLOSED
        if cost_center and cost_center.strip() and sap_number(cost_center) not in self.cost_centers:
            return COST_CENTER_CLOSED
        if wbs_element and wbs_element.strip() and sap_number(wbs_element) not in self.wbs_elements:
            return WBS_ELEMENT_CLOSED
        return None


def search_term(name: str) -> str:
    """SAP's search term (MCOD1) for a name: upper case, runs of whitespace as one space, at most 25 characters."""
    return " ".join(name.split()).upper()[:SEARCH_TERM_LENGTH]


# --- the client -----------------------------------------------------------------------------------------------


class KvantumClient(SapGatewayClient):
    """The vendor master service of one Kvantum system, safe to share between threads."""

    service_path = SERVICE_PATH
    service_noun = "the vendor service"
    retry_name = "Kvantum"
    error = KvantumError
    refusal = KvantumRefusalError

    # --- reads ----------------------------------------------------------------------------------------------

    def find_by_cvr(self, cvr: str, p_number: str | None = None) -> list[Vendor]:
        """Every vendor (blocked ones too) with this CVR number, and this P number when one is given."""
        if not cvr.strip():  # an empty STCD1 would match every vendor without a CVR number (foreign ones)
            raise ValueError("A CVR number to search for is required.")
        params = {"stcd1": cvr.strip()}
        if p_number:
            params["p_number"] = p_number.strip()
        return self._vendors(params)

    def find_by_name(self, name: str, *, prefix: bool = False) -> list[Vendor]:
        """Every vendor whose search term (MCOD1) equals the name's, or starts with it when `prefix` is set.

        The name is normalised as SAP makes MCOD1 (case, spacing, 25 characters). A prefix search finds a
        company under another form suffix too: "Blomsterhuset" finds "Blomsterhuset ApS" and "... A/S".
        """
        # A name's own `*` would be SAP's wildcard: it goes, and a prefix search adds one at the end.
        term = search_term(name.replace("*", " "))
        if not term:
            raise ValueError("A name to search for is required.")
        return self._vendors({"name": f"{term}*" if prefix else term})

    def _vendors(self, params: dict[str, str]) -> list[Vendor]:
        """The vendors of a query, every page collected by following `__next`."""
        return [_vendor(record) for record in self._results("/Vendors", list(params.items()))]

    def chart_of_accounts(self, today: date | None = None) -> ChartOfAccounts:
        """The open GL accounts, cost centres (valid `today`, Danish date by default) and WBS elements, every page."""
        day = (today or datetime.now(DANISH_TIME).date()).strftime("%Y%m%d")
        gl_accounts = {
            sap_number(record["SAKNR"])
            for record in self._chart("/GLAccounts", "SAKNR")
            if str(record.get("XSPEB") or "").strip().upper() != "X"
        }
        cost_centers = {
            sap_number(record["KOSTL"])
            for record in self._chart("/CostCenters", "KOSTL")
            if str(record.get("BKZKP") or "").strip().upper() != "X"
            # A missing DATAB is "always", a missing DATBI open-ended; YYYYMMDD strings compare as dates.
            and str(record.get("DATAB") or "00000000") <= day <= str(record.get("DATBI") or "99991231")
        }
        wbs_elements = {
            sap_number(record["POSID"])
            for record in self._chart("/WBSElements", "POSID")
            if str(record.get("STATUS") or "").strip().upper() == "REL"
        }
        return ChartOfAccounts(
            gl_accounts=frozenset(gl_accounts),
            cost_centers=frozenset(cost_centers),
            wbs_elements=frozenset(wbs_elements),
        )

    def _chart(self, path: str, key: str) -> list[dict[str, Any]]:
        """Every record of a chart-of-accounts entity set, each an object with a non-empty key."""
        records = self._results(path, [])
        for record in records:
            if not isinstance(record, dict) or not str(record.get(key) or "").strip():
                raise KvantumError(200, f"GET {path}: a record in the answer has no {key}")
        return records

    # --- create ---------------------------------------------------------------------------------------------

    def create(self, vendor: NewVendor) -> Vendor:
        """Creates the vendor, or returns the one Kvantum already created for this request key.

        Raises `KvantumRefusalError` when Kvantum refuses the record and `KvantumError` on a technical failure.
        After a `KvantumError` without a status (a timeout: the vendor may have been created) calling again with
        the same request key is safe: Kvantum answers with the vendor it created, and creates no second one.
        """
        response = self._post("/Vendors", vendor.to_sap())
        try:
            created = _vendor(self._json(response)["d"])
        except KeyError:
            raise KvantumError(response.status_code, "POST /Vendors: the answer has no d") from None
        # No vendor number in the log: it is 10 digits, which the personal-data scan takes for a CPR number.
        if response.status_code == 201:
            _log.info("Kvantum created the vendor")
        else:
            _log.info("Kvantum already had the vendor of this request key (%d)", response.status_code)
        return created


def _vendor(record: Any) -> Vendor:
    """A vendor from one record of an answer, or a technical error when the record is not one."""
    if not isinstance(record, dict):
        raise KvantumError(200, "a vendor in the answer is not an object")
    try:
        return Vendor.from_sap(record)
    except ValidationError:
        raise KvantumError(200, "a vendor in the answer has no vendor number") from None


@cache
def kvantum_client() -> KvantumClient:
    """The app's Kvantum client, built on first use from settings."""
    settings = get_settings()
    if not (settings.kvantum_base_url and settings.kvantum_username and settings.kvantum_password):
        raise RuntimeError("Kvantum-indstillingerne mangler (KVANTUM_BASE_URL, KVANTUM_USERNAME, KVANTUM_PASSWORD).")
    return KvantumClient(
        settings.kvantum_base_url,
        settings.kvantum_username,
        settings.kvantum_password.get_secret_value(),
        timeout=settings.kvantum_timeout_seconds,
    )
