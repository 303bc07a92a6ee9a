"""Kvantum posting files: the `FinancePostingRequest` we write and the `FinancePostingResponse` Kvantum answers.

Pure: no Azure, no storage. The models refuse anything Kvantum would refuse (an unbalanced document, more
than 999 lines, a text over its length, a repeated document reference), so a file that renders is a file
Kvantum can book. Texts are never truncated here; a caller that wants a shorter text cuts it deliberately.

Request (one file, many documents; one document per claim)::

    <?xml version="1.0" encoding="UTF-8"?>
    <FinancePostingRequest>
      <CONTROL_FIELDS>
        <SENDERID/> <RECEIVER/> <FILE_NAME/>
        <SEND_DATE>YYYYMMDD</SEND_DATE> <SEND_TIME>HHMMSS</SEND_TIME>   (Copenhagen wall-clock time)
      </CONTROL_FIELDS>
      <DOCUMENT>                                   (one per posting document, in the file's order)
        <HEADER>
          <NO_DOC_POSITION/> (line count) <BALANCE_DEBET/> <BALANCE_CREDIT/> (dot decimals, two places)
          <COMP_CODE/> <DOC_TYPE/> <DOC_DATE/> <PSTNG_DATE/> (YYYYMMDD) <FIS_PERIOD/> (two digits)
          <HEADER_TXT/> <CURRENCY/> <XREF1_HD/> (the claim id)
        </HEADER>
        <LINES>
          <LINE>
            <DEB_CRED_IND/> (D or K) <AMT_DOCCUR/> (dot decimal, two places) <VALUE_DATE/> (YYYYMMDD)
            <ITEM_TEXT/> <GL_ACCOUNT/> [<COSTCENTER/>] [<WBS_ELEMENT/>] [<PAYEE_NO_CODE/> <PAYEE_NO/>]
          </LINE>
        </LINES>
      </DOCUMENT>
    </FinancePostingRequest>

The brief names `HEADER` and `LINES/LINE` per document but not the element that groups them; we call it
`DOCUMENT`. Optional line elements that are empty are left out, never written empty. SEND_DATE and
SEND_TIME are Danish local time (Europe/Copenhagen, CET/CEST) because the file is an edge read by Danish
people and systems; the model holds the instant in UTC.

Response (Kvantum's answer, one per request file, plus later files for payments the bank returned; the
simulator writes them with `render_response`)::

    <?xml version="1.0" encoding="UTF-8"?>
    <FinancePostingResponse>
      <CONTROL_FIELDS>
        <FILE_NAME/> (the request file answered) [<SEND_DATE/> <SEND_TIME/>] (Copenhagen time)
      </CONTROL_FIELDS>
      <DOCUMENT_RESULT>                            (one or more, one per document reference)
        <XREF1_HD/> <STATUS>BOOKED|REJECTED|RETURNED</STATUS>
        [<DOC_NO/>] (required when BOOKED or RETURNED, absent when REJECTED)
        [<MESSAGE_CODE/>] [<MESSAGE/>] (both required when RETURNED)
      </DOCUMENT_RESULT>
    </FinancePostingResponse>

The statuses: BOOKED, the document is booked under DOC_NO; REJECTED, Kvantum or the bank refused it before
booking (MESSAGE_CODE/MESSAGE say why); RETURNED, the bank sent back a payment booked earlier (no NemKonto,
account closed, ...): it comes in a later response file of its own whose FILE_NAME names the request file
the document was in, with the DOC_NO it was booked under and the bank's reason. A RETURNED payment was
never paid out, so it goes to a person like a rejected one, but its booking must be reversed.

Responses are parsed with defusedxml: a DTD, an entity declaration or an external reference is refused,
as is any element not listed above. A CPR-shaped number in a response message is redacted when parsed,
since the message travels on into hand-offs and reports.

XML text is escaped by ElementTree, never neutralised: a text beginning with `=` is written as it is (the
spreadsheet rule applies to CSV and XLSX only). Rendering is deterministic: the same model gives the same
bytes, so a re-render of a recorded file is byte-identical.
"""

import re
import xml.etree.ElementTree as ET  # builds XML only; parsing goes through defusedxml
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Annotated, Literal, Self

