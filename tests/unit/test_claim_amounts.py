"""Amount notations in the claims file, table-driven: what is read, what is refused and why."""

from decimal import Decimal

import pytest

from functions.claim_payouts.amounts import AmountError, parse_amount, xlsx_amount


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1.234,50", "1234.50"),  # Danish notation
        ("1234,50", "1234.50"),
        ("1234.50", "1234.50"),  # a dot with two digits after it is the decimal point
        ("1.234", "1234.00"),  # three digits after the dot and no comma: thousands
        ("1.23", "1.23"),
        ("1.2", "1.20"),
        ("1.234.567", "1234567.00"),
        ("1.234.567,89", "1234567.89"),
        ("12.345", "12345.00"),
        ("1.234,5", "1234.50"),
        ("0,01", "0.01"),
        ("0.01", "0.01"),
        ("1234", "1234.00"),
        ("7", "7.00"),
        ("0012,50", "12.50"),  # leading zeros are unambiguous
        ("49999,99", "49999.99"),
        (" 1234,50 ", "1234.50"),  # surrounding spaces of a cell are not part of the amount
        ("\u00a01234,50\t", "1234.50"),
        ("999999999999,99", "999999999999.99"),  # twelve digits: the largest amount read
    ],
)
def test_parse_amount_reads(text, expected):
    amount = parse_amount(text)
    assert amount == Decimal(expected)
    assert str(amount) == expected  # always two places


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "mangler"),
        ("   ", "mangler"),
        ("0,00", "er 0"),  # a payout is positive
        ("0", "er 0"),
        ("000,00", "er 0"),
        ("-5,00", "negativt"),
        ("\u22125,00", "negativt"),  # the typographic minus sign
        ("\u20135,00", "negativt"),  # an en dash, as spreadsheets autocorrect it
        ("5,00-", "negativt"),  # SAP's trailing minus
        ("1 234,50", "mellemrum"),  # a space is no thousands separator here
        ("1\u00a0234,50", "mellemrum"),
        ("1\u202f234,50", "mellemrum"),
        ("12 50", "mellemrum"),
        ("abc", "kun indeholde cifre"),
        ("12a", "kun indeholde cifre"),
        ("kr. 100", "kun indeholde cifre"),
        ("100kr", "kun indeholde cifre"),
        ("1e3", "kun indeholde cifre"),
        ("NaN", "kun indeholde cifre"),
        ("+5,00", "kun indeholde cifre"),
        ("\u0661\u0662\u0663", "kun indeholde cifre"),  # Arabic-Indic digits are no amount
        ("\uff11\uff12", "kun indeholde cifre"),  # full-width digits
        ("1,2,3", "mere end ét komma"),
        ("1,234,50", "mere end ét komma"),
        ("1,234.50", "blander"),  # mixed notation: English thousands comma, decimal dot
        ("1,5.0", "blander"),
        ("12,345", "mere end to decimaler"),  # three decimals
        ("1.2345", "mere end to decimaler"),
        ("1234,567", "mere end to decimaler"),
        ("1234.567", "to måder"),  # thousands by the rule, but 1234 is no group of three
        ("0.500", "to måder"),  # 500 or half a krone: not guessed
        ("1.234.56", "forkerte steder"),  # a thousands dot and a decimal dot
        ("1..234", "forkerte steder"),
        ("12.34.567", "forkerte steder"),
        ("1234.567.890", "forkerte steder"),
        ("12.34,50", "forkerte steder"),  # dot before a comma must group thousands
        ("1234.567,50", "forkerte steder"),
        ("0.123,45", "forkerte steder"),
        (".50", "før decimaltegnet"),
        (",50", "før decimaltegnet"),
        ("12,", "efter decimaltegnet"),
        ("12.", "efter decimaltegnet"),
        ("1000000000000", "for stort"),  # thirteen digits
        ("1.000.000.000.000,00", "for stort"),
        ("9" * 40, "for stort"),  # would overflow Decimal's precision when rounded to øre
    ],
)
def test_parse_amount_refuses(text, reason):
    with pytest.raises(AmountError, match=reason):
        parse_amount(text)


