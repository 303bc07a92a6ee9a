"""Amounts in the claims file, read into `Decimal` with two places, or refused with a Danish reason.

A CSV cell holds text in whichever notation the exporting spreadsheet used: `1.234,50`, `1234,50` and
`1234.50` are the same amount. A dot is a thousands separator only when exactly three digits follow it and
there is no comma; otherwise a lone dot is the decimal point. Anything that could be read two ways is
refused rather than guessed, because a wrong guess pays a thousand times too much or too little.

A payout is positive: zero and negative amounts are refused here, so every amount that leaves this module
is above zero and has at most two decimals.
"""

import math
import re
from decimal import ROUND_HALF_EVEN, Decimal, localcontext

from shared.personal_data import redact

#: Two places: DKK in øre, as the posting file writes them.
CENT = Decimal("0.01")

#: At most twelve digits before the decimal point (under a trillion DKK). Far above any payout; it keeps
#: Decimal arithmetic inside its default 28-digit precision, where quantize would otherwise fail.
MAX_INTEGER_DIGITS = 12

#: Decimals a float from XLSX is first rounded to: what is left below this is binary noise (0.1 + 0.2).
FLOAT_NOISE_EXPONENT = -9

#: Excel keeps 15 significant digits; beyond that a number from a workbook is binary noise whatever its size.
EXCEL_SIGNIFICANT_DIGITS = 15

#: How much of a cell an error message shows: enough to find it, never more than the cell.
SHOWN_CHARACTERS = 30

_MINUS_SIGNS = "-\u2212\u2013"  # hyphen-minus, the minus sign and an en dash (what spreadsheets autocorrect to)
_NOTATION = re.compile(r"[0-9.,]+")
_NOTATION_OR_SPACE = re.compile(r"[0-9.,\s]+")  # \s: every Unicode space, the no-break ones included
_INTEGER = re.compile(r"[0-9]+")
_GROUPED = re.compile(r"[1-9][0-9]{0,2}(?:\.[0-9]{3})+")
_EXAMPLE = "fx 1.234,50 eller 1234,50"


class AmountError(ValueError):
    """An amount that cannot be paid out as written; the message is Danish and meant for the clerk."""


def _shown(cell: str) -> str:
    """The cell as an error message may quote it: CPR-shaped runs redacted, long cells cut short."""
    text = redact(cell)
    return text if len(text) <= SHOWN_CHARACTERS else text[:SHOWN_CHARACTERS] + "…"


def _checked(amount: Decimal, shown: str) -> Decimal:
    """The amount with two places, refused if it has more decimals, is too large, or is not above zero."""
    if abs(amount) >= Decimal(10) ** MAX_INTEGER_DIGITS:
        raise AmountError(f"Beløbet '{shown}' er for stort til at være et krav.")
    if amount != amount.quantize(CENT):
        raise AmountError(f"Beløbet '{shown}' har mere end to decimaler.")
    if amount < 0:
        raise AmountError(f"Beløbet '{shown}' er negativt; en udbetaling skal være et positivt beløb.")
    if amount == 0:
        raise AmountError(f"Beløbet '{shown}' er 0; en udbetaling skal være større end 0.")
    return amount.quantize(CENT)


