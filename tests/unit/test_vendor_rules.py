"""The new-supplier rules, table-driven: every check and decision without storage or HTTP."""

import json
from pathlib import Path

import pytest

from functions.vendor_onboarding import rules
from functions.vendor_onboarding.request import RequestError, SupplierType, parse_request

RULES = json.loads((Path(__file__).parents[2] / "config" / "rules.json").read_text())["versions"][0]["automations"][
    "vendor_onboarding"
]
SUFFIXES = RULES["company_form_suffixes"]


def request_data(**variables: str) -> dict[str, str]:
    base = {
        "sys_id": "abc",
        "number": "RITM0001001",
        "requester_email": "a@kk.dk",
        "leverandoer_type": "DK_VIRKSOMHED",
        "cvr": "39000008",
        "navn": "Nordisk ApS",
        "adresse": "Vesterbrogade 10",
        "postnr": "1620",
        "by": "København V",
        "land": "dk",
        "bestiller_enhed": "TMF",
        "betalingsbetingelse_dage": "30",
    }
    return {**base, **variables}


@pytest.mark.parametrize(
    ("number", "valid"),
    [
        ("13585628", True),  # weights 2,7,6,5,4,3,2,1: sum divisible by 11
        ("39000008", True),
        ("13585627", False),  # last digit off
        ("1358562", False),  # seven digits
        ("1358562A", False),
        ("", False),
    ],
)
def test_cvr_modulus_11(number, valid):
    assert rules.cvr_valid(number) is valid


@pytest.mark.parametrize(
    ("number", "valid"),
    [
        ("DK5000400440116243", True),
        ("DK500040044011624", False),  # DK is 18 characters
        ("DK5100400440116243", False),  # check digits wrong
        ("DE89370400440532013000", True),
        ("FR7630006000011234567890188", False),
    ],
)
def test_iban_length_and_mod_97(number, valid):
    assert rules.iban_valid(number) is valid


@pytest.mark.parametrize(
    ("code", "valid"), [("DABADKKK", True), ("DABADKKKXXX", True), ("DABADKK", False), ("DABA1KKK", False)]
)
def test_bic_is_8_or_11_characters(code, valid):
    assert rules.bic_valid(code) is valid


def gs1(body: str) -> str:
    """The 12 digits completed with their GS1 check digit (weights 1, 3 from the left)."""
    total = sum(int(d) for d in body[::2]) + 3 * sum(int(d) for d in body[1::2])
    return body + str((10 - total % 10) % 10)


@pytest.mark.parametrize(
    ("number", "valid"),
    [
        (gs1("579800000000"), True),  # a Danish public unit's GLN
        (gs1("579000012345"), True),
        ("5798000000002", False),  # wrong check digit
        ("579800000000", False),  # 12 digits
        ("57980000000A1", False),
    ],
)
def test_ean_gln_check_digit(number, valid):
    assert rules.ean_valid(number) is valid


@pytest.mark.parametrize(
    ("requested", "registered", "same"),
    [
        ("Grøn Rengøring ApS", "GRØN RENGØRING APS", True),
        ("Grøn  Rengøring", "Grøn Rengøring ApS", True),
        ("Kaffe & Kage A/S", "Kaffe og Kage A/S", True),
        ("Hansen Holding ApS", "Hansen ApS", False),  # a holding company is another company
        ("Nordisk I/S", "Nordisk K/S", True),
        ("A.M.B.A. Brugs", "Brugs a.m.b.a.", False),  # only trailing forms go
        ("Groen Rengoering", "Grøn Rengøring ApS", False),
        ("Byg ApS", "Byg og Anlæg ApS", False),
    ],
)
def test_name_normalisation(requested, registered, same):
    assert (rules.normalised_name(requested, SUFFIXES) == rules.normalised_name(registered, SUFFIXES)) is same


def test_a_name_mismatch_keeps_the_register_s_name_and_says_so():
    check = rules.name_check("Groen Rengoering", "Grøn Rengøring ApS", SUFFIXES)
    assert not check.passed and "Grøn Rengøring ApS" in check.text and "bruges" in check.text


def test_every_format_check_of_a_good_danish_company_passes():
    request = parse_request(request_data(ean=gs1("579800000000"), p_nr="1234567890"))
    checks = rules.format_checks(request, RULES)
    assert [c.name for c in checks] == ["CVR", "P-nummer", "EAN", "Betalingsbetingelse"]
    assert all(c.passed for c in checks)
    assert rules.first_refusal(checks) is None


@pytest.mark.parametrize(
    ("variables", "failing"),
    [
        ({"cvr": "12345678"}, ["CVR"]),
        ({"betalingsbetingelse_dage": "45"}, ["Betalingsbetingelse"]),
        ({"p_nr": "12345"}, ["P-nummer"]),
        ({"ean": "1234"}, ["EAN"]),
        ({"leverandoer_type": "UDENLANDSK", "cvr": "", "iban": "DE00", "bic": "X"}, ["IBAN", "BIC"]),
        ({"leverandoer_type": "DK_PERSON", "cvr": "3213625234"}, ["CPR"]),  # day 32 does not exist
    ],
)
def test_each_failing_format_check_is_named(variables, failing):
    checks = rules.format_checks(parse_request(request_data(**variables)), RULES)
    assert [c.name for c in checks if not c.passed] == failing
    refusal = rules.first_refusal(checks)
    assert refusal is not None and refusal.code == "UGYLDIGE_OPLYSNINGER"


def test_a_person_s_number_is_checked_for_its_date_not_modulus_11():
    checks = rules.format_checks(parse_request(request_data(leverandoer_type="DK_PERSON", cvr="1503625234")), RULES)
    assert [(c.name, c.passed) for c in checks if c.name == "CPR"] == [("CPR", True)]


@pytest.mark.parametrize(
    ("kind", "code"),
    [
        ("DK_VIRKSOMHED", None),
        ("DK_PERSON", "PERSONLEVERANDOER"),
        ("UDENLANDSK", "UDENLANDSK_LEVERANDOER"),
        ("OFFENTLIG_MYNDIGHED", "OFFENTLIG_MYNDIGHED"),
    ],
)
def test_only_danish_companies_are_created_automatically(kind, code):
    request = parse_request(request_data(leverandoer_type=kind))
    refusal = rules.type_refusal(request, RULES)
    assert (refusal.code if refusal else None) == code


def test_a_missing_or_malformed_field_is_named_in_danish():
    with pytest.raises(RequestError) as error:
        parse_request(request_data(bestiller_enhed="", leverandoer_type="NOGET_ANDET", requester_email="nej"))
    assert error.value.fields == ["bestillende enhed", "bestillerens e-mail", "leverandørtype"]
    missing = rules.missing_fields(parse_request(request_data(postnr="", by="")))
    assert missing == ["postnummer", "by"]
    foreign = parse_request(request_data(leverandoer_type="UDENLANDSK", cvr=""))
    assert rules.missing_fields(foreign) == ["IBAN", "BIC", "bankens land"]


def test_the_country_is_read_case_insensitively_and_blanks_are_absent():
    request = parse_request(request_data(land="dk", ean="  "))
    assert request.country == "DK" and request.ean is None and request.supplier_type is SupplierType.DK_COMPANY
