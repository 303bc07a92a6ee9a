"""The claim checks that need nothing but the claim and the configuration, as pure functions.

Each check that fails gives a `ClaimRefusal` (reason code and the Danish text a clerk reads, naming the column);
the row goes to a person and the rest of the file proceeds. Checks that need a system (the CVR register, the
payee's total for the day, earlier payments, Kvantum's chart of accounts, Opus Debitor) come after these.
"""

from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from functools import lru_cache
from typing import Any

from email_validator import EmailNotValidError, validate_email

from functions.claim_payouts import identifiers
from functions.claim_payouts.amounts import AmountError, parse_amount
from shared.models import BoundaryModel

POSTING_TEXT_MAX, HEADER_TEXT_MAX, REFERENCE_MAX = 50, 25, 20


class PayeeType(StrEnum):
    """`modtager_type`: whom the claim pays."""

    CPR = "CPR"
    CVR = "CVR"
    SE = "SE"
    P = "P"
    FOREIGN = "UDENLANDSK"


#: Payee types NemKonto can pay: the payment names only the id, NemKonto adds the account.
NEMKONTO_TYPES = frozenset({PayeeType.CPR, PayeeType.CVR, PayeeType.SE, PayeeType.P})


class ClaimRefusalError(ValueError):
    """A claim a person must look at: a reason code and a Danish text naming the column."""

    def __init__(self, code: str, text: str) -> None:
        super().__init__(f"{code}: {text}")
        self.code, self.text = code, text


class Claim(BoundaryModel):
    """A claim that passed the checks of this module; the payee id normalised (a CPR padded to 10 digits)."""

    claim_id: str
    payee_type: PayeeType
    payee_id: str
    payee_name: str
    amount: Decimal
    currency: str
    posting_text: str
    header_text: str
    reference: str
    gl_account: str
    cost_center: str
    wbs_element: str
    attachment: str
    approved_by: str
    approved_on: date
    requested_by: str
    requester_email: str


def _text(row: Mapping[str, Any], column: str) -> str:
    return str(row.get(column) or "").strip()


def _date(text: str) -> date | None:
    for form in ("%d-%m-%Y", "%Y-%m-%d"):
        try:
            return datetime.strptime(text, form).date()
        except ValueError:
            continue
    return None


def _payee_id(payee_type: PayeeType, raw: str) -> str:
    """The payee id normalised, or a refusal that never repeats the number."""
    if payee_type is PayeeType.CPR:
        try:
            number = identifiers.normalise_cpr(raw)
        except identifiers.IdentifierError:
            raise ClaimRefusalError("UGYLDIGT_CPR", "Kolonnen modtager_id er ikke et personnummer.") from None
        if not identifiers.cpr_valid(number):
            raise ClaimRefusalError("UGYLDIGT_CPR", "Personnummeret i modtager_id har ikke en gyldig dato.")
        if not identifiers.cpr_payable(number):
            raise ClaimRefusalError(
                "CPR_IKKE_UDBETALBAR", "Modtageren har et erstatningsnummer (ikke CPR); NemKonto kan ikke bruges."
            )
        return number
    checks = {
        PayeeType.CVR: (identifiers.cvr_valid, "UGYLDIGT_CVR", "CVR-nummeret i modtager_id er ikke gyldigt."),
        PayeeType.SE: (identifiers.se_valid, "UGYLDIGT_SE", "SE-nummeret i modtager_id skal være 8 cifre."),
        PayeeType.P: (identifiers.p_number_valid, "UGYLDIGT_PNR", "P-nummeret i modtager_id skal være 10 cifre."),
    }
    if payee_type in checks:
        valid, code, text = checks[payee_type]
        if not valid(raw):
            raise ClaimRefusalError(code, text)
        return raw
    return raw  # foreign: a person pays it (see payment_channel)


@lru_cache(maxsize=4096)
def _normalised_email(text: str) -> str | None:
    """The address normalised, or None when it is not one (cached: a file names the same requesters over again)."""
    try:
        return validate_email(text, check_deliverability=False).normalized
    except EmailNotValidError:
        return None