import defusedxml.ElementTree as DefusedET
from defusedxml import DefusedXmlException
from pydantic import AfterValidator, BeforeValidator, Field, ValidationError, field_validator, model_validator

from functions.claim_payouts.calendar import COPENHAGEN
from shared.models import BoundaryModel
from shared.personal_data import digest, redact

#: SAP's limit on the lines of one accounting document.
MAX_LINES = 999

#: Lengths of the text fields in the posting file (the brief).
ITEM_TEXT_LENGTH = 50
HEADER_TEXT_LENGTH = 25
REFERENCE_LENGTH = 20

#: Two places: the posting file writes DKK to the øre.
CENT = Decimal("0.01")

#: Characters XML 1.0 cannot carry, plus the other control characters (tab, CR, LF): a posting text is one line.
_FORBIDDEN_TEXT = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")

#: A file name from these characters only: no path separators, no `..`, nothing a shell or a URL must quote.
_FILE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")

#: The number a payee id type carries (format only; `identifiers` checks CPR dates and CVR modulus 11).
_PAYEE_NO_DIGITS = {"CPR": 10, "CVR": 8, "SE": 8, "P": 10}

_XML_DECLARATION = b'<?xml version="1.0" encoding="UTF-8"?>\n'


def _one_line_text(limit: int) -> AfterValidator:
    """A check that a text is one non-blank line of at most `limit` characters that XML 1.0 can carry."""

    def check(value: str) -> str:
        """The text, refused if blank, too long, or holding a control character."""
        if not value.strip():
            raise ValueError("text is blank")
        if len(value) > limit:
            raise ValueError(f"text is {len(value)} characters; at most {limit} characters fit")
        if _FORBIDDEN_TEXT.search(value):
            raise ValueError("text holds a control character (line break, tab, ...) or a character XML cannot carry")
        return value

    return AfterValidator(check)


def _no_float(value: object) -> object:
    """The value, refused if it is a float: money is Decimal throughout, a float has already lost the øre."""
    if isinstance(value, float):
        raise ValueError("an amount must be a Decimal or a string, never a float")
    return value


def _safe_file_name(value: str) -> str:
    """The file name, refused unless it is letters, digits, `_`, `.` and `-` with no `..` (at most 100)."""
    if not _FILE_NAME.fullmatch(value) or ".." in value:
        raise ValueError("a file name may hold only letters A-Z, digits, '_', '.' and '-', at most 100, and no '..'")
    return value


def _utc(value: datetime) -> datetime:
    """The instant in UTC, refused if it is naive (a wall-clock time without a zone is ambiguous)."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("a timestamp must carry a time zone")
    return value.astimezone(UTC)


#: One line of free text, not blank, at most so many characters (never truncated here).
ItemText = Annotated[str, _one_line_text(ITEM_TEXT_LENGTH)]
HeaderText = Annotated[str, _one_line_text(HEADER_TEXT_LENGTH)]
Reference = Annotated[str, _one_line_text(REFERENCE_LENGTH)]
Amount = Annotated[Decimal, BeforeValidator(_no_float), Field(gt=0, max_digits=13, decimal_places=2)]
FileName = Annotated[str, AfterValidator(_safe_file_name)]
UtcDateTime = Annotated[datetime, AfterValidator(_utc)]
Code = Annotated[str, Field(pattern=r"^[A-Za-z0-9]+$")]


class PostingError(ValueError):
    """A posting file that Kvantum would refuse; raised by the models (inside pydantic's ValidationError)."""


class PostingResponseError(ValueError):
    """A response file that is not a well-formed `FinancePostingResponse`; the message says what is wrong."""


class PostingLine(BoundaryModel):
    """One line (SAP item) of a posting document."""

    debit_credit: Literal["D", "K"]
    amount: Amount
    value_date: date
    item_text: ItemText
    gl_account: Annotated[Code, Field(min_length=1, max_length=10)]
    cost_center: Annotated[Code, Field(min_length=1, max_length=10)] | None = None
    wbs_element: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9./-]{0,23}$")] | None = None
    payee_code: Literal["CPR", "CVR", "SE", "P"] | None = None
    payee_no: Annotated[str, Field(pattern=r"^[0-9]+$")] | None = None

    @field_validator("amount")
    @classmethod
    def _two_places(cls, value: Decimal) -> Decimal:
        """The amount with exactly two places, so equal amounts render and compare the same."""
        return value.quantize(CENT)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        """Payee code and number together, the number's length fits its code; one account assignment at most."""
        if (self.payee_code is None) != (self.payee_no is None):
            raise PostingError("payee_code and payee_no go together: give both or neither")
        if self.payee_code is not None and self.payee_no is not None:
            digits = _PAYEE_NO_DIGITS[self.payee_code]
            if len(self.payee_no) != digits:
                raise PostingError(f"a {self.payee_code} payee number has {digits} digits")
        if self.cost_center is not None and self.wbs_element is not None:
            raise PostingError("a line is assigned to a cost center or a WBS element, not both")
        return self


