"""Formula neutralisation in the CSV files the project writes: text neutralised, numbers left alone."""

import csv
import io
from datetime import date
from decimal import Decimal

import pytest

from shared.spreadsheet import csv_bytes, csv_pieces, neutralise


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ('=HYPERLINK("http://x")', '\'=HYPERLINK("http://x")'),
        ("+45 1234", "'+45 1234"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tcmd", "'\tcmd"),
        ("\rcmd", "'\rcmd"),
        ("Krav 12", "Krav 12"),
        ("", ""),
        ("a=b", "a=b"),
    ],
)
def test_neutralise(text, shown):
    assert neutralise(text) == shown


def test_numbers_are_danish_and_never_neutralised():
    body = csv_bytes(("tekst", "beloeb", "antal", "dato"), [["=1+1", Decimal("-1234.5"), -3, date(2026, 12, 24)]])
    assert body.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig")), delimiter=";"))
    assert rows == [["tekst", "beloeb", "antal", "dato"], ["'=1+1", "-1234,50", "-3", "24.12.2026"]]


def test_pieces_join_to_the_whole_and_carry_one_header():
    rows = [[f"r{n}", Decimal(n)] for n in range(2500)]
    pieces = list(csv_pieces(("a", "b"), rows, rows_per_piece=1000))
    assert len(pieces) == 3 and b"".join(pieces) == csv_bytes(("a", "b"), rows)
    assert b"".join(pieces).count(b"a;b\r\n") == 1