def check_claim(row: Mapping[str, Any], rules: Mapping[str, Any], today: date) -> Claim:
    """The row as a `Claim`, or the first refusal in the order a clerk would check."""
    claim_id = _text(row, "krav_id")
    if not claim_id or len(claim_id) > REFERENCE_MAX:
        raise ClaimRefusalError("UGYLDIGT_KRAV_ID", f"Kolonnen krav_id skal udfyldes med højst {REFERENCE_MAX} tegn.")
    try:
        payee_type = PayeeType(_text(row, "modtager_type").upper())
    except ValueError:
        raise ClaimRefusalError(
            "UKENDT_MODTAGERTYPE", "Kolonnen modtager_type skal være CPR, CVR, SE, P eller UDENLANDSK."
        ) from None
    payee_id = _payee_id(payee_type, _text(row, "modtager_id"))
    try:
        amount = parse_amount(_text(row, "beloeb"))
    except AmountError as error:
        raise ClaimRefusalError("UGYLDIGT_BELOEB", f"Kolonnen beloeb: {error}") from None
    currency = _text(row, "valuta").upper() or str(rules["currency"])
    if currency != rules["currency"]:
        raise ClaimRefusalError("FORKERT_VALUTA", f"Kolonnen valuta: kun {rules['currency']} udbetales automatisk.")
    limit = Decimal(rules["auto_payout_limit"])
    if amount > limit:
        raise ClaimRefusalError(
            "BELOEB_OVER_GRAENSE", f"Beløbet er over grænsen for automatisk udbetaling ({limit} kr.)."
        )
    posting_text, header_text = _text(row, "posteringstekst"), _text(row, "bilagstekst")
    if len(posting_text) > POSTING_TEXT_MAX or len(header_text) > HEADER_TEXT_MAX:
        raise ClaimRefusalError(
            "TEKST_FOR_LANG",
            f"posteringstekst må højst have {POSTING_TEXT_MAX} tegn og bilagstekst højst {HEADER_TEXT_MAX}.",
        )
    gl_account, cost_center, wbs = _text(row, "artskonto"), _text(row, "omkostningssted"), _text(row, "psp_element")
    if not gl_account:
        raise ClaimRefusalError("MANGLENDE_ARTSKONTO", "Kolonnen artskonto skal udfyldes.")
    if bool(cost_center) == bool(wbs):
        raise ClaimRefusalError("KONTERING_UKLAR", "Udfyld enten omkostningssted eller psp_element (præcis én af dem).")
    approver, requester = _text(row, "godkendt_af").upper(), _text(row, "anmodet_af").upper()
    if not approver:
        raise ClaimRefusalError("MANGLENDE_GODKENDELSE", "Kravet er ikke godkendt (kolonnen godkendt_af er tom).")
    if approver == requester:
        raise ClaimRefusalError("GODKENDT_AF_ANMODER", "Den der godkender, må ikke være den der anmoder.")
    approvers = {initials.upper(): Decimal(cap) for initials, cap in rules["approvers"].items()}
    if approver not in approvers:
        raise ClaimRefusalError(
            "IKKE_ATTESTATIONSBERETTIGET", "Godkenderen er ikke på listen over attestationsberettigede."
        )
    if amount > approvers[approver]:
        raise ClaimRefusalError(
            "OVER_ATTESTATIONSGRAENSE", f"Beløbet er over godkenderens attestationsgrænse ({approvers[approver]} kr.)."
        )
    approved_on = _date(_text(row, "godkendt_dato"))
    if approved_on is None or approved_on > today:
        raise ClaimRefusalError(
            "UGYLDIG_GODKENDELSESDATO", "Kolonnen godkendt_dato skal være en dato (DD-MM-ÅÅÅÅ), ikke i fremtiden."
        )
    email = _normalised_email(_text(row, "anmoder_email"))
    if email is None:
        raise ClaimRefusalError("UGYLDIG_EMAIL", "Kolonnen anmoder_email er ikke en e-mailadresse.")
    return Claim(
        claim_id=claim_id,
        payee_type=payee_type,
        payee_id=payee_id,
        payee_name=_text(row, "modtager_navn"),
        amount=amount,
        currency=currency,
        posting_text=posting_text,
        header_text=header_text,
        reference=_text(row, "reference"),
        gl_account=gl_account,
        cost_center=cost_center,
        wbs_element=wbs,
        attachment=_text(row, "bilag"),
        approved_by=approver,
        approved_on=approved_on,
        requested_by=requester,
        requester_email=email,
    )


def payment_channel(claim: Claim) -> None:
    """NemKonto pays CPR/CVR/SE/P payees; anything else goes to a person."""
    if claim.payee_type not in NEMKONTO_TYPES:
        raise ClaimRefusalError("INGEN_NEMKONTO_KANAL", "Udenlandske modtagere betales manuelt (IBAN/BIC).")


def over_daily_cap(earlier_today: Decimal, claim: Claim, rules: Mapping[str, Any]) -> bool:
    """Whether the payee's total for the day, across files, would pass the auto-payout limit with this claim."""
    return earlier_today + claim.amount > Decimal(rules["auto_payout_limit"])