class PostingDocument(BoundaryModel):
    """One posting document (one claim): a header and 2 to 999 lines that balance."""

    reference: Reference
    company_code: Annotated[Code, Field(min_length=1, max_length=4)]
    doc_type: Annotated[Code, Field(min_length=2, max_length=2)]
    doc_date: date
    posting_date: date
    fiscal_period: Annotated[int, Field(ge=1, le=16)] | None = None
    header_text: HeaderText
    currency: Literal["DKK"] = "DKK"
    lines: list[PostingLine] = Field(min_length=2)

    @field_validator("lines")
    @classmethod
    def _at_most_999(cls, lines: list[PostingLine]) -> list[PostingLine]:
        """The lines, refused above SAP's limit of 999 per document."""
        if len(lines) > MAX_LINES:
            raise PostingError(f"a posting document holds at most {MAX_LINES} lines (SAP's limit), not {len(lines)}")
        return lines

    @model_validator(mode="after")
    def _period_and_balance(self) -> Self:
        """The fiscal period derived from the posting date unless given; debit must equal credit."""
        month = self.posting_date.month
        if self.fiscal_period is None:
            object.__setattr__(self, "fiscal_period", month)  # frozen model: set once, while validating
        elif self.fiscal_period <= 12 and self.fiscal_period != month:  # 13-16 are special periods
            raise PostingError(f"fiscal period {self.fiscal_period} does not match the posting date's month {month}")
        elif self.fiscal_period > 12 and month != 12:
            raise PostingError("a special period (13-16) is only posted with a December posting date")
        if self.debit_total != self.credit_total:
            raise PostingError(
                f"document {redact(self.reference)} does not balance: "
                f"debit {self.debit_total:.2f}, credit {self.credit_total:.2f}"
            )
        return self

    @property
    def debit_total(self) -> Decimal:
        """The sum of the debit (D) lines."""
        return sum((line.amount for line in self.lines if line.debit_credit == "D"), Decimal("0.00"))

    @property
    def credit_total(self) -> Decimal:
        """The sum of the credit (K) lines."""
        return sum((line.amount for line in self.lines if line.debit_credit == "K"), Decimal("0.00"))


class PostingFile(BoundaryModel):
    """One `FinancePostingRequest` file: control fields and its documents, each reference once."""

    sender_id: Annotated[str, _one_line_text(30)]
    receiver: Annotated[str, _one_line_text(30)]
    file_name: FileName
    sent_at: UtcDateTime
    documents: list[PostingDocument] = Field(min_length=1)

    @field_validator("documents")
    @classmethod
    def _unique_references(cls, documents: list[PostingDocument]) -> list[PostingDocument]:
        """The documents, refused if a reference (XREF1_HD) repeats: Kvantum would book it twice or refuse it."""
        seen: set[str] = set()
        for document in documents:
            if document.reference in seen:
                raise PostingError(f"document reference {redact(document.reference)} appears twice in the file")
            seen.add(document.reference)
        return documents


#: What Kvantum says about a document: booked, rejected before booking, or returned by the bank after booking.
DocumentStatus = Literal["BOOKED", "REJECTED", "RETURNED"]


