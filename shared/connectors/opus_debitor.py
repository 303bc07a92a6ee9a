"""Opus Debitor (KS's receivables, SAP FI-CA): business partners, their open items, and clearings that offset them.

The protocol, as `devhost.simulators.opus_debitor` serves it:

- Service root `/sap/opu/odata/opus/debitor/v1` under `OPUS_DEBITOR_BASE_URL` (the client adds it unless the URL
  already ends with it). HTTP basic authentication on every request.
- `GET /BusinessPartners?partner_id=<id>&id_type=<CPR|CVR|SE|P>` answers `{"d": {"results": [partner]}}` with
  the business partner (`GPART`, ten digits) registered under that identification, or no result.
- `GET /OpenItems?partner=<GPART>&due_before=<YYYYMMDD>` answers the partner's open items due **on or before**
  that key date (SAP's "Stichtag", FAEDN <= key date), in pages of `$top` with a `__next` link while there are
  more. An item carries `OPBEL` (document number, 12 digits), `GPART`, `BETRH` (open amount, dot decimal
  string), `WAERS`, `FAEDN` (due date, YYYYMMDD), `HVORG`/`TVORG` (main and sub transaction) and `INKGS`
  ("X" when the item is with the debt-collection agency, Gældsstyrelsen).
- `debts(payees, due_before)` reads many payees' debts in two OData v2 `$filter` reads per `FILTER_BATCH` (50)
  distinct identifications, instead of two requests per payee (a chunk of 500 claims must validate at 1000 a
  second). First `GET /BusinessPartners?$filter=(TYPE eq 'CPR' and IDNUMBER eq '...') or (...)`, on the
  identification entity's own properties (BUT0ID's TYPE and IDNUMBER), which answers one
  `{"GPART", "TYPE", "IDNUMBER"}` per identification found; then, for the partners found,
  `GET /OpenItems?$filter=(GPART eq '...' or GPART eq '...') and FAEDN le 'YYYYMMDD'` (FAEDN is shown as an
  ABAP date string, so the string comparison orders dates). Both follow `__next` like every read. OData v2 has
  no `in` operator and SAP Gateway no filter inside `$expand`, hence two `or` chains; 50 identifications keep
  the URL near 3 KB, well inside what SAP's ICM accepts. A service that ignored the filter would answer other
  partners' items: every result is checked against what was asked for (partner, key date, no document twice)
  and anything else is an `OpusDebitorError`, never a wrong debt.
- `POST /Clearings` with `{"ClaimKey", "Partner", "Amount", "Items": [OPBEL, ...]}` books a clearing (an offset)
  that reduces those items in the order given, and answers `201 {"d": clearing}`. It is **idempotent by
  ClaimKey**: a repeat answers `200` with the clearing booked the first time and books nothing. So when a
  clearing times out (the answer lost, the clearing perhaps booked), calling again with the same claim key is
  safe. A refusal (amount above the items' open amount, an item already cleared or unknown, an item with the
  collection agency) is a `400` with an SAP message: `OpusDebitorRefusalError`, for a person to act on.
- SAP's CSRF protection for the POST, as for Kvantum: a token from a `GET` with `X-CSRF-Token: Fetch`, cached;
  a `403` with `X-CSRF-Token: Required` fetches a fresh one and repeats the POST once.

Retries follow `shared.connectors.http`: reads are retried on 429, 5xx and timeouts; a clearing only on 429 or
when it never connected. A 401 is reported at once (every failed logon counts towards SAP locking the user).

Personal data: a CPR number travels only as a query parameter to the service (also inside `$filter`, where
the app's telemetry redacts URLs) and is never put in a log line or a message; the messages name the path,
never the query.
Exception texts are redacted (CPR-shaped numbers, so also the ten-digit GPART) and a document number - twelve
digits, which `redact` does not catch - is masked as well; the models keep document and partner numbers out
of their `repr`, so logging a model leaks neither.
"""

import re
from collections.abc import Iterable, Iterator
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from functools import cache
from typing import Any

from pydantic import Field, ValidationError, model_validator

from shared.connectors.sap_gateway import SapGatewayClient
from shared.logs import get_logger
from shared.models import BoundaryModel
from shared.personal_data import redact
from shared.settings import get_settings

SERVICE_PATH = "/sap/opu/odata/opus/debitor/v1"
ID_TYPES = frozenset({"CPR", "CVR", "SE", "P"})
#: Identifications (and so partners) per `$filter` in `debts`: an `or` chain this long stays a short URL.
FILTER_BATCH = 50
#: A run of 11 or more digits: a document number (OPBEL, AUGBL: 12) or longer; CPR-shaped ones `redact` handles.
_LONG_DIGIT_RUN = re.compile(r"(?<![0-9])[0-9]{11,}(?![0-9])")
_DOCUMENT_NUMBER = re.compile(r"[0-9]{1,12}")
_log = get_logger("ks.connectors.opus_debitor")


