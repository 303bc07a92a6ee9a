"""The claim checks of automation 2, table-driven: each column's rule, in the order a clerk checks."""

import json
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from functions.claim_payouts.rules import ClaimRefusalError, PayeeType, check_claim, over_daily_cap, payment_channel

RULES = json.loads((Path(__file__).parents[2] / "config" / "rules.json").read_text())["versions"][0]["automations"][
    "claim_payouts"
]
TODAY = date(2026, 11, 24)
SYNTHETIC_CPR = "1503625234"  # born 15 March 1862 (7th digit 5, YY 62 > 57): nobody alive


def row(**cells: str) -> dict[str, str]:
    base = {
        "krav_id": "K-2026-000123",
        "modtager_type": "CPR",
        "modtager_id": SYNTHETIC_CPR,
        "modtager_navn": "Anna Andersen",
        "beloeb": "1.234,50",
        "valuta": "DKK",
        "posteringstekst": "Refusion af udlæg",
        "bilagstekst": "Udlæg nov",
        "reference": "SAG-77",
        "artskonto": "4711000",
        "omkostningssted": "1000200",
        "psp_element": "",
        "bilag": "B-1",
        "godkendt_af": "annje",
        "godkendt_dato": "20-11-2026",
        "anmodet_af": "kimko",
        "anmoder_email": "kim.ko@kk.dk",
    }
    return {**base, **cells}


def test_a_good_claim_is_read_with_its_amount_and_padded_cpr():
    claim = check_claim(row(), RULES, TODAY)
    assert claim.amount == Decimal("1234.50") and claim.payee_type is PayeeType.CPR
    assert claim.approved_by == "ANNJE" and claim.approved_on == date(2026, 11, 20)


def test_a_cpr_that_lost_its_leading_zero_is_padded():
    claim = check_claim(row(modtager_id="101585234"), RULES, TODAY)  # 0101585234 with its zero dropped
    assert claim.payee_id == "0101585234"


@pytest.mark.parametrize(
    ("cells", "code"),
    [
        ({"krav_id": ""}, "UGYLDIGT_KRAV_ID"),
        ({"krav_id": "K" * 21}, "UGYLDIGT_KRAV_ID"),
        ({"modtager_type": "FIRMA"}, "UKENDT_MODTAGERTYPE"),
        ({"modtager_id": "3213625234"}, "UGYLDIGT_CPR"),  # day 32
        ({"modtager_id": "7503625234"}, "CPR_IKKE_UDBETALBAR"),  # day 75: SKAT's constructed number
        ({"modtager_type": "CVR", "modtager_id": "13585627"}, "UGYLDIGT_CVR"),
        ({"modtager_type": "SE", "modtager_id": "1234"}, "UGYLDIGT_SE"),
        ({"modtager_type": "P", "modtager_id": "12345"}, "UGYLDIGT_PNR"),
        ({"beloeb": "12,345"}, "UGYLDIGT_BELOEB"),  # three decimals
        ({"beloeb": "-5,00"}, "UGYLDIGT_BELOEB"),
        ({"valuta": "EUR"}, "FORKERT_VALUTA"),
        ({"beloeb": "50.000,01"}, "BELOEB_OVER_GRAENSE"),
        ({"posteringstekst": "x" * 51}, "TEKST_FOR_LANG"),
        ({"bilagstekst": "x" * 26}, "TEKST_FOR_LANG"),
        ({"artskonto": ""}, "MANGLENDE_ARTSKONTO"),
        ({"psp_element": "XG-0001"}, "KONTERING_UKLAR"),  # both set
        ({"omkostningssted": ""}, "KONTERING_UKLAR"),  # neither
        ({"godkendt_af": ""}, "MANGLENDE_GODKENDELSE"),
        ({"godkendt_af": "KIMKO"}, "GODKENDT_AF_ANMODER"),
        ({"godkendt_af": "XYZAB"}, "IKKE_ATTESTATIONSBERETTIGET"),
        ({"godkendt_af": "CHRHA", "beloeb": "10.000,01"}, "OVER_ATTESTATIONSGRAENSE"),
        ({"godkendt_dato": "31-02-2026"}, "UGYLDIG_GODKENDELSESDATO"),
        ({"godkendt_dato": "2026-12-01"}, "UGYLDIG_GODKENDELSESDATO"),  # in the future
        ({"anmoder_email": "ikke en adresse"}, "UGYLDIG_EMAIL"),
    ],
)
def test_each_failing_column_gives_its_reason(cells, code):
    with pytest.raises(ClaimRefusalError) as refused:
        check_claim(row(**cells), RULES, TODAY)
    assert refused.value.code == code
    assert SYNTHETIC_CPR not in str(refused.value) and "3213625234" not in str(refused.value)


@pytest.mark.parametrize("written", ["1503625234", "150362-5234", " 1503625234 "])
def test_a_cpr_is_never_refused_for_modulus_11(written):
    # 1503625234 fails the old modulus-11 test; numbers without it have been issued since 2007
    assert check_claim(row(modtager_id=written), RULES, TODAY).payee_id == "1503625234"


def test_iso_approval_dates_are_read_too():
    assert check_claim(row(godkendt_dato="2026-11-20"), RULES, TODAY).approved_on == date(2026, 11, 20)


def test_only_nemkonto_payees_are_paid_automatically():
    payment_channel(check_claim(row(), RULES, TODAY))
    foreign = check_claim(row(modtager_type="UDENLANDSK", modtager_id="DE-998877"), RULES, TODAY)
    with pytest.raises(ClaimRefusalError, match="INGEN_NEMKONTO_KANAL"):
        payment_channel(foreign)


def test_a_claim_split_across_files_cannot_slip_under_the_daily_cap():
    claim = check_claim(row(beloeb="30.000,00"), RULES, TODAY)
    assert not over_daily_cap(Decimal("20000.00"), claim, RULES)  # exactly the limit
    assert over_daily_cap(Decimal("20000.01"), claim, RULES)