class DocumentResult(BoundaryModel):
    """Kvantum's answer for one document: booked with a document number, rejected, or returned by the bank."""

    reference: Reference
    status: DocumentStatus
    document_number: Annotated[Code, Field(min_length=1, max_length=10)] | None = None
    code: Annotated[str, _one_line_text(50)] | None = None
    message: Annotated[str, _one_line_text(500)] | None = None

    @model_validator(mode="after")
    def _number_when_booked(self) -> Self:
        """Booked and returned documents have a document number, a rejected one none; a return says why."""
        if self.status == "BOOKED" and self.document_number is None:
            raise PostingError("a booked document has a document number (DOC_NO)")
        if self.status == "REJECTED" and self.document_number is not None:
            raise PostingError("a rejected document has no document number (DOC_NO)")
        if self.status == "RETURNED":
            # A return reverses a booking: without the number and the bank's reason a person cannot act on it.
            if self.document_number is None:
                raise PostingError("a returned payment has the document number (DOC_NO) it was booked under")
            if self.code is None or self.message is None:
                raise PostingError("a returned payment has the bank's reason (MESSAGE_CODE and MESSAGE)")
        return self

    @property
    def booked(self) -> bool:
        """Whether the document is booked (and not, or not yet, returned by the bank)."""
        return self.status == "BOOKED"


class PostingResponse(BoundaryModel):
    """One `FinancePostingResponse` file: the request file it answers and one result per document."""

    file_name: FileName
    sent_at: UtcDateTime | None = None
    results: list[DocumentResult] = Field(min_length=1)

    @field_validator("results")
    @classmethod
    def _unique_references(cls, results: list[DocumentResult]) -> list[DocumentResult]:
        """The results, refused if a reference is answered twice."""
        seen: set[str] = set()
        for result in results:
            if result.reference in seen:
                raise PostingError(f"document reference {redact(result.reference)} is answered twice")
            seen.add(result.reference)
        return results


def _yyyymmdd(value: date) -> str:
    """A date as the posting file writes it."""
    return f"{value.year:04d}{value.month:02d}{value.day:02d}"


def _money(value: Decimal) -> str:
    """An amount with a dot and two places, never an exponent."""
    return f"{value.quantize(CENT):f}"


class _Xml:
    """Indented XML text, byte for byte as `ElementTree.indent(space="  ")` and `tostring` write it, built as text:
    ElementTree's pure-Python serialiser was a tenth of the worker's CPU per claim in the benchmark."""

    def __init__(self, root: str) -> None:
        self._parts: list[str] = []
        self._open: list[str] = []
        self._childless = False
        self.open(root)

    def open(self, tag: str) -> None:
        """Starts an element that holds elements."""
        self._parts.append(f"{self._indent()}<{tag}>")
        self._open.append(tag)
        self._childless = True

    def close(self) -> None:
        """Ends the innermost open element."""
        tag = self._open.pop()
        if self._childless:  # nothing was added: ElementTree writes it self-closing
            self._parts[-1] = f"{self._indent()}<{tag} />"
        else:
            self._parts.append(f"{self._indent()}</{tag}>")
        self._childless = False

    def add(self, tag: str, text: str | None) -> None:
        """A child element with text, left out when the text is None (optional elements are never written empty)."""
        if text is None:
            return
        escaped = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        self._parts.append(f"{self._indent()}<{tag}>{escaped}</{tag}>" if text else f"{self._indent()}<{tag} />")
        self._childless = False

    def record(self, tag: str, fields: dict[str, str | None]) -> None:
        """An element holding one child per field, in the order given."""
        self.open(tag)
        for name, text in fields.items():
            self.add(name, text)
        self.close()

    def _indent(self) -> str:
        return "\n" + "  " * len(self._open) if self._parts else ""

    def serialised(self) -> bytes:
        """UTF-8 bytes with a declaration; the same calls always give the same bytes."""
        while self._open:
            self.close()
        return _XML_DECLARATION + "".join(self._parts).encode("utf-8") + b"\n"


def _control_time(xml: _Xml, sent_at: datetime) -> None:
    """SEND_DATE and SEND_TIME: the instant as Copenhagen wall-clock time, the way Danish systems read it."""
    local = sent_at.astimezone(COPENHAGEN)
    xml.add("SEND_DATE", local.strftime("%Y%m%d"))
    xml.add("SEND_TIME", local.strftime("%H%M%S"))