def mask(text: str) -> str:
    """Text fit for an exception or a log: CPR-shaped numbers and document numbers (long digit runs) masked."""
    return _LONG_DIGIT_RUN.sub("[BILAG]", redact(text))


class OpusDebitorError(Exception):
    """Opus Debitor failed technically (outage, 5xx, timeout, authentication, CSRF) or retries ran out."""

    def __init__(self, status: int | None, message: str) -> None:
        super().__init__(mask(f"Opus Debitor {status}: {message}"))
        self.status = status


class OpusDebitorRefusalError(Exception):
    """Opus Debitor refused the clearing with an SAP message: a person must act on it, a retry will not help."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(mask(f"Opus Debitor afviste udligningen ({code}): {message}"))
        self.code = code
        self.message = mask(message)


# --- models ---------------------------------------------------------------------------------------------------


class OpenItem(BoundaryModel):
    """An open item (FI-CA DFKKOP) of a business partner: what the partner owes and whether it is in collection."""

    document_number: str = Field(pattern=r"^[0-9]{1,12}$", repr=False)
    partner: str = Field(min_length=1, repr=False)
    amount: Decimal
    currency: str = "DKK"
    due_date: date
    main_transaction: str
    sub_transaction: str
    with_collection_agency: bool

    @classmethod
    def from_sap(cls, record: dict[str, Any]) -> "OpenItem":
        """An item from the service's JSON (SAP's field names)."""
        return cls(
            document_number=str(record.get("OPBEL") or ""),
            partner=str(record.get("GPART") or ""),
            amount=_decimal(record.get("BETRH")),
            currency=str(record.get("WAERS") or "DKK"),
            due_date=_sap_date(record.get("FAEDN")),
            main_transaction=str(record.get("HVORG") or ""),
            sub_transaction=str(record.get("TVORG") or ""),
            with_collection_agency=str(record.get("INKGS") or "").strip().upper() == "X",
        )


class PayeeDebt(BoundaryModel):
    """What one payee owes: its business partner (None: not a partner, so no debt) and its open due items."""

    partner: str | None = Field(default=None, repr=False)
    items: list[OpenItem] = Field(default_factory=list)

    @model_validator(mode="after")
    def _items_need_a_partner(self) -> "PayeeDebt":
        """Refuses items without a partner: only a business partner can owe anything."""
        if self.partner is None and self.items:
            raise ValueError("items without a business partner")
        return self

    @property
    def open_due_total(self) -> Decimal:
        """The sum of the open amounts of the items due on or before the key date."""
        return sum((item.amount for item in self.items), Decimal("0.00"))

    @property
    def with_collection_agency(self) -> bool:
        """Whether any of the items is with the debt-collection agency (Gældsstyrelsen)."""
        return any(item.with_collection_agency for item in self.items)


class ClearedItem(BoundaryModel):
    """How much of one open item a clearing offset, and what stays open of it."""

    document_number: str = Field(repr=False)
    amount: Decimal
    remaining: Decimal


class Clearing(BoundaryModel):
    """A clearing (offset) booked in Opus Debitor for a claim; `repeated` when it was booked by an earlier call."""

    claim_key: str
    clearing_document: str = Field(repr=False)
    partner: str = Field(repr=False)
    amount: Decimal
    items: list[ClearedItem]
    repeated: bool = False

    @classmethod
    def from_sap(cls, record: dict[str, Any], *, repeated: bool) -> "Clearing":
        """A clearing from the service's JSON."""
        items = record.get("Items") if isinstance(record.get("Items"), list) else []
        return cls(
            claim_key=str(record.get("ClaimKey") or ""),
            clearing_document=str(record.get("AUGBL") or ""),
            partner=str(record.get("Partner") or ""),
            amount=_decimal(record.get("Amount")),
            items=[
                ClearedItem(
                    document_number=str(item.get("OPBEL") or ""),
                    amount=_decimal(item.get("Amount")),
                    remaining=_decimal(item.get("Remaining")),
                )
                for item in items
                if isinstance(item, dict)
            ],
            repeated=repeated,
        )


def _decimal(value: Any) -> Decimal:
    """A dot-decimal amount string as a Decimal (ValueError when it is none)."""
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise ValueError("not an amount") from None
    if not amount.is_finite():
        raise ValueError("not an amount")
    return amount


def _sap_date(value: Any) -> date:
    """An ABAP date (YYYYMMDD) as a date."""
    return datetime.strptime(str(value or ""), "%Y%m%d").date()


