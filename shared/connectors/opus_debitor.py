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

Personal data: a CPR number travels only as a query parameter to the service and is never put in a message.
Exception texts are redacted (CPR-shaped numbers, so also the ten-digit GPART) and a document number - twelve
digits, which `redact` does not catch - is masked as well; the models keep document and partner numbers out
of their `repr`, so logging a model leaks neither.
"""

import re
from collections.abc import Iterable
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from functools import cache
from typing import Any

from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.connectors.sap_gateway import SapGatewayClient
from shared.logs import get_logger
from shared.models import BoundaryModel
from shared.personal_data import redact

SERVICE_PATH = "/sap/opu/odata/opus/debitor/v1"
ID_TYPES = frozenset({"CPR", "CVR", "SE", "P"})
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

    # --- reads ----------------------------------------------------------------------------------------------

    def partner(self, partner_id: str, id_type: str) -> str | None:
        """The business partner number (GPART) registered under this CPR/CVR/SE/P number, or None."""
        id_type = id_type.strip().upper()
        if id_type not in ID_TYPES:
            raise ValueError(f"Unknown id type; expected one of {sorted(ID_TYPES)}.")
        partner_id = partner_id.strip()
        if not partner_id.isascii() or not partner_id.isdigit():
            raise ValueError("A partner id of digits is required.")  # never echoes the id: it may be a CPR
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


class OpusDebitorSettings(BaseSettings):
    """The connector's settings (OPUS_DEBITOR_*), until they join the app's `Settings`."""

    model_config = SettingsConfigDict(env_prefix="OPUS_DEBITOR_", extra="ignore", hide_input_in_errors=True)

    base_url: str | None = Field(default=None, description="Base URL of Opus Debitor's receivables service.")
    username: str | None = Field(default=None, description="Opus Debitor integration user (basic auth).")
    password: SecretStr | None = Field(default=None, description="Its password (Key Vault).")
    timeout_seconds: float = Field(default=30.0, gt=0, description="Timeout per Opus Debitor request.")


@cache
def opus_debitor_client() -> OpusDebitorClient:
    """The app's Opus Debitor client, built on first use from the environment."""
    settings = OpusDebitorSettings()
    if not (settings.base_url and settings.username and settings.password):
        raise RuntimeError(
            "Opus Debitor-indstillingerne mangler (OPUS_DEBITOR_BASE_URL, OPUS_DEBITOR_USERNAME, "
            "OPUS_DEBITOR_PASSWORD)."
        )
    return OpusDebitorClient(
        settings.base_url,
        settings.username,
        settings.password.get_secret_value(),
        timeout=settings.timeout_seconds,
    )
