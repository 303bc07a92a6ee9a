"""The claims file reader: encodings, headers, bad files, XLSX conversion and bombs, streaming."""

import io
import random
import zipfile
from collections.abc import Iterator
from datetime import date, datetime

import openpyxl
import pytest

from functions.claim_payouts.reader import COLUMNS, ClaimsFileError, RawClaim, detect_format, iter_rows

HEADER = ";".join(COLUMNS)
# A synthetic payee born 1860 (7th digit 5, YY 60 > 57): no living person's number.
SYNTHETIC_CPR = "0101605000"


def row(**overrides: str) -> dict[str, str]:
    """A valid claim row as column -> text."""
    values = {
        "krav_id": "K-1",
        "modtager_type": "CPR",
        "modtager_id": SYNTHETIC_CPR,
        "modtager_navn": "Test Person",
        "beloeb": "1.234,50",
        "valuta": "DKK",
        "posteringstekst": "Refusion",
        "bilagstekst": "Krav",
        "reference": "REF-1",
        "artskonto": "40000000",
        "omkostningssted": "1234567890",
        "psp_element": "",
        "bilag": "B-1",
        "godkendt_af": "GODK",
        "godkendt_dato": "01-02-2026",
        "anmodet_af": "ANMO",
        "anmoder_email": "anmoder@example.org",
    }
    values.update(overrides)
    return values


def csv_bytes(rows: list[dict[str, str]], columns: tuple[str, ...] = COLUMNS, encoding: str = "utf-8") -> bytes:
    """A CSV claims file with the given column order."""
    lines = [";".join(columns)] + [";".join(r[c] for c in columns) for r in rows]
    return ("\r\n".join(lines) + "\r\n").encode(encoding)


def read(data: bytes, **kwargs: int) -> list[RawClaim]:
    """Every row of an in-memory file."""
    return list(iter_rows(io.BytesIO(data), **kwargs))


def file_error(data: bytes, **kwargs: int) -> ClaimsFileError:
    """The file error reading data raises."""
    with pytest.raises(ClaimsFileError) as caught:
        read(data, **kwargs)
    return caught.value


# --- CSV ----------------------------------------------------------------------------------------------


def test_csv_utf8_rows_are_read_with_line_numbers() -> None:
    claims = read(csv_bytes([row(), row(krav_id="K-2", beloeb="10,00")]))
    assert [c.krav_id for c in claims] == ["K-1", "K-2"]
    assert [c.line for c in claims] == [2, 3]
    assert claims[0].modtager_id == SYNTHETIC_CPR
    assert claims[0].beloeb == "1.234,50"  # raw text; amounts.parse_amount reads it later
    assert claims[0].psp_element == ""
    assert claims[0].error is None


def test_header_in_another_order() -> None:
    columns = tuple(reversed(COLUMNS))
    claims = read(csv_bytes([row(reference="R-9")], columns=columns))
    assert claims[0].reference == "R-9"
    assert claims[0].krav_id == "K-1"


def test_utf8_bom_is_stripped() -> None:
    claims = read(b"\xef\xbb\xbf" + csv_bytes([row(modtager_navn="Søren Ærø")]))
    assert claims[0].krav_id == "K-1"
    assert claims[0].modtager_navn == "Søren Ærø"


def test_cp1252_with_danish_letters_is_decoded() -> None:
    data = csv_bytes([row(modtager_navn="Åse Ødegård Æbelø", posteringstekst="Tilbagebetaling")], encoding="cp1252")
    assert not data.isascii()
    claims = read(data)
    assert claims[0].modtager_navn == "Åse Ødegård Æbelø"


def test_cp1252_letters_first_appearing_far_into_the_file() -> None:
    rows = [row(krav_id=f"K-{n}") for n in range(2000)] + [row(krav_id="K-last", modtager_navn="Bjørn")]
    claims = read(csv_bytes(rows, encoding="cp1252"))
    assert claims[-1].modtager_navn == "Bjørn"


def test_mixed_encodings_are_refused() -> None:
    data = csv_bytes([row(modtager_navn="Søren")]) + csv_bytes([row(modtager_navn="Bjørn")], encoding="cp1252")
    # UTF-8 decided by the first non-ASCII line; a later Windows-1252 line is refused, not misread
    assert file_error(data).code == "FORKERT_TEGNSAET"


def test_quoted_fields_and_last_line_without_newline() -> None:
    text = (
        HEADER + "\n" + ";".join(f'"{v}"' if k == "modtager_navn" else v for k, v in row(modtager_navn="A; B").items())
    )
    claims = read(text.encode())
    assert claims[0].modtager_navn == "A; B"
    assert claims[0].anmoder_email == "anmoder@example.org"


def test_cells_are_stripped_and_blank_rows_skipped() -> None:
    data = (
        csv_bytes([row(krav_id="  K-1 ")])
        + b"\r\n;;;;;;;;;;;;;;;;\r\n"
        + csv_bytes([row(krav_id="K-2")])[len(HEADER) + 2 :]
    )
    claims = read(data)
    assert [c.krav_id for c in claims] == ["K-1", "K-2"]
    assert [c.line for c in claims] == [2, 5]


