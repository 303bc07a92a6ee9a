"""Payee ids, table-driven: CPR by format and date, CVR by modulus 11, SE and P numbers by format.

Every CPR here is synthetic: born 1858-1870 (7th digit 5-8 with a year above 57), or a 1900s/2000s
century case on 1 January or 29 February with a round sequence number. Modulus 11 is deliberately not
checked (the brief: numbers without it have been issued since 2007), and the numbers that must pass are
chosen to fail it, which the tests assert.
"""

from datetime import date

import pytest
from stdnum.dk import cpr as stdnum_cpr

from functions.claim_payouts import identifiers as ids
from functions.claim_payouts.identifiers import IdentifierError

# (number, birth date, what the case shows); node ids use the description, never the number.
VALID_CPR = [
    ("0101585000", date(1858, 1, 1), "1858-first-day"),
    ("1506636123", date(1863, 6, 15), "1863-midyear"),
    ("3112708999", date(1870, 12, 31), "1870-last-day"),
    ("2902607001", date(1860, 2, 29), "1860-leap-day"),
    ("0101586006", date(1858, 1, 1), "1858-passes-mod11-too"),  # modulus 11 neither helps nor hurts
    ("0101000000", date(1900, 1, 1), "digit0-1900s"),
    ("0101584000", date(1958, 1, 1), "digit4-yy58-1900s"),
    ("0101374000", date(1937, 1, 1), "digit4-yy37-1900s"),
    ("0101369000", date(2036, 1, 1), "digit9-yy36-2000s"),
    ("2902004000", date(2000, 2, 29), "digit4-2000-leap"),
    ("2902009000", date(2000, 2, 29), "digit9-2000-leap"),
    ("2902005000", date(2000, 2, 29), "digit5-yy00-2000s"),
    ("0101575000", date(2057, 1, 1), "digit5-yy57-2000s"),
]

INVALID_CPR = [
    ("2902585001", "1858-not-a-leap-year"),
    ("2902000000", "1900-not-a-leap-year"),  # 7th digit 0: 1900, which had no 29 February
    ("3204605000", "day-32"),
    ("3104605000", "31-april"),
    ("0013605000", "month-13"),
    ("0000605000", "day-and-month-zero"),
    ("6001585000", "day-60"),  # between real days (1-31) and constructed ones (61-91)
    ("9201585000", "day-92"),
    ("010158500", "nine-digits-padded-to-a-bad-date"),  # 0010158500: month 10, day 00
    ("01015850001", "eleven-digits"),
    ("10158500", "eight-digits"),
    ("010158 5000", "space-for-dash"),
    ("01015-85000", "dash-misplaced"),
    ("010158\u20135000", "en-dash"),
    ("01O1585000", "letter-o"),
    ("\u0660\u0661\u0660\u0661\u0665\u0668\u0665\u0660\u0660\u0660", "arabic-indic-digits"),
    ("", "empty"),
]


@pytest.mark.parametrize(("number", "born"), [c[:2] for c in VALID_CPR], ids=[c[2] for c in VALID_CPR])
def test_cpr_valid_by_format_and_date(number, born):
    assert ids.cpr_valid(number)
    assert ids.cpr_birth_date(number) == born
    assert ids.cpr_payable(number)


@pytest.mark.parametrize("number", [c[0] for c in VALID_CPR if c[0] != "0101586006"], ids=lambda _: "mod11")
def test_valid_cpr_numbers_fail_modulus_11(number):
    # Deliberately: these must pass although the old modulus-11 check rejects them.
    assert stdnum_cpr.checksum(number) != 0


@pytest.mark.parametrize("number", [c[0] for c in INVALID_CPR], ids=[c[1] for c in INVALID_CPR])
def test_cpr_invalid(number):
    assert not ids.cpr_valid(number)
    assert not ids.cpr_payable(number)