def _identification(id_type: str, partner_id: str) -> tuple[str, str]:
    """An identification as the service keys it: (CPR/CVR/SE/P, digits); ValueError never echoing the id."""
    if not isinstance(id_type, str) or id_type.strip().upper() not in ID_TYPES:
        raise ValueError(f"Unknown id type; expected one of {sorted(ID_TYPES)}.")
    if not isinstance(partner_id, str):
        raise ValueError("A partner id of digits is required.")
    partner_id = partner_id.strip()
    if not partner_id.isascii() or not partner_id.isdigit():
        raise ValueError("A partner id of digits is required.")  # never echoes the id: it may be a CPR
    return id_type.strip().upper(), partner_id


def _literal(value: str) -> str:
    """An OData string literal: quoted, a quote inside doubled."""
    return "'" + value.replace("'", "''") + "'"


def _batches(values: list[tuple[str, str]], size: int) -> Iterator[list[tuple[str, str]]]:
    """The values in consecutive lists of at most `size`."""
    for start in range(0, len(values), max(1, size)):
        yield values[start : start + max(1, size)]


def _amount_text(amount: Decimal) -> str:
    """An amount as the service takes it: positive, dot decimal, two places (ValueError otherwise)."""
    if not isinstance(amount, Decimal) or not amount.is_finite() or amount <= 0:
        raise ValueError("The amount to clear must be a positive Decimal.")
    if amount != amount.quantize(Decimal("0.01")):
        raise ValueError("The amount to clear has more than two decimals.")
    return f"{amount:.2f}"


# --- the client -----------------------------------------------------------------------------------------------