def test_missing_columns_are_named() -> None:
    columns = tuple(c for c in COLUMNS if c not in ("beloeb", "anmoder_email"))
    error = file_error(csv_bytes([row()], columns=columns))
    assert error.code == "MANGLENDE_KOLONNER"
    assert "beloeb" in str(error)
    assert "anmoder_email" in str(error)


def test_unknown_columns_are_named() -> None:
    data = (HEADER + ";ekstra\n" + ";".join(row().values()) + ";x\n").encode()
    error = file_error(data)
    assert error.code == "UKENDTE_KOLONNER"
    assert "ekstra" in str(error)


def test_a_misspelt_column_is_named_as_missing_and_unknown() -> None:
    data = (HEADER.replace("beloeb", "belob") + "\n" + ";".join(row().values()) + "\n").encode()
    error = file_error(data)
    assert error.code == "MANGLENDE_KOLONNER"
    assert "beloeb" in str(error)
    assert "belob" in str(error)


def test_a_file_without_header_does_not_quote_its_first_row() -> None:
    data = (";".join(row().values()) + "\n").encode()
    error = file_error(data)
    assert error.code == "MANGLENDE_KOLONNER"
    assert SYNTHETIC_CPR not in str(error)
    assert "Test Person" not in str(error)


def test_unknown_cpr_shaped_column_name_is_redacted() -> None:
    data = (HEADER + f";{SYNTHETIC_CPR}\n" + ";".join(row().values()) + ";\n").encode()
    error = file_error(data)
    assert error.code == "UKENDTE_KOLONNER"
    assert SYNTHETIC_CPR not in str(error)


def test_duplicate_columns_are_refused() -> None:
    data = (HEADER + ";krav_id\n" + ";".join(row().values()) + ";K\n").encode()
    assert file_error(data).code == "DUBLEREDE_KOLONNER"


@pytest.mark.parametrize("data", [b"", b"\xef\xbb\xbf"], ids=["empty", "bom-only"])
def test_empty_file(data: bytes) -> None:
    assert file_error(data).code == "TOM_FIL"


@pytest.mark.parametrize("data", [HEADER.encode(), (HEADER + "\r\n").encode(), (HEADER + "\n\n;;;\n").encode()])
def test_header_only(data: bytes) -> None:
    error = file_error(data)
    assert error.code == "TOM_FIL"
    assert "overskriften" in str(error)


def test_unterminated_quote_at_end_is_a_truncated_file() -> None:
    good = csv_bytes([row()])
    cut = good + ";".join(row(krav_id="K-2").values()).replace("Test Person", '"Test Per').encode()
    error = file_error(cut)
    assert error.code == "AFKORTET_FIL"
    assert error.line == 3


def test_a_row_with_the_wrong_number_of_fields_is_a_row_error() -> None:
    data = csv_bytes([row()]) + b"K-2;CPR;too;few\r\n" + csv_bytes([row(krav_id="K-3")])[len(HEADER) + 2 :]
    claims = read(data)
    assert [c.krav_id for c in claims] == ["K-1", "K-2", "K-3"]
    assert claims[1].error is not None
    assert "4 felter" in claims[1].error
    assert claims[0].error is None
    assert claims[2].error is None


def test_a_trailing_empty_field_is_tolerated() -> None:
    data = (HEADER + ";\n" + ";".join(row().values()) + ";\n").encode()
    assert read(data)[0].error is None


def test_bad_quoting_mid_file_is_a_row_error() -> None:
    bad = ";".join(row(krav_id="K-2").values()).replace("Test Person", '"Test" Person')
    data = csv_bytes([row()]) + bad.encode() + b"\r\n" + csv_bytes([row(krav_id="K-3")])[len(HEADER) + 2 :]
    claims = read(data)
    assert claims[1].line == 3
    assert claims[1].error is not None
    assert claims[2].krav_id == "K-3"


def test_random_bytes_are_refused() -> None:
    noise = random.Random(7).randbytes(4096)
    assert file_error(noise).code in {"FORKERT_TEGNSAET", "UKENDT_FORMAT"}


def test_random_high_bytes_without_nul_are_refused() -> None:
    noise = bytes(b or 1 for b in random.Random(8).randbytes(4096))
    assert file_error(noise).code in {"FORKERT_TEGNSAET", "UKENDT_FORMAT", "MANGLENDE_KOLONNER"}


def test_utf16_is_a_wrong_encoding() -> None:
    assert file_error(csv_bytes([row()], encoding="utf-16")).code == "FORKERT_TEGNSAET"


# --- format detection ---------------------------------------------------------------------------------