def parse_amount(text: str) -> Decimal:
    """An amount cell from the claims file as a positive Decimal with two places; AmountError if unreadable."""
    cell = text.strip()
    shown = _shown(cell)
    if not cell:
        raise AmountError("Beløbet mangler.")
    if cell[0] in _MINUS_SIGNS or cell[-1] in _MINUS_SIGNS:  # a trailing minus is how SAP writes a negative
        raise AmountError(f"Beløbet '{shown}' er negativt; en udbetaling skal være et positivt beløb.")
    if not _NOTATION_OR_SPACE.fullmatch(cell):
        raise AmountError(f"Beløbet '{shown}' må kun indeholde cifre, punktum og komma, {_EXAMPLE}.")
    if not _NOTATION.fullmatch(cell):
        # A space could be a thousands separator or two numbers run together: refused, not guessed.
        raise AmountError(f"Beløbet '{shown}' indeholder mellemrum; skriv det uden mellemrum, {_EXAMPLE}.")
    if cell.count(",") > 1:
        raise AmountError(f"Beløbet '{shown}' har mere end ét komma.")
    if "," in cell:
        integer, decimals = cell.split(",")
        if "." in decimals:
            raise AmountError(f"Beløbet '{shown}' blander engelsk og dansk skrivemåde; skriv {_EXAMPLE}.")
        if "." in integer:
            if not _GROUPED.fullmatch(integer):
                raise AmountError(
                    f"Beløbet '{shown}' har punktum forkerte steder; punktum må kun adskille tusinder ({_EXAMPLE})."
                )
            integer = integer.replace(".", "")
    elif "." not in cell:
        integer, decimals = cell, "00"
    elif _GROUPED.fullmatch(cell):
        integer, decimals = cell.replace(".", ""), "00"
    elif cell.count(".") == 1:
        integer, decimals = cell.split(".")
        if len(decimals) == 3:
            # Three digits after the dot would make it a thousands separator, but the digits before it are
            # not grouped in threes (1234.567, 0.500): it could be either, so a person decides.
            raise AmountError(f"Beløbet '{shown}' kan læses på to måder; skriv {_EXAMPLE}.")
    else:
        raise AmountError(
            f"Beløbet '{shown}' har punktum forkerte steder; punktum må kun adskille tusinder ({_EXAMPLE})."
        )
    if not _INTEGER.fullmatch(integer):
        raise AmountError(f"Beløbet '{shown}' mangler cifre før decimaltegnet.")
    if not decimals:
        raise AmountError(f"Beløbet '{shown}' mangler cifre efter decimaltegnet.")
    if len(decimals) > 2:
        raise AmountError(f"Beløbet '{shown}' har mere end to decimaler.")
    if len(integer.lstrip("0")) > MAX_INTEGER_DIGITS:
        raise AmountError(f"Beløbet '{shown}' er for stort til at være et krav.")
    return _checked(Decimal(f"{integer}.{decimals}"), shown)


def _without_float_noise(exact: Decimal) -> Decimal:
    """A float's exact binary value rounded to 1e-9, or to Excel's 15 significant digits when that is coarser.

    A double cannot hold 1e-9 above about 8.4 million, so 1e-9 alone would refuse large amounts typed as
    exactly two decimals; 15 significant digits is all Excel itself ever stored for them.
    """
    if exact == 0:
        return exact
    exponent = max(FLOAT_NOISE_EXPONENT, exact.adjusted() - (EXCEL_SIGNIFICANT_DIGITS - 1))
    with localcontext() as context:
        context.prec = 60  # room for every binary digit: only the exponent rounds, never the precision
        return exact.quantize(Decimal(1).scaleb(exponent), rounding=ROUND_HALF_EVEN)


def xlsx_amount(value: float | int | Decimal | str) -> Decimal:
    """An XLSX amount cell (number or text) as a positive Decimal with two places; AmountError if unreadable.

    Numbers are never rounded to two places: after removing binary noise (0.1 + 0.2 is 0.30000000000000004)
    a number with a third significant decimal is refused, because `format(2.675, '.2f')` silently pays 2.67.
    """
    if isinstance(value, str):
        return parse_amount(value)  # a text cell holds the notation as typed, like a CSV cell
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        # bool is an int to Python; a TRUE in the amount column is no amount.
        raise AmountError("Cellen med beløbet er ikke et tal.")
    if (isinstance(value, float) and not math.isfinite(value)) or (
        isinstance(value, Decimal) and not value.is_finite()
    ):
        raise AmountError("Cellen med beløbet er ikke et tal.")
    if isinstance(value, int | Decimal) and abs(value) >= 10**MAX_INTEGER_DIGITS:
        raise AmountError("Beløbet er for stort til at være et krav.")
    if isinstance(value, float):
        if abs(value) >= 10**MAX_INTEGER_DIGITS:
            raise AmountError("Beløbet er for stort til at være et krav.")
        amount = _without_float_noise(Decimal(value))  # Decimal(float) is the exact binary value
    else:
        amount = Decimal(value)
    return _checked(amount, _shown(format(amount.normalize(), "f").replace(".", ",")))
