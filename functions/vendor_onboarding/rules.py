"""The new-supplier rules as pure functions: format checks, name comparison, and the decision.

Every check yields a `Check` (name, passed, a Danish line a clerk understands); the list is kept on the item
and written to the request, so whoever picks a case up sees why it went where it went.
"""

import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from stdnum import bic, ean, iban
from stdnum.dk import cpr as dk_cpr
from stdnum.dk import cvr as dk_cvr

from functions.vendor_onboarding.request import SupplierType, VendorRequest


@dataclass(frozen=True)
class Check:
    """One check's result."""

    name: str
    passed: bool
    text: str

    def line(self) -> str:
        """The check as a line in a work note."""
        return f"{'OK' if self.passed else 'FEJL'} {self.name}: {self.text}"


@dataclass(frozen=True)
class Refusal:
    """Why a request goes to a person: a reason code and the Danish text."""

    code: str
    text: str


def cvr_valid(number: str) -> bool:
    """8 digits whose weighted sum (2,7,6,5,4,3,2,1) is divisible by 11 [rule]."""
    return bool(re.fullmatch(r"\d{8}", number)) and dk_cvr.is_valid(number)


def iban_valid(number: str) -> bool:
    """ISO 13616: the country's length and mod-97 check digits (DK = 18 characters) [rule]."""
    return iban.is_valid(number)


def bic_valid(code: str) -> bool:
    """8 or 11 characters: bank, country, location (and branch) [rule]."""
    return bic.is_valid(code)


def ean_valid(number: str) -> bool:
    """EAN/GLN: 13 digits with a valid GS1 mod-10 check digit [rule]."""
    return bool(re.fullmatch(r"\d{13}", number)) and ean.is_valid(number)


def normalised_name(name: str, suffixes: Sequence[str]) -> str:
    """A company name for comparison: case, accents kept apart from spacing and punctuation, form suffixes gone."""
    text = unicodedata.normalize("NFKC", name).upper().replace("&", " OG ")
    text = re.sub(r"[^\wÆØÅ/.]+", " ", text)
    words = text.split()
    forms = {s.upper() for s in suffixes}
    while words and (words[-1] in forms or words[-1].rstrip(".") in forms):
        words.pop()
    return " ".join(w.replace(".", "") for w in words)


def format_checks(request: VendorRequest, rules: Mapping[str, Any]) -> list[Check]:
    """The format checks that apply to the request's supplier type."""
    checks: list[Check] = []
    if request.supplier_type is SupplierType.DK_PERSON:
        # The form's number field holds the person's CPR: format and date only, never modulus 11 [rule].
        ok = request.cvr is not None and dk_cpr.is_valid(request.cvr)
        checks.append(Check("CPR", ok, "gyldig dato" if ok else "personnummeret har ikke en gyldig form eller dato"))
    elif request.cvr is not None or request.supplier_type is SupplierType.DK_COMPANY:
        ok = request.cvr is not None and cvr_valid(request.cvr)
        checks.append(Check("CVR", ok, "modulus 11 er opfyldt" if ok else "CVR-nummeret er ikke gyldigt (modulus 11)"))
    if request.p_number is not None:
        ok = bool(re.fullmatch(r"\d{10}", request.p_number))
        checks.append(Check("P-nummer", ok, "10 cifre" if ok else "P-nummeret skal være 10 cifre"))
    if request.se_number is not None:
        ok = bool(re.fullmatch(r"\d{8}", request.se_number))
        checks.append(Check("SE-nummer", ok, "8 cifre" if ok else "SE-nummeret skal være 8 cifre"))
    if request.ean is not None:
        ok = ean_valid(request.ean)
        checks.append(
            Check("EAN", ok, "gyldigt GLN-nummer" if ok else "EAN/GLN-nummeret er ikke gyldigt (kontrolciffer)")
        )
    if request.iban is not None or request.supplier_type is SupplierType.FOREIGN:
        ok = request.iban is not None and iban_valid(request.iban)
        checks.append(Check("IBAN", ok, "gyldigt" if ok else "IBAN er ikke gyldigt (længde eller kontrolciffer)"))
    if request.bic is not None or request.supplier_type is SupplierType.FOREIGN:
        ok = request.bic is not None and bic_valid(request.bic)
        checks.append(Check("BIC", ok, "gyldig" if ok else "BIC skal være 8 eller 11 tegn"))
    limit = int(rules["max_payment_terms_days"])
    terms = request.payment_terms_days if request.payment_terms_days is not None else limit
    ok = terms <= limit
    text = f"{terms} dage" if ok else f"{terms} dage er over de {limit} dage, en offentlig køber må aftale"
    checks.append(Check("Betalingsbetingelse", ok, text))
    return checks


def missing_fields(request: VendorRequest) -> list[str]:
    """Mandatory fields of the request's type that are empty (in Danish)."""
    needed = {"adresse": request.street, "postnummer": request.postal_code, "by": request.city}
    if request.supplier_type is SupplierType.DK_COMPANY:
        needed["CVR-nummer"] = request.cvr
    if request.supplier_type is SupplierType.FOREIGN:
        needed |= {"IBAN": request.iban, "BIC": request.bic, "bankens land": request.bank_country}
    return [name for name, value in needed.items() if not value]


def first_refusal(checks: Sequence[Check]) -> Refusal | None:
    """A failed format check sends the request to a person, naming every failure."""
    failed = [c for c in checks if not c.passed]
    if not failed:
        return None
    return Refusal(
        "UGYLDIGE_OPLYSNINGER", "Anmodningen har ugyldige oplysninger: " + "; ".join(c.text for c in failed) + "."
    )


def type_refusal(request: VendorRequest, rules: Mapping[str, Any]) -> Refusal | None:
    """Only the configured supplier types are created automatically [default: DK_VIRKSOMHED]."""
    if request.supplier_type.value in rules["auto_create_types"]:
        return None
    texts = {
        SupplierType.DK_PERSON: ("PERSONLEVERANDOER", "Leverandøren er en person (CPR); den oprettes manuelt."),
        SupplierType.FOREIGN: (
            "UDENLANDSK_LEVERANDOER",
            "Udenlandsk leverandør; bankoplysningerne kontrolleres manuelt.",
        ),
        SupplierType.PUBLIC_AUTHORITY: ("OFFENTLIG_MYNDIGHED", "Offentlig myndighed; oprettes manuelt."),
    }
    code, text = texts.get(request.supplier_type, ("MANUEL_TYPE", "Leverandørtypen oprettes manuelt."))
    return Refusal(code, text)


def name_stem(name: str, suffixes: Sequence[str]) -> str:
    """The name without its trailing company-form words, otherwise as written (for the ERP's name search)."""
    forms = {s.upper() for s in suffixes}
    words = name.split()
    while len(words) > 1 and words[-1].upper().rstrip(".") in forms | {f.rstrip(".") for f in forms}:
        words.pop()
    return " ".join(words)


def display_vendor_number(vendor_number: str) -> str:
    """A vendor number as SAP shows it: without the leading zeros of its ten-digit internal form.

    Also what keeps it out of redaction: ten digits in a row look like a CPR number to every log filter.
    """
    return vendor_number.lstrip("0") or "0"


def name_check(requested: str, registered: str, suffixes: Sequence[str]) -> Check:
    """The requested name against the register's, after normalisation; on a mismatch the register wins."""
    same = normalised_name(requested, suffixes) == normalised_name(registered, suffixes)
    if same:
        return Check("Navn", True, f"stemmer med CVR-registret ({registered})")
    return Check("Navn", False, f"'{requested}' stemmer ikke med CVR-registret; registrets navn '{registered}' bruges")