def test_detect_format() -> None:
    assert detect_format(b"krav_id;modtager_type") == "csv"
    assert detect_format(b"PK\x03\x04rest") == "xlsx"
    with pytest.raises(ClaimsFileError) as caught:
        detect_format(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1")
    assert caught.value.code == "UKENDT_FORMAT"
    with pytest.raises(ClaimsFileError) as caught:
        detect_format(b"")
    assert caught.value.code == "TOM_FIL"


# --- XLSX ---------------------------------------------------------------------------------------------


def workbook_bytes(rows: list[list[object]], second_sheet: bool = False) -> bytes:
    """An XLSX whose first sheet holds rows (row 1 the header)."""
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    for values in rows:
        sheet.append(values)
    if second_sheet:
        other = workbook.create_sheet("Andet")
        other.append(["ikke", "en", "overskrift"])
        other.append([1, 2, 3])
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def xlsx_row(**overrides: object) -> list[object]:
    """A claim row for a sheet, the numbers as numbers."""
    values: dict[str, object] = dict(row())
    values.update(modtager_id=101585000, beloeb=1234.5, godkendt_dato=date(2026, 2, 1), artskonto=40000000)
    values.update(overrides)
    return [values[c] for c in COLUMNS]


def test_xlsx_first_sheet_values_become_text() -> None:
    data = workbook_bytes([list(COLUMNS), xlsx_row()], second_sheet=True)
    claims = read(data)
    assert len(claims) == 1
    claim = claims[0]
    assert claim.line == 2
    assert claim.beloeb == "1234.50"
    assert claim.modtager_id == "101585000"  # the leading zero is restored later by normalise_cpr
    assert claim.godkendt_dato == "2026-02-01"
    assert claim.artskonto == "40000000"
    assert claim.krav_id == "K-1"
    assert claim.psp_element == ""
    assert claim.error is None


def test_xlsx_header_order_text_amounts_and_datetimes() -> None:
    columns = list(reversed(COLUMNS))
    values = dict(zip(COLUMNS, xlsx_row(beloeb="1.234,50", godkendt_dato=datetime(2026, 3, 4, 0, 0)), strict=True))
    data = workbook_bytes([columns, [values[c] for c in columns]])
    claim = read(data)[0]
    assert claim.beloeb == "1.234,50"
    assert claim.godkendt_dato == "2026-03-04"


def test_xlsx_amount_with_three_decimals_is_a_row_error() -> None:
    data = workbook_bytes([list(COLUMNS), xlsx_row(beloeb=2.675), xlsx_row(krav_id="K-2")])
    claims = read(data)
    assert claims[0].error is not None
    assert "decimaler" in claims[0].error
    assert claims[1].error is None


def test_xlsx_header_only_and_missing_columns() -> None:
    assert file_error(workbook_bytes([list(COLUMNS)])).code == "TOM_FIL"
    error = file_error(workbook_bytes([list(COLUMNS[:-1]), xlsx_row()[:-1]]))
    assert error.code == "MANGLENDE_KOLONNER"
    assert "anmoder_email" in str(error)


def test_zip_that_is_no_workbook() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("readme.txt", "hej")
    assert file_error(buffer.getvalue()).code == "UKENDT_FORMAT"


def test_truncated_zip_is_unknown_format() -> None:
    data = workbook_bytes([list(COLUMNS), xlsx_row()])
    assert file_error(data[: len(data) // 2]).code == "UKENDT_FORMAT"


def bomb(member_size: int) -> bytes:
    """A real workbook with an extra member of zeros that compresses about a thousand to one."""
    source = zipfile.ZipFile(io.BytesIO(workbook_bytes([list(COLUMNS), xlsx_row()])))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for info in source.infolist():
            archive.writestr(info, source.read(info))
        archive.writestr("xl/media/fyld.bin", b"\0" * member_size)
    return buffer.getvalue()


def test_zip_bomb_over_the_size_limit() -> None:
    data = bomb(3 * 1024 * 1024)
    assert len(data) < 100 * 1024
    assert file_error(data, max_xlsx_uncompressed=2 * 1024 * 1024).code == "XLSX_FOR_STOR"


def test_zip_bomb_over_the_ratio_limit() -> None:
    assert file_error(bomb(3 * 1024 * 1024)).code == "XLSX_FOR_STOR"


def test_openpyxl_parses_with_defusedxml() -> None:
    assert openpyxl.DEFUSEDXML is True


# --- streaming ----------------------------------------------------------------------------------------


class CountingStream(io.RawIOBase):
    """A stream generated row by row that counts the bytes handed out."""

    def __init__(self, rows: int) -> None:
        self.bytes_read = 0
        self.exhausted = False
        self._chunks = self._generate(rows)
        self._pending = b""

    @staticmethod
    def _generate(rows: int) -> Iterator[bytes]:
        yield (HEADER + "\r\n").encode()
        for n in range(rows):
            yield (";".join(row(krav_id=f"K-{n}").values()) + "\r\n").encode()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        while not self._pending:
            chunk = next(self._chunks, None)
            if chunk is None:
                self.exhausted = True
                return 0
            self._pending = chunk
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        self.bytes_read += size
        return size


def test_rows_are_streamed_lazily() -> None:
    stream = CountingStream(100_000)
    rows = iter_rows(stream)
    first = next(rows)
    assert first.krav_id == "K-0"
    assert not stream.exhausted
    assert stream.bytes_read < 256 * 1024  # of about 15 MB
    count = 1 + sum(1 for _ in rows)
    assert count == 100_000
    assert stream.exhausted
