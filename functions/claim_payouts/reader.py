"""The claims file read row by row: CSV (UTF-8, UTF-8 with BOM or Windows-1252, `;`) or XLSX (first sheet).

Pure: it reads a binary file-like object and knows nothing of Azure. A file that cannot be read at all raises
`ClaimsFileError` with a Danish message for the clerk and a `code`; a single bad row is no file error, it comes
back as a `RawClaim` whose `error` says what is wrong, and the rest of the file proceeds.

Decisions:

- Encoding (CSV) is decided per line, not from one chunk: lines are read as bytes (`\\n` never occurs inside a
  UTF-8 or Windows-1252 character), ASCII lines need no decision, and the first line holding other bytes
  decides: valid UTF-8 wins, otherwise Windows-1252. That keeps the read streaming (one line in memory) and
  still gets a Windows-1252 file right when its first `æøå` comes after any fixed-size prefix. A later line
  that does not decode in the chosen encoding (or, in a Windows-1252 file, is valid UTF-8 with non-ASCII
  letters, i.e. a mixed file) is `FORKERT_TEGNSAET`, naming the line. A BOM means UTF-8.
- Rows whose cells are all empty (the trailing `;;;;` rows spreadsheets export) and blank lines are skipped;
  line numbers still count them. Extra trailing fields that are empty are tolerated (a trailing `;`).
- A row with the wrong number of fields, or quoting the CSV parser refuses, is a row error. An unterminated
  quote that runs to the end of the file means the file was cut short: `AFKORTET_FIL`. Because rows stream,
  that error (and an encoding error late in the file) arrives after earlier rows were yielded: the caller
  must treat any `ClaimsFileError` as rejecting the whole file, whenever it comes.
- XLSX is spooled (memory, then a temporary file) because a ZIP is read from its end; the spool is capped by
  the uncompressed limit. Before openpyxl sees it, the ZIP's directory is checked: too many members, a total
  uncompressed size above the limit, or a member above 1 MiB compressing better than the ratio limit is
  `XLSX_FOR_STOR`. `zipfile` never returns more than a member's declared size, so the declared sizes bound
  what openpyxl can inflate. openpyxl parses with defusedxml when it is installed (`openpyxl.DEFUSEDXML`);
  the reader refuses XLSX if that ever turns false, rather than parse untrusted XML without it.
- Error messages name columns and lines, never cell contents; an unknown column name (a header cell) is
  shown redacted and cut short, and a first line that matches no column at all is not quoted.
"""

import csv
import io
import tempfile
import zipfile
from collections.abc import Iterable, Iterator
from datetime import date, datetime, time
from decimal import Decimal
from typing import IO, Literal

from functions.claim_payouts.amounts import AmountError, xlsx_amount
from shared.models import BoundaryModel
from shared.personal_data import redact

#: The claims file's columns, exactly as the brief names them, in the brief's order.
COLUMNS: tuple[str, ...] = (
    "krav_id",
    "modtager_type",
    "modtager_id",
    "modtager_navn",
    "beloeb",
    "valuta",
    "posteringstekst",
    "bilagstekst",
    "reference",
    "artskonto",
    "omkostningssted",
    "psp_element",
    "bilag",
    "godkendt_af",
    "godkendt_dato",
    "anmodet_af",
    "anmoder_email",
)
AMOUNT_COLUMN = "beloeb"

#: How much of the file's start is looked at to tell CSV from XLSX.
HEAD_BYTES = 8 * 1024
#: A CSV line longer than this is no claim; it is refused rather than held in memory.
MAX_LINE_BYTES = 1024 * 1024
#: Default cap on an XLSX's total uncompressed size.
MAX_XLSX_UNCOMPRESSED = 200 * 1024 * 1024
#: Default cap on how much better than this a large member may compress.
MAX_XLSX_RATIO = 100
#: Members smaller than this are not ratio-checked: tiny XML parts compress very well and harmlessly.
RATIO_CHECKED_FROM = 1024 * 1024
#: A workbook has a few dozen parts; thousands is a ZIP built to exhaust something.
MAX_XLSX_MEMBERS = 10_000
#: XLSX spool kept in memory up to this size, then on disk.
SPOOL_IN_MEMORY = 16 * 1024 * 1024
#: How much of an unknown column name a message shows.
SHOWN_NAME_CHARACTERS = 30
SHOWN_NAMES = 10