def render(file: PostingFile) -> bytes:
    """The `FinancePostingRequest` XML of a posting file, deterministic to the byte."""
    xml = _Xml("FinancePostingRequest")
    xml.open("CONTROL_FIELDS")
    xml.add("SENDERID", file.sender_id)
    xml.add("RECEIVER", file.receiver)
    xml.add("FILE_NAME", file.file_name)
    _control_time(xml, file.sent_at)
    xml.close()
    for document in file.documents:
        xml.open("DOCUMENT")
        header = {
            "NO_DOC_POSITION": str(len(document.lines)),
            "BALANCE_DEBET": _money(document.debit_total),
            "BALANCE_CREDIT": _money(document.credit_total),
            "COMP_CODE": document.company_code,
            "DOC_TYPE": document.doc_type,
            "DOC_DATE": _yyyymmdd(document.doc_date),
            "PSTNG_DATE": _yyyymmdd(document.posting_date),
            "FIS_PERIOD": f"{document.fiscal_period:02d}",
            "HEADER_TXT": document.header_text,
            "CURRENCY": document.currency,
            "XREF1_HD": document.reference,
        }
        xml.record("HEADER", header)
        xml.open("LINES")
        for line in document.lines:
            fields = {
                "DEB_CRED_IND": line.debit_credit,
                "AMT_DOCCUR": _money(line.amount),
                "VALUE_DATE": _yyyymmdd(line.value_date),
                "ITEM_TEXT": line.item_text,
                "GL_ACCOUNT": line.gl_account,
                "COSTCENTER": line.cost_center,
                "WBS_ELEMENT": line.wbs_element,
                "PAYEE_NO_CODE": line.payee_code,
                "PAYEE_NO": line.payee_no,
            }
            xml.record("LINE", fields)
        xml.close()
        xml.close()
    return xml.serialised()


def document_ref(reference: str) -> str:
    """How the ledger names a posting document: a hash of its reference exactly as written (XREF1_HD), so two
    claim ids that differ only in case or spaces stay two documents; nothing to read, never CPR-shaped."""
    return digest(reference, 16)


def request_references(data: bytes) -> set[str]:
    """The document references (XREF1_HD) of a request file we wrote (to check what a file holds)."""
    try:
        root = DefusedET.fromstring(data)
    except (DefusedET.ParseError, DefusedXmlException) as error:
        raise PostingResponseError("the posting file is not well-formed XML") from error
    return {header.findtext("XREF1_HD") or "" for header in root.iter("HEADER")}


def render_response(response: PostingResponse) -> bytes:
    """The `FinancePostingResponse` XML Kvantum writes back (used by the simulator), deterministic to the byte."""
    xml = _Xml("FinancePostingResponse")
    xml.open("CONTROL_FIELDS")
    xml.add("FILE_NAME", response.file_name)
    if response.sent_at is not None:
        _control_time(xml, response.sent_at)
    xml.close()
    for result in response.results:
        fields = {
            "XREF1_HD": result.reference,
            "STATUS": result.status,
            "DOC_NO": result.document_number,
            "MESSAGE_CODE": result.code,
            "MESSAGE": result.message,
        }
        xml.record("DOCUMENT_RESULT", fields)
    return xml.serialised()


_CONTROL_TAGS = frozenset({"FILE_NAME", "SEND_DATE", "SEND_TIME"})
_RESULT_TAGS = frozenset({"XREF1_HD", "STATUS", "DOC_NO", "MESSAGE_CODE", "MESSAGE"})
_STATUSES = frozenset({"BOOKED", "REJECTED", "RETURNED"})
_DIGITS_8 = re.compile(r"[0-9]{8}")
_DIGITS_6 = re.compile(r"[0-9]{6}")


def _children(element: ET.Element, allowed: frozenset[str], where: str) -> dict[str, str]:
    """The leaf children of an element by tag, refused if one is unknown, repeated or has children itself."""
    found: dict[str, str] = {}
    for child in element:
        if child.tag not in allowed:
            raise PostingResponseError(f"unexpected element <{child.tag}> in {where}")
        if child.tag in found:
            raise PostingResponseError(f"element <{child.tag}> appears twice in {where}")
        if len(child):
            raise PostingResponseError(f"element <{child.tag}> in {where} must hold text, not elements")
        found[child.tag] = (child.text or "").strip()
    return found