@pytest.mark.parametrize(
    ("text", "normalised"),
    [
        ("010158-5000", "0101585000"),
        ("0101585000", "0101585000"),
        ("101585000", "0101585000"),  # nine digits: the spreadsheet dropped the leading zero
        ("  010158-5000\t", "0101585000"),
        (" 101585000 ", "0101585000"),
        ("311270-8999", "3112708999"),
    ],
    ids=["dashed", "ten", "nine", "dashed-spaces", "nine-spaces", "dashed-1870"],
)
def test_normalise_cpr(text, normalised):
    assert ids.normalise_cpr(text) == normalised
    assert ids.cpr_valid(text)


def test_nine_digits_are_padded_before_the_date_is_read():
    assert ids.cpr_birth_date("101585000") == date(1858, 1, 1)


@pytest.mark.parametrize(
    "text",
    ["", "12345678", "01015850001", "010158 5000", "01015-85000", "10158-5000", "DK0101585000", "01.01.58-5000"],
    ids=["empty", "eight", "eleven", "space", "dash-misplaced", "nine-dashed", "prefix", "dots"],
)
def test_normalise_cpr_refuses_without_echoing(text):
    with pytest.raises(IdentifierError) as caught:
        ids.normalise_cpr(text)
    message = str(caught.value)
    assert not any(ch.isdigit() for ch in message.replace("10 cifre", ""))
    assert isinstance(caught.value, ValueError)


def test_bad_date_error_does_not_echo_the_number():
    with pytest.raises(IdentifierError) as caught:
        ids.cpr_birth_date("3204605000")
    message = str(caught.value)
    assert "320460" not in message
    assert "32" not in message
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__


@pytest.mark.parametrize(
    ("number", "born"),
    [
        ("6101585000", date(1858, 1, 1)),  # 1 + 60
        ("9101705000", date(1870, 1, 31)),  # 31 + 60
        ("8902607001", date(1860, 2, 29)),  # 29 + 60, leap year
        ("6101000000", date(1900, 1, 1)),
    ],
    ids=["day61", "day91", "day89-leap", "day61-1900"],
)
def test_skat_constructed_numbers_are_valid_but_not_payable(number, born):
    assert ids.cpr_valid(number)
    assert ids.cpr_birth_date(number) == born
    assert not ids.cpr_payable(number)


def test_constructed_number_with_a_bad_date_is_invalid():
    assert not ids.cpr_valid("8902585000")  # 29 February 1858 + 60


@pytest.mark.parametrize(
    ("number", "valid"),
    [
        ("39000008", True),  # weights 2,7,6,5,4,3,2,1: sum 77, divisible by 11
        ("13585628", True),
        (" 39000008 ", True),  # surrounding spaces of a cell
        ("39000007", False),  # last digit off
        ("3900000", False),  # seven digits
        ("390000080", False),  # nine digits
        ("01000004", False),  # passes modulus 11, but no CVR number starts with 0
        ("DK39000008", False),  # the claims file holds the bare digits
        ("39 00 00 08", False),
        ("3900000A", False),
        ("3900000\uff18", False),  # a full-width 8
        ("", False),
    ],
    ids=lambda value: None if isinstance(value, bool) else "cvr",  # no digit runs in node ids
)
def test_cvr_modulus_11(number, valid):
    assert ids.cvr_valid(number) is valid


@pytest.mark.parametrize(
    ("number", "valid"),
    [
        ("12345678", True),
        ("00000001", True),  # format only: no check digit
        (" 12345678 ", True),
        ("1234567", False),
        ("123456789", False),
        ("1234567A", False),
        ("1234 5678", False),
        ("", False),
    ],
    ids=lambda value: None if isinstance(value, bool) else "se",
)
def test_se_number_format_only(number, valid):
    assert ids.se_valid(number) is valid


@pytest.mark.parametrize(
    ("number", "valid"),
    [
        ("1000000000", True),
        ("1234567890", True),  # no checksum
        (" 1000000000 ", True),
        ("100000000", False),
        ("10000000000", False),
        ("100000000A", False),
        ("100000-0000", False),
        ("", False),
    ],
    ids=["ones", "sequence", "spaces", "nine", "eleven", "letter", "dashed", "empty"],
)
def test_p_number_ten_digits_no_checksum(number, valid):
    assert ids.p_number_valid(number) is valid