_ZIP_MAGIC = b"PK\x03\x04"
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # the old .xls (and .doc) container
_UTF8_BOM = b"\xef\xbb\xbf"
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
_CONTENT_TYPES = "[Content_Types].xml"
_WORKBOOK = "xl/workbook.xml"


class ClaimsFileError(ValueError):
    """A claims file that cannot be read at all; the message is Danish and never quotes a cell's content."""

    def __init__(self, code: str, message: str, *, line: int | None = None, column: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.line = line
        self.column = column


class RawClaim(BoundaryModel):
    """One row of the claims file as stripped text ('' for empty), with its line and any row-level error."""

    line: int
    krav_id: str = ""
    modtager_type: str = ""
    modtager_id: str = ""
    modtager_navn: str = ""
    beloeb: str = ""
    valuta: str = ""
    posteringstekst: str = ""
    bilagstekst: str = ""
    reference: str = ""
    artskonto: str = ""
    omkostningssted: str = ""
    psp_element: str = ""
    bilag: str = ""
    godkendt_af: str = ""
    godkendt_dato: str = ""
    anmodet_af: str = ""
    anmoder_email: str = ""
    #: Why this row cannot be read as a claim (Danish), or None; the other rows are unaffected.
    error: str | None = None


def detect_format(head: bytes) -> Literal["csv", "xlsx"]:
    """Whether the file's first bytes are an XLSX (a ZIP) or text; ClaimsFileError for empty or other binaries."""
    if not head:
        raise ClaimsFileError("TOM_FIL", "Filen er tom.")
    if head.startswith(_ZIP_MAGIC):
        # The members are listed at the ZIP's end; whether it is a workbook is checked on the whole file.
        return "xlsx"
    if head.startswith(_OLE_MAGIC):
        raise ClaimsFileError(
            "UKENDT_FORMAT", "Filen er i det gamle Excel-format (.xls); gem den som .xlsx eller som CSV."
        )
    if head.startswith(_UTF16_BOMS):
        raise ClaimsFileError(
            "FORKERT_TEGNSAET", "Filen er gemt som UTF-16; gem den som CSV i UTF-8 eller Windows-1252."
        )
    if b"\x00" in head:
        raise ClaimsFileError("UKENDT_FORMAT", "Filen er hverken en CSV-fil eller et Excel-regneark (.xlsx).")
    return "csv"


def iter_rows(
    stream: IO[bytes],
    *,
    max_xlsx_uncompressed: int = MAX_XLSX_UNCOMPRESSED,
    max_xlsx_ratio: int = MAX_XLSX_RATIO,
) -> Iterator[RawClaim]:
    """The claims in a CSV or XLSX stream, one at a time; ClaimsFileError when the file cannot be read."""
    head = _read_up_to(stream, HEAD_BYTES)
    kind = detect_format(head)
    source = io.BufferedReader(_Prefixed(head, stream))
    if kind == "csv":
        yield from _csv_rows(source)
    else:
        yield from _xlsx_rows(source, max_xlsx_uncompressed, max_xlsx_ratio)


def _read_up_to(stream: IO[bytes], size: int) -> bytes:
    """Up to size bytes from the stream, reading again after short reads until size or the end."""
    parts: list[bytes] = []
    left = size
    while left > 0:
        chunk = stream.read(left)
        if not chunk:
            break
        parts.append(chunk)
        left -= len(chunk)
    return b"".join(parts)


class _Prefixed(io.RawIOBase):
    """A raw stream that gives back bytes already read from a stream, then the rest of that stream."""

    def __init__(self, prefix: bytes, rest: IO[bytes]) -> None:
        self._prefix = memoryview(prefix)
        self._rest = rest

    def readable(self) -> bool:
        """Always readable."""
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        """Fill buffer from the prefix first, then from the rest of the stream."""
        if self._prefix:
            size = min(len(buffer), len(self._prefix))
            buffer[:size] = self._prefix[:size]
            self._prefix = self._prefix[size:]
            return size
        chunk = self._rest.read(len(buffer))
        buffer[: len(chunk)] = chunk
        return len(chunk)


# --- header -------------------------------------------------------------------------------------------


def _shown_name(name: str) -> str:
    """A header cell as a message may show it: redacted and cut short."""
    text = redact(name)
    return repr(text if len(text) <= SHOWN_NAME_CHARACTERS else text[:SHOWN_NAME_CHARACTERS] + "…")


def _listed(names: Iterable[str]) -> str:
    """Names for a message, at most SHOWN_NAMES of them."""
    items = list(names)
    text = ", ".join(items[:SHOWN_NAMES])
    return text + (f" og {len(items) - SHOWN_NAMES} flere" if len(items) > SHOWN_NAMES else "")


def _column_order(cells: list[str]) -> list[str]:
    """The header's column names in file order, checked against the brief; ClaimsFileError if wrong."""
    names = [cell.strip().lstrip("\ufeff").strip() for cell in cells]
    while names and not names[-1]:
        names.pop()  # a trailing ';' or empty cells to the right of the header
    if not names:
        raise ClaimsFileError("MANGLENDE_KOLONNER", "Første linje er tom; den skal være overskriften.", line=1)
    known = set(COLUMNS)
    if not known.intersection(names):
        raise ClaimsFileError(
            "MANGLENDE_KOLONNER",
            "Første linje er ikke en overskrift med kolonnenavnene; filen skal starte med overskriften "
            f"({_listed(COLUMNS[:3])} …).",
            line=1,
        )
    duplicates = sorted({name for name in names if names.count(name) > 1 and name in known})
    if duplicates:
        raise ClaimsFileError(
            "DUBLEREDE_KOLONNER", f"Overskriften har kolonnerne {_listed(duplicates)} mere end én gang.", line=1
        )
    missing = [column for column in COLUMNS if column not in names]
    unknown = [_shown_name(name) if name else "(tom overskrift)" for name in names if name not in known]
    if missing:
        message = f"Filen mangler kolonnerne: {_listed(missing)}."
        if unknown:
            message += f" Ukendte kolonner: {_listed(unknown)}."
        raise ClaimsFileError("MANGLENDE_KOLONNER", message, line=1)
    if unknown:
        raise ClaimsFileError("UKENDTE_KOLONNER", f"Filen har ukendte kolonner: {_listed(unknown)}.", line=1)
    return names


def _claim(line: int, names: list[str], values: list[str], error: str | None = None) -> RawClaim:
    """A RawClaim from a row's values in header order; missing values are ''."""
    fields = dict(zip(names, values, strict=False))
    return RawClaim(line=line, error=error, **fields)


def _field_count_error(found: int, expected: int) -> str:
    """The row error for a row with the wrong number of fields."""
    return f"Rækken har {found} felter, men overskriften har {expected}."


# --- CSV ----------------------------------------------------------------------------------------------


class _Lines:
    """Decoded lines from a binary stream, the encoding chosen by the first line that is not ASCII."""

    def __init__(self, source: io.BufferedReader) -> None:
        self._source = source
        self.number = 0
        self.exhausted = False
        first = source.peek(len(_UTF8_BOM))[: len(_UTF8_BOM)]
        self.encoding: str | None = None
        if first == _UTF8_BOM:
            source.read(len(_UTF8_BOM))
            self.encoding = "utf-8"

    def __iter__(self) -> Iterator[str]:
        """Each line as text, line ending kept (the csv module wants it)."""
        while True:
            raw = self._source.readline(MAX_LINE_BYTES + 1)
            if not raw:
                self.exhausted = True
                return
            self.number += 1
            if len(raw) > MAX_LINE_BYTES:
                raise ClaimsFileError(
                    "LINJE_FOR_LANG",
                    f"Linje {self.number} er længere end {MAX_LINE_BYTES // 1024} KiB; det er ikke et krav.",
                    line=self.number,
                )
            if not raw.endswith(b"\n") and not self._source.peek(1):
                self.exhausted = True  # the last line, without a line ending: fine
            yield self._decoded(raw)

    def _decoded(self, raw: bytes) -> str:
        """One line decoded, deciding the encoding on the first non-ASCII line."""
        if raw.isascii():
            return raw.decode("ascii")
        if self.encoding is None:
            self.encoding = "utf-8" if _is_utf8(raw) else "cp1252"
        mixed = self.encoding == "cp1252" and _is_utf8(raw)
        try:
            if mixed:
                raise UnicodeError
            return raw.decode(self.encoding)
        except UnicodeError:
            raise ClaimsFileError(
                "FORKERT_TEGNSAET",
                f"Linje {self.number} kan ikke læses som {'UTF-8' if self.encoding == 'utf-8' else 'Windows-1252'}"
                " som resten af filen; gem filen som CSV i UTF-8.",
                line=self.number,
            ) from None


def _is_utf8(raw: bytes) -> bool:
    """Whether bytes are valid UTF-8."""
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _csv_rows(source: io.BufferedReader) -> Iterator[RawClaim]:
    """The claims of a CSV file, streamed line by line."""
    lines = _Lines(source)
    reader = csv.reader(lines, delimiter=";", quotechar='"', doublequote=True, strict=True)
    try:
        header = next(reader, None)
    except csv.Error:
        raise ClaimsFileError("MANGLENDE_KOLONNER", "Overskriften i første linje kan ikke læses.", line=1) from None
    if header is None:
        raise ClaimsFileError("TOM_FIL", "Filen er tom.")
    names = _column_order(header)
    count = 0
    while True:
        start = reader.line_num + 1
        try:
            fields = next(reader)
        except StopIteration:
            break
        except csv.Error:
            if lines.exhausted:
                raise ClaimsFileError(
                    "AFKORTET_FIL",
                    f"Filen slutter midt i et felt i anførselstegn, der begynder på linje {start}; "
                    "filen er formentlig afkortet. Send hele filen igen.",
                    line=start,
                ) from None
            count += 1
            yield RawClaim(
                line=start, error=f'Linje {start} kan ikke læses: anførselstegn (") er sat forkert i rækken.'
            )
            continue
        values = [field.strip() for field in fields]
        if not any(values):
            continue
        count += 1
        error = None
        if len(values) < len(names) or any(values[len(names) :]):
            error = _field_count_error(len(values), len(names))
        yield _claim(start, names, values, error)
    if count == 0:
        raise ClaimsFileError("TOM_FIL", "Filen indeholder kun overskriften og ingen krav.")


# --- XLSX ---------------------------------------------------------------------------------------------


def _too_large(limit: int) -> ClaimsFileError:
    """The error for a workbook that would unpack to more than the limit."""
    return ClaimsFileError(
        "XLSX_FOR_STOR",
        f"Regnearket fylder udpakket mere end {limit // (1024 * 1024)} MB eller er pakket mistænkeligt "
        "tæt; det læses ikke. Del filen op, eller gem den som CSV.",
    )


def _spooled(source: io.BufferedReader, limit: int) -> IO[bytes]:
    """The whole workbook in a seekable spool (memory, then disk), refused if larger than the limit."""
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)  # noqa: SIM115 - returned open
    size = 0
    while chunk := source.read(1024 * 1024):
        size += len(chunk)
        if size > limit:
            spool.close()
            raise _too_large(limit)
        spool.write(chunk)
    spool.seek(0)
    return spool