def _sent_at(control: dict[str, str]) -> datetime | None:
    """The response's SEND_DATE and SEND_TIME (Copenhagen time) as an instant, or None when both are absent."""
    day, clock = control.get("SEND_DATE"), control.get("SEND_TIME")
    if day is None and clock is None:
        return None
    if day is None or clock is None:
        raise PostingResponseError("SEND_DATE and SEND_TIME go together in CONTROL_FIELDS")
    try:
        if not (_DIGITS_8.fullmatch(day) and _DIGITS_6.fullmatch(clock)):
            raise ValueError(day)
        local = datetime.strptime(day + clock, "%Y%m%d%H%M%S")
    except ValueError:
        raise PostingResponseError("SEND_DATE must be YYYYMMDD and SEND_TIME HHMMSS") from None
    return local.replace(tzinfo=COPENHAGEN)


def _result(element: ET.Element, position: int) -> dict[str, object]:
    """The fields of the n-th DOCUMENT_RESULT, ready for `DocumentResult`."""
    where = f"DOCUMENT_RESULT {position}"
    fields = _children(element, _RESULT_TAGS, where)
    for required in ("XREF1_HD", "STATUS"):
        if not fields.get(required):
            raise PostingResponseError(f"{where} has no {required}")
    if fields["STATUS"] not in _STATUSES:
        raise PostingResponseError(
            f"{where} has STATUS '{redact(fields['STATUS'])[:20]}', not BOOKED, REJECTED or RETURNED"
        )
    message = fields.get("MESSAGE") or None
    return {
        "reference": fields["XREF1_HD"],
        "status": fields["STATUS"],
        "document_number": fields.get("DOC_NO") or None,
        "code": fields.get("MESSAGE_CODE") or None,
        "message": redact(message) if message is not None else None,
    }


def parse_response_file(data: bytes) -> PostingResponse:
    """A `FinancePostingResponse` file read whole, or a `PostingResponseError` saying what is wrong with it."""
    try:
        root = DefusedET.fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as error:
        raise PostingResponseError(f"response refused: DTD or entity declaration ({type(error).__name__})") from None
    except ET.ParseError as error:
        raise PostingResponseError(f"response is not well-formed XML ({error})") from None
    if root.tag != "FinancePostingResponse":
        raise PostingResponseError(f"response root is <{root.tag}>, not <FinancePostingResponse>")
    controls = [child for child in root if child.tag == "CONTROL_FIELDS"]
    results = [child for child in root if child.tag == "DOCUMENT_RESULT"]
    unknown = sorted({child.tag for child in root} - {"CONTROL_FIELDS", "DOCUMENT_RESULT"})
    if unknown:
        raise PostingResponseError(f"unexpected element <{unknown[0]}> in FinancePostingResponse")
    if len(controls) != 1:
        raise PostingResponseError("a response has exactly one CONTROL_FIELDS")
    if not results:
        raise PostingResponseError("a response has at least one DOCUMENT_RESULT")
    control = _children(controls[0], _CONTROL_TAGS, "CONTROL_FIELDS")
    if not control.get("FILE_NAME"):
        raise PostingResponseError("CONTROL_FIELDS has no FILE_NAME")
    try:
        return PostingResponse(
            file_name=control["FILE_NAME"],
            sent_at=_sent_at(control),
            results=[DocumentResult.model_validate(_result(element, n)) for n, element in enumerate(results, 1)],
        )
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'value'}: {e['msg']}" for e in error.errors())
        raise PostingResponseError(f"response does not fit FinancePostingResponse: {problems}") from None


def parse_response(data: bytes) -> list[DocumentResult]:
    """The document results of a response file (booked, rejected, returned); malformed: `PostingResponseError`."""
    return parse_response_file(data).results


__all__ = [
    "MAX_LINES",
    "DocumentResult",
    "DocumentStatus",
    "PostingDocument",
    "PostingError",
    "PostingFile",
    "PostingLine",
    "PostingResponse",
    "PostingResponseError",
    "parse_response",
    "parse_response_file",
    "render",
    "render_response",
]