def test_amount_error_is_a_value_error():
    assert issubclass(AmountError, ValueError)


def test_error_quotes_the_cell_and_nothing_else():
    with pytest.raises(AmountError) as caught:
        parse_amount("  12,345 ")
    assert str(caught.value) == "Beløbet '12,345' har mere end to decimaler."


@pytest.mark.parametrize(
    "text", ["010158-5000", "0101585000 kr", "1,0101585000"], ids=["dashed", "with-text", "as-decimals"]
)
def test_error_never_shows_a_cpr_shaped_cell(text):
    # A CPR pasted into the amount column must not reach an exception text (and from there a log or a report).
    with pytest.raises(AmountError) as caught:
        parse_amount(text)
    assert "0101585000" not in str(caught.value)
    assert "010158" not in str(caught.value)
    assert "[CPR]" in str(caught.value)


def test_error_cuts_a_long_cell_short():
    with pytest.raises(AmountError) as caught:
        parse_amount("x" * 500)
    assert len(str(caught.value)) < 150


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0.1 + 0.2, "0.30"),  # 0.30000000000000004: binary noise, not a third decimal
        (1234.5, "1234.50"),
        (1234.56, "1234.56"),
        (1234.5600000001, "1234.56"),  # noise below 1e-9
        (0.01, "0.01"),
        (49999.99, "49999.99"),
        (123456789.12, "123456789.12"),  # above 2**23 a double cannot hold 1e-9: Excel's 15 digits decide
        (99999999999.99, "99999999999.99"),
        (sum([0.1] * 10), "1.00"),  # 0.9999999999999999
        (5, "5.00"),
        (1234, "1234.00"),
        (Decimal("1234.5"), "1234.50"),
        (Decimal("1.500"), "1.50"),  # trailing zeros are not decimals
        (Decimal("1E+2"), "100.00"),
        ("1.234,50", "1234.50"),  # a text cell is read like a CSV cell
        ("1234.50", "1234.50"),
    ],
)
def test_xlsx_amount_reads(value, expected):
    amount = xlsx_amount(value)
    assert isinstance(amount, Decimal)
    assert str(amount) == expected


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (2.675, "mere end to decimaler"),  # format(2.675, '.2f') would silently give 2.67
        (12.345, "mere end to decimaler"),
        (0.005, "mere end to decimaler"),
        (1234.560001, "mere end to decimaler"),
        (1 / 3, "mere end to decimaler"),
        (Decimal("1.005"), "mere end to decimaler"),
        (0.0, "er 0"),
        (-0.0, "er 0"),
        (0, "er 0"),
        (Decimal(0), "er 0"),
        (-5.0, "negativt"),
        (-5, "negativt"),
        (Decimal("-0.01"), "negativt"),
        (1e12, "for stort"),
        (1e300, "for stort"),
        (10**12, "for stort"),
        (Decimal("1E+40"), "for stort"),
        (float("nan"), "ikke et tal"),
        (float("inf"), "ikke et tal"),
        (Decimal("NaN"), "ikke et tal"),
        (Decimal("sNaN"), "ikke et tal"),
        (Decimal("-Infinity"), "ikke et tal"),
        (True, "ikke et tal"),  # bool is an int to Python, not an amount
        (None, "ikke et tal"),
        ("12,345", "mere end to decimaler"),
        ("", "mangler"),
    ],
)
def test_xlsx_amount_refuses(value, reason):
    with pytest.raises(AmountError, match=reason):
        xlsx_amount(value)


def test_xlsx_error_never_shows_a_cpr_shaped_number():
    # 0101585000 typed into a number cell loses its leading zero and then has too many decimals here.
    with pytest.raises(AmountError) as caught:
        xlsx_amount(101585000.001)
    assert "101585000" not in str(caught.value)