def _check_zip(spool: IO[bytes], max_uncompressed: int, max_ratio: int) -> None:
    """Refuse a ZIP that is no workbook (UKENDT_FORMAT) or that would unpack too far (XLSX_FOR_STOR)."""
    not_a_workbook = ClaimsFileError(
        "UKENDT_FORMAT", "Filen er en ZIP-fil, men ikke et Excel-regneark (.xlsx); send regnearket eller en CSV-fil."
    )
    try:
        with zipfile.ZipFile(spool) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError):
        raise not_a_workbook from None
    names = {member.filename for member in members}
    if _CONTENT_TYPES not in names or _WORKBOOK not in names:
        raise not_a_workbook
    if len(members) > MAX_XLSX_MEMBERS:
        raise _too_large(max_uncompressed)
    total = sum(member.file_size for member in members)
    if total > max_uncompressed:
        raise _too_large(max_uncompressed)
    for member in members:
        if member.file_size >= RATIO_CHECKED_FROM and member.file_size > max_ratio * max(member.compress_size, 1):
            raise _too_large(max_uncompressed)
    spool.seek(0)


def _number_text(value: int | float | Decimal) -> str:
    """A number cell (not the amount) as text: integers without '.0', others in plain decimal notation."""
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value.is_integer():
            return str(int(value))  # a 9- or 10-digit id typed as a number, without '.0'
        return format(Decimal(repr(value)), "f")
    return format(value, "f")


