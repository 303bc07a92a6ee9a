"""Payee ids in the claims file: CPR, CVR, SE and P numbers, checked by the rules in the brief.

CPR is checked for format and date only, never modulus 11: since 2007 numbers that fail it are issued and
fully valid. python-stdnum's `stdnum.dk.cpr` does not check modulus 11 either, but it refuses birth dates
after today and SKAT's constructed numbers (day + 60), so its validate is not used here. No function here
ever puts the number into an exception message: the caller names the row and column instead.
"""

import re
from datetime import date

from stdnum.dk import cvr as dk_cvr

# [0-9], not \d: \d also matches Arabic-Indic and other Unicode digits, which int() would then happily read.
_CPR_DASHED = re.compile(r"([0-9]{6})-([0-9]{4})")
_TEN_DIGITS = re.compile(r"[0-9]{10}")
_NINE_DIGITS = re.compile(r"[0-9]{9}")
_EIGHT_DIGITS = re.compile(r"[0-9]{8}")

#: SKAT's constructed numbers for people without a CPR add 60 to the day of birth (days 61-91).
CONSTRUCTED_DAY_OFFSET = 60


class IdentifierError(ValueError):
    """A payee id that cannot be read; the message is Danish and never contains the number."""


def normalise_cpr(text: str) -> str:
    """A CPR as ten digits, from DDMMYY-XXXX, ten digits, or nine (a spreadsheet dropped the leading zero)."""
    cell = text.strip()
    if match := _CPR_DASHED.fullmatch(cell):
        return match[1] + match[2]
    if _TEN_DIGITS.fullmatch(cell):
        return cell
    if _NINE_DIGITS.fullmatch(cell):
        # Stored as a number, 010158-5000 becomes 101585000: only a leading zero can have gone.
        return "0" + cell
    raise IdentifierError("CPR-nummeret skal være 10 cifre, eventuelt skrevet DDMMÅÅ-XXXX.")


def cpr_birth_date(text: str) -> date:
    """The birth date a CPR states, the century from the 7th digit and the year (day + 60 for SKAT's numbers)."""
    number = normalise_cpr(text)
    day, month, yy, seventh = int(number[0:2]), int(number[2:4]), int(number[4:6]), int(number[6])
    if day > CONSTRUCTED_DAY_OFFSET:
        day -= CONSTRUCTED_DAY_OFFSET
    if seventh <= 3:
        century = 1900
    elif seventh in (4, 9):
        century = 2000 if yy <= 36 else 1900
    else:  # 5-8
        century = 2000 if yy <= 57 else 1800
    try:
        return date(century + yy, month, day)
    except ValueError:
        # date's own message would quote the day and month; the number stays out of exception texts.
        raise IdentifierError("CPR-nummerets første seks cifre er ikke en gyldig dato.") from None


def cpr_valid(text: str) -> bool:
    """Whether text is a CPR by format and date (DDMMYY-XXXX, ten or nine digits); never modulus 11."""
    try:
        cpr_birth_date(text)
    except IdentifierError:
        return False
    return True


def cpr_payable(text: str) -> bool:
    """Whether a CPR can be paid through NemKonto: valid and not one of SKAT's constructed numbers."""
    return cpr_valid(text) and int(normalise_cpr(text)[0:2]) <= CONSTRUCTED_DAY_OFFSET


def cvr_valid(text: str) -> bool:
    """Whether text is a CVR number: eight digits, weights 2,7,6,5,4,3,2,1, sum divisible by 11."""
    cell = text.strip()
    # stdnum also strips separators and a DK prefix; the claims file must hold the bare eight digits.
    return bool(_EIGHT_DIGITS.fullmatch(cell)) and dk_cvr.is_valid(cell)


def se_valid(text: str) -> bool:
    """Whether text is an SE number: eight digits, format only (the brief gives no check digit)."""
    return bool(_EIGHT_DIGITS.fullmatch(text.strip()))


def p_number_valid(text: str) -> bool:
    """Whether text is a P number: ten digits, deliberately not checksummed."""
    return bool(_TEN_DIGITS.fullmatch(text.strip()))
