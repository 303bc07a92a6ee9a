"""The CSV files the project writes for people: Danish notation, opened in Excel, and safe to open there.

A text cell that begins with `=`, `+`, `-`, `@`, a tab or a carriage return would be read by a spreadsheet as
a formula (CSV/formula injection: a claim id or a name from an input file is attacker-controlled). Such a cell
is neutralised by a leading apostrophe, as OWASP recommends. Amounts and counts are numbers, not text: they
are written in Danish notation and never neutralised, so a negative amount stays a number.
"""

import csv
import io
from collections.abc import Iterable, Iterator, Sequence
from datetime import date
from decimal import Decimal

#: What makes a spreadsheet read a text cell as a formula.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

Cell = str | int | Decimal | date | None


def neutralise(text: str) -> str:
    """A text cell a spreadsheet shows as text: prefixed with an apostrophe when it would start a formula."""
    return f"'{text}" if text.startswith(FORMULA_STARTS) else text


def danish_amount(amount: Decimal) -> str:
    """An amount as a Danish spreadsheet reads a number: comma decimals, two places, no thousands separator."""
    return f"{amount.quantize(Decimal('0.01')):f}".replace(".", ",")


def _cell(value: Cell) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):  # a bool is an int: written as a Danish word, not 1/0
        return "ja" if value else "nej"
    if isinstance(value, Decimal):
        return danish_amount(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, date):
        return value.strftime("%d.%m.%Y")
    return neutralise(value)


def csv_pieces(header: Sequence[str], rows: Iterable[Sequence[Cell]], rows_per_piece: int = 1000) -> Iterator[bytes]:
    """A `;` CSV with a BOM (Excel opens it as UTF-8) and CRLF lines, in pieces (for a streamed upload); text
    neutralised, numbers left as numbers."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
    out.write("\ufeff")
    writer.writerow([neutralise(name) for name in header])
    for number, row in enumerate(rows, start=1):
        writer.writerow([_cell(value) for value in row])
        if number % rows_per_piece == 0:
            yield out.getvalue().encode("utf-8")
            out.seek(0)
            out.truncate()
    yield out.getvalue().encode("utf-8")


def csv_bytes(header: Sequence[str], rows: Iterable[Sequence[Cell]]) -> bytes:
    """`csv_pieces` as one piece."""
    return b"".join(csv_pieces(header, rows))