def _text(value: object) -> str:
    """An XLSX cell (not the amount) in the text form a CSV cell would have; dates as ISO YYYY-MM-DD."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int | float | Decimal):
        return _number_text(value)
    if isinstance(value, datetime):
        value = value.date()
    if isinstance(value, date | time):
        return value.isoformat()
    return str(value).strip()


def _amount_text(value: object) -> tuple[str, str | None]:
    """The amount cell as text and a row error: numbers through xlsx_amount, text kept as typed."""
    if value is None or isinstance(value, str):
        return _text(value), None  # text is parsed later with the CSV rules
    if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        try:
            return str(xlsx_amount(value)), None
        except AmountError as error:
            return _text(value), str(error)
    return _text(value), "Cellen med beløbet er ikke et tal."


def _xlsx_rows(source: io.BufferedReader, max_uncompressed: int, max_ratio: int) -> Iterator[RawClaim]:
    """The claims on the first sheet of an XLSX workbook, read with openpyxl in read-only mode."""
    import openpyxl

    if not openpyxl.DEFUSEDXML:
        raise RuntimeError("openpyxl parses without defusedxml; install defusedxml before reading XLSX.")
    with _spooled(source, max_uncompressed) as spool:
        _check_zip(spool, max_uncompressed, max_ratio)
        unreadable = ClaimsFileError("UKENDT_FORMAT", "Regnearket kan ikke læses; gem det igen som .xlsx.")
        try:
            workbook = openpyxl.load_workbook(spool, read_only=True, data_only=True)
        except Exception:  # openpyxl raises anything from KeyError to XML errors for a broken workbook
            raise unreadable from None
        try:
            if not workbook.worksheets:
                raise ClaimsFileError("TOM_FIL", "Regnearket har intet ark.")
            sheet = workbook.worksheets[0]
            sheet.reset_dimensions()  # the stored dimension may be wrong; read the cells that are there
            rows = sheet.iter_rows(values_only=True)
            try:
                yield from _sheet_rows(rows)
            except ClaimsFileError:
                raise
            except Exception:
                raise unreadable from None
        finally:
            workbook.close()


def _sheet_rows(rows: Iterator[tuple[object, ...]]) -> Iterator[RawClaim]:
    """RawClaims from a sheet's rows of cell values, row 1 the header."""
    header = next(rows, None)
    if header is None:
        raise ClaimsFileError("TOM_FIL", "Regnearkets første ark er tomt.")
    names = _column_order([_text(cell) for cell in header])
    count = 0
    for number, cells in enumerate(rows, start=2):
        if all(cell is None or (isinstance(cell, str) and not cell.strip()) for cell in cells):
            continue
        count += 1
        values: list[str] = []
        error = None
        for name, cell in zip(names, cells, strict=False):
            if name == AMOUNT_COLUMN:
                text, error = _amount_text(cell)
                values.append(text)
            else:
                values.append(_text(cell))
        if any(_text(cell) for cell in cells[len(names) :]):
            error = _field_count_error(len(cells), len(names))
        yield _claim(number, names, values, error)
    if count == 0:
        raise ClaimsFileError("TOM_FIL", "Regnearket indeholder kun overskriften og ingen krav.")