class OpusDebitorClient(SapGatewayClient):
    """The receivables service of one Opus Debitor system, safe to share between threads."""

    service_path = SERVICE_PATH
    service_noun = "the receivables service"
    retry_name = "Opus_Debitor"
    error = OpusDebitorError
    refusal = OpusDebitorRefusalError
    #: Identifications per `$filter` in `debts`; an instance may lower it.
    filter_batch: int = FILTER_BATCH

    # --- reads ----------------------------------------------------------------------------------------------

    def partner(self, partner_id: str, id_type: str) -> str | None:
        """The business partner number (GPART) registered under this CPR/CVR/SE/P number, or None."""
        id_type, partner_id = _identification(id_type, partner_id)
        records = self._results("/BusinessPartners", [("partner_id", partner_id), ("id_type", id_type)])
        numbers = {str(record.get("GPART") or "") for record in records if isinstance(record, dict)}
        numbers.discard("")
        if len(numbers) > 1:
            raise OpusDebitorError(200, f"{len(numbers)} business partners have this identification")
        return numbers.pop() if numbers else None

    def open_due_items(self, partner: str, due_before: date) -> list[OpenItem]:
        """The partner's open items due on or before `due_before` (the key date), every page read."""
        if not partner.strip():
            raise ValueError("A business partner is required.")
        query = [("partner", partner.strip()), ("due_before", due_before.strftime("%Y%m%d"))]
        items = []
        for record in self._results("/OpenItems", query):
            try:
                items.append(OpenItem.from_sap(record if isinstance(record, dict) else {}))
            except (ValidationError, ValueError):
                raise OpusDebitorError(200, "an open item in the answer is malformed") from None
        return items

    def debts(self, payees: Iterable[tuple[str, str]], due_before: date) -> dict[tuple[str, str], PayeeDebt]:
        """Each payee's partner and open items due on or before `due_before`, keyed by (id type, id) as given.

        Every payee is checked before any request (ValueError, never echoing an id); a technical failure or an
        answer that does not match the request raises `OpusDebitorError` for the whole call.
        """
        if not isinstance(due_before, date):
            raise TypeError("due_before must be a date.")
        given: dict[tuple[str, str], tuple[str, str]] = {}  # as given -> as the service keys it
        for payee in payees:
            if not isinstance(payee, tuple) or len(payee) != 2:
                raise ValueError("A payee is a pair (id type, id).")
            given[payee] = _identification(*payee)
        found: dict[tuple[str, str], PayeeDebt] = {}
        for batch in _batches(list(dict.fromkeys(given.values())), self.filter_batch):
            found |= self._debts(batch, due_before)
        return {payee: found[identification] for payee, identification in given.items()}

    def _debts(self, identifications: list[tuple[str, str]], due_before: date) -> dict[tuple[str, str], PayeeDebt]:
        """The debts of up to one batch of identifications: one partners read, one items read (pages aside)."""
        expression = " or ".join(
            f"(TYPE eq {_literal(id_type)} and IDNUMBER eq {_literal(number)})" for id_type, number in identifications
        )
        partners: dict[tuple[str, str], set[str]] = {identification: set() for identification in identifications}
        for answered in self._results("/BusinessPartners", [("$filter", expression)]):
            record = answered if isinstance(answered, dict) else {}
            key = (str(record.get("TYPE") or "").strip().upper(), str(record.get("IDNUMBER") or "").strip())
            number = str(record.get("GPART") or "").strip()
            # A service that ignored the filter would name others: their debts must not become this payee's.
            if key not in partners or not number:
                raise OpusDebitorError(
                    200, "GET /BusinessPartners: a result is not one of the identifications asked for"
                )
            partners[key].add(number)
        if any(len(numbers) > 1 for numbers in partners.values()):
            raise OpusDebitorError(200, "several business partners have one identification")
        gparts = {key: numbers.pop() for key, numbers in partners.items() if numbers}
        items = self._items_of(sorted(set(gparts.values())), due_before)
        return {
            key: PayeeDebt(partner=gparts[key], items=items[gparts[key]]) if key in gparts else PayeeDebt()
            for key in identifications
        }

    def _items_of(self, partners: list[str], due_before: date) -> dict[str, list[OpenItem]]:
        """The open items due on or before the key date of these partners (one filtered read), by partner."""
        if not partners:
            return {}
        either = " or ".join(f"GPART eq {_literal(partner)}" for partner in partners)
        expression = f"({either}) and FAEDN le {_literal(due_before.strftime('%Y%m%d'))}"
        grouped: dict[str, list[OpenItem]] = {partner: [] for partner in partners}
        seen: set[str] = set()
        for record in self._results("/OpenItems", [("$filter", expression)]):
            try:
                item = OpenItem.from_sap(record if isinstance(record, dict) else {})
            except (ValidationError, ValueError):
                raise OpusDebitorError(200, "an open item in the answer is malformed") from None
            # Another partner's item, one not yet due, or one twice (a page repeated) would misstate a debt.
            if item.partner not in grouped or item.due_date > due_before or item.document_number in seen:
                raise OpusDebitorError(200, "GET /OpenItems: an item in the answer does not match the filter")
            seen.add(item.document_number)
            grouped[item.partner].append(item)
        return grouped

    # --- clearing -------------------------------------------------------------------------------------------

    def clear(self, claim_key: str, partner: str, amount: Decimal, item_numbers: Iterable[str]) -> Clearing:
        """Books a clearing of `amount` against the items (in the order given), keyed by the claim.

        Raises `OpusDebitorRefusalError` when Opus Debitor refuses it and `OpusDebitorError` on a technical failure.
        After an `OpusDebitorError` (a timeout or a 5xx: the clearing may have been booked) calling again with the
        same claim key is safe: Opus Debitor answers with the clearing it booked, and books no second one.
        """
        items = [str(number).strip() for number in item_numbers]
        if not claim_key.strip() or not partner.strip():
            raise ValueError("A claim key and a business partner are required.")
        if not items or not all(_DOCUMENT_NUMBER.fullmatch(number) for number in items):
            raise ValueError("At least one item, each a document number of up to 12 digits, is required.")
        if len(set(items)) != len(items):
            raise ValueError("An item is named twice.")
        body = {
            "ClaimKey": claim_key.strip(),
            "Partner": partner.strip(),
            "Amount": _amount_text(amount),
            "Items": items,
        }
        response = self._post("/Clearings", body)
        record = self._json(response).get("d")
        if not isinstance(record, dict):
            raise OpusDebitorError(response.status_code, "POST /Clearings: the answer has no d")
        try:
            clearing = Clearing.from_sap(record, repeated=response.status_code == 200)
        except (ValidationError, ValueError):
            raise OpusDebitorError(response.status_code, "POST /Clearings: the clearing is malformed") from None
        # No document or partner number in the log: twelve and ten digits, and the latter CPR-shaped.
        if clearing.repeated:
            _log.info("Opus Debitor already had the clearing of this claim key")
        else:
            _log.info("Opus Debitor booked a clearing of %s against %d items", clearing.amount, len(clearing.items))
        return clearing


# --- settings and the app's client ------------------------------------------------------------------------------


@cache
def opus_debitor_client() -> OpusDebitorClient:
    """The app's Opus Debitor client, built on first use from settings."""
    settings = get_settings()
    base_url, username, password = (
        settings.opus_debitor_base_url,
        settings.opus_debitor_username,
        settings.opus_debitor_password,
    )
    if not (base_url and username and password):
        raise RuntimeError(
            "Opus Debitor-indstillingerne mangler (OPUS_DEBITOR_BASE_URL, OPUS_DEBITOR_USERNAME, "
            "OPUS_DEBITOR_PASSWORD)."
        )
    return OpusDebitorClient(
        base_url, username, password.get_secret_value(), timeout=settings.opus_debitor_timeout_seconds
    )
