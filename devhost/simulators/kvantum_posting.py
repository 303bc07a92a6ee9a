"""Kvantum's posting intake, simulated: reads `FinancePostingRequest` files from a blob container and answers them.

Kvantum picks up posting files dropped for it and answers each with a `FinancePostingResponse` file. Here the
drop is the container `kvantum-outbox` and the answers go to `kvantum-responses` in the same storage account
(Azurite locally), under the request's own blob name. `process_pending()` answers every outbox blob that has
no answer yet; `start()` runs it on a daemon thread, and `python -m devhost.simulators.kvantum_posting
--connection-string ...` runs it in a process of its own.

A request is checked independently of `functions.claim_payouts.posting`'s models (parsed with defusedxml,
rule by rule), so a file the app's models let through but Kvantum would refuse shows up here:

- The file: root `FinancePostingRequest`, one `CONTROL_FIELDS` with SENDERID, RECEIVER, FILE_NAME (equal to
  the blob's name), SEND_DATE (`YYYYMMDD`), SEND_TIME (`HHMMSS`), at least one `DOCUMENT`. A file that breaks
  these has every document it names rejected with `FIL_UGYLDIG`.
- Each `DOCUMENT`: a `HEADER` with NO_DOC_POSITION (= the number of lines), BALANCE_DEBET (= the sum of the
  D lines) equal to BALANCE_CREDIT (= the sum of the K lines), COMP_CODE, DOC_TYPE, DOC_DATE, PSTNG_DATE
  (`YYYYMMDD`), FIS_PERIOD (01-16), HEADER_TXT (at most 25), CURRENCY, XREF1_HD (at most 20); `LINES/LINE`
  (2 to 999) with DEB_CRED_IND (D/K), AMT_DOCCUR (dot, two places, above zero), VALUE_DATE (`YYYYMMDD`),
  ITEM_TEXT (at most 50), GL_ACCOUNT, and optionally COSTCENTER, WBS_ELEMENT, PAYEE_NO_CODE with PAYEE_NO.
  The first rule broken rejects the document: `FELT_MANGLER` (a required field missing or empty),
  `FELT_UGYLDIG` (a format, an unknown element), `TEKST_FOR_LANG`, `ANTAL_LINJER`, `UBALANCE`.
- `DUBLET_REFERENCE`: the reference (XREF1_HD) was booked by an earlier file, or appears more than once in
  this file. A response answers each reference once (`PostingResponse` refuses a reference answered twice),
  so a reference repeated within a file gets one result, REJECTED, and none of its documents is booked:
  Kvantum cannot tell which of them is meant. This is the last guard against paying a claim twice.
- Bank-like refusals set up by `reject_payee(payee_no, code, message)`: a document with a line paying that
  PAYEE_NO is REJECTED with that code and Danish text (`INGEN_NEMKONTO`, `KONTO_LUKKET`, ...).
- Everything else is BOOKED under the next document number (DOC_NO, ten digits from 1900000001).

A file that is not well-formed XML (or declares a DTD or entities), or whose documents cannot all be named by a
usable XREF1_HD, is not answered by a response: `<name>.error.txt` in the responses container says why, and
nothing in it is booked.

`return_payment(reference, code, message)` writes a later response file (`RETURN_<n>_<timestamp>.xml`) with
one DOCUMENT_RESULT, STATUS RETURNED, the DOC_NO the payment was booked under and the bank's reason; its
FILE_NAME names the request file the document was in.

State that must outlive a restart is in storage: a file is answered once because its response (or error
file) exists, and the booked references, the document-number counter and the returns are in the append blob
`kvantum-sim/_booked.jsonl`, one JSON line per answered file or return. A line is appended only at the
position where the intake's reading ended (the append-position condition), so two intakes on the same storage
never book one reference twice, and answering a file costs that file's bookings, not the whole history's.
A file processed again after a crash between saving that state and writing the response is answered with
the same DOC_NOs (its references are booked by that very file). The outbox blobs are never changed: a metadata
marker would change their ETag, which the host would take for a new file.

Faults for tests: `delay_seconds` (a sleep before answering each file), `hold()` / `release()` (answers
nothing until released: Kvantum down or late). Quiet: logs counts only; never a reference, a payee number
(it may be a CPR number) or a document number (ten digits, which the personal-data scan takes for a CPR).
"""

import argparse
import contextlib
import json
import logging
import re
import signal
import sys
import threading
import time
import xml.etree.ElementTree as ET  # builds nothing, parses nothing: the element type and its ParseError
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal

import defusedxml.ElementTree as DefusedET
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.storage.blob import BlobServiceClient, ContainerClient, ContentSettings
from defusedxml import DefusedXmlException

from functions.claim_payouts.posting import DocumentResult, PostingResponse, render_response
from shared.logs import get_logger, install

OUTBOX = "kvantum-outbox"
RESPONSES = "kvantum-responses"
STATE_CONTAINER = "kvantum-sim"
STATE_BLOB = "_booked.jsonl"  # an append blob: one JSON line per answered file or returned payment
ERROR_SUFFIX = ".error.txt"
FIRST_DOC_NO = 1900000001
MAX_LINES = 999

#: The file-name pattern of `posting.py`: a return file's name must fit it too.
_FILE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")
_AMOUNT = re.compile(r"[0-9]{1,11}\.[0-9]{2}")
_CODE = re.compile(r"[A-Z0-9_]{1,50}")

CONTROL_FIELDS = ("SENDERID", "RECEIVER", "FILE_NAME", "SEND_DATE", "SEND_TIME")
HEADER_FIELDS = (
    "NO_DOC_POSITION",
    "BALANCE_DEBET",
    "BALANCE_CREDIT",
    "COMP_CODE",
    "DOC_TYPE",
    "DOC_DATE",
    "PSTNG_DATE",
    "FIS_PERIOD",
    "HEADER_TXT",
    "CURRENCY",
    "XREF1_HD",
)
LINE_REQUIRED = ("DEB_CRED_IND", "AMT_DOCCUR", "VALUE_DATE", "ITEM_TEXT", "GL_ACCOUNT")
LINE_OPTIONAL = ("COSTCENTER", "WBS_ELEMENT", "PAYEE_NO_CODE", "PAYEE_NO")
#: Text lengths of the posting file (the brief).
TEXT_LIMITS = {"HEADER_TXT": 25, "ITEM_TEXT": 50}
REFERENCE_LENGTH = 20

_log = get_logger("devhost.kvantum_posting")


class RejectionError(Exception):
    """A document (or a whole file) Kvantum refuses: a reason code and a Danish text without any input value."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


class UnanswerableError(Exception):
    """A file that cannot be answered per document; the Danish text goes into its error file."""


@dataclass
class Booking:
    """A document Kvantum booked: its document number and the request file it was in."""

    doc_no: str
    file_name: str
    returned: bool = False


# --- the checks (pure) ------------------------------------------------------------------------------------------


def _fields(element: ET.Element, allowed: tuple[str, ...], where: str) -> dict[str, str]:
    """An element's leaf children by tag, refused (FELT_UGYLDIG) if one is unknown, repeated or not a leaf."""
    found: dict[str, str] = {}
    for child in element:
        if child.tag not in allowed:
            raise RejectionError("FELT_UGYLDIG", f"Ukendt felt {_tag(child)} i {where}.")
        if child.tag in found or len(child):
            raise RejectionError(
                "FELT_UGYLDIG", f"Feltet {child.tag} i {where} er gentaget eller ikke et simpelt felt."
            )
        found[child.tag] = (child.text or "").strip()
    return found


def _tag(element: ET.Element) -> str:
    """An element's tag for a message: letters, digits and `_` only, at most 30 (a tag is input too)."""
    return re.sub(r"[^A-Za-z0-9_]", "", str(element.tag))[:30] or "?"


def _required(fields: dict[str, str], names: tuple[str, ...], where: str) -> None:
    """Refuses (FELT_MANGLER) the first of the names missing or empty."""
    for name in names:
        if not fields.get(name):
            raise RejectionError("FELT_MANGLER", f"Feltet {name} mangler i {where}.")


def _date(value: str, name: str, where: str) -> date:
    """A `YYYYMMDD` date, or FELT_UGYLDIG."""
    try:
        if not re.fullmatch(r"[0-9]{8}", value):
            raise ValueError(name)
        return datetime.strptime(value, "%Y%m%d").date()
    except ValueError:
        raise RejectionError("FELT_UGYLDIG", f"Feltet {name} i {where} er ikke en dato ÅÅÅÅMMDD.") from None


def _amount(value: str, name: str, where: str) -> Decimal:
    """A dot-decimal amount with two places, or FELT_UGYLDIG."""
    if not _AMOUNT.fullmatch(value):
        raise RejectionError("FELT_UGYLDIG", f"Feltet {name} i {where} er ikke et beløb med punktum og to decimaler.")
    return Decimal(value)


def _text(fields: dict[str, str], name: str, where: str) -> None:
    """Refuses (TEKST_FOR_LANG) a text longer than its limit."""
    if len(fields.get(name, "")) > TEXT_LIMITS[name]:
        raise RejectionError("TEKST_FOR_LANG", f"Feltet {name} i {where} er længere end {TEXT_LIMITS[name]} tegn.")


def check_control(root: ET.Element, blob_name: str) -> None:
    """Refuses (FIL_UGYLDIG) a file whose root or CONTROL_FIELDS is wrong or whose FILE_NAME is not the blob's."""
    if root.tag != "FinancePostingRequest":
        raise RejectionError("FIL_UGYLDIG", "Filens rodelement er ikke FinancePostingRequest.")
    unknown = [child for child in root if child.tag not in ("CONTROL_FIELDS", "DOCUMENT")]
    if unknown:
        raise RejectionError("FIL_UGYLDIG", f"Ukendt element {_tag(unknown[0])} i FinancePostingRequest.")
    controls = root.findall("CONTROL_FIELDS")
    if len(controls) != 1:
        raise RejectionError("FIL_UGYLDIG", "Filen skal have præcis én CONTROL_FIELDS.")
    try:
        control = _fields(controls[0], CONTROL_FIELDS, "CONTROL_FIELDS")
        _required(control, CONTROL_FIELDS, "CONTROL_FIELDS")
        _date(control["SEND_DATE"], "SEND_DATE", "CONTROL_FIELDS")
        if not re.fullmatch(r"([01][0-9]|2[0-3])[0-5][0-9][0-5][0-9]", control["SEND_TIME"]):
            raise RejectionError("FELT_UGYLDIG", "Feltet SEND_TIME i CONTROL_FIELDS er ikke et klokkeslæt TTMMSS.")
    except RejectionError as rejection:
        raise RejectionError("FIL_UGYLDIG", rejection.message) from None
    if control["FILE_NAME"] != blob_name:
        raise RejectionError("FIL_UGYLDIG", "FILE_NAME i CONTROL_FIELDS er ikke filens navn.")
    if not root.findall("DOCUMENT"):
        raise RejectionError("FIL_UGYLDIG", "Filen har ingen DOCUMENT.")


def reference_of(document: ET.Element) -> str | None:
    """A document's XREF1_HD when it can name the document in a response (1-20 characters, one line), else None."""
    headers = document.findall("HEADER")
    if len(headers) != 1:
        return None
    values = [(child.text or "").strip() for child in headers[0] if child.tag == "XREF1_HD"]
    if len(values) != 1:
        return None
    reference = values[0]
    try:
        DocumentResult(reference=reference, status="REJECTED")  # the response's own rule for a reference
    except ValueError:
        return None
    return reference


def check_document(document: ET.Element) -> list[str]:
    """The document's payee numbers if Kvantum takes it; else the RejectionError for the first rule it breaks."""
    unknown = [child for child in document if child.tag not in ("HEADER", "LINES")]
    if unknown:
        raise RejectionError("FELT_UGYLDIG", f"Ukendt element {_tag(unknown[0])} i DOCUMENT.")
    lines_elements = document.findall("LINES")
    if len(lines_elements) != 1:
        raise RejectionError("FELT_MANGLER", "Dokumentet skal have præcis én LINES.")
    headers = document.findall("HEADER")
    if len(headers) != 1:
        raise RejectionError("FELT_MANGLER", "Dokumentet skal have præcis én HEADER.")
    header = _fields(headers[0], HEADER_FIELDS, "HEADER")
    _required(header, HEADER_FIELDS, "HEADER")
    if not header["NO_DOC_POSITION"].isdigit():
        raise RejectionError("FELT_UGYLDIG", "Feltet NO_DOC_POSITION i HEADER er ikke et antal.")
    debit_total = _amount(header["BALANCE_DEBET"], "BALANCE_DEBET", "HEADER")
    credit_total = _amount(header["BALANCE_CREDIT"], "BALANCE_CREDIT", "HEADER")
    _date(header["DOC_DATE"], "DOC_DATE", "HEADER")
    posting_date = _date(header["PSTNG_DATE"], "PSTNG_DATE", "HEADER")
    period = header["FIS_PERIOD"]
    if not (re.fullmatch(r"[0-9]{2}", period) and 1 <= int(period) <= 16):
        raise RejectionError("FELT_UGYLDIG", "Feltet FIS_PERIOD i HEADER er ikke en periode 01-16.")
    if int(period) <= 12 and int(period) != posting_date.month:
        raise RejectionError("FELT_UGYLDIG", "Perioden FIS_PERIOD passer ikke til bogføringsdatoen PSTNG_DATE.")
    if not re.fullmatch(r"[A-Z]{3}", header["CURRENCY"]):
        raise RejectionError("FELT_UGYLDIG", "Feltet CURRENCY i HEADER er ikke en valutakode.")
    _text(header, "HEADER_TXT", "HEADER")
    if len(header["XREF1_HD"]) > REFERENCE_LENGTH:  # reference_of has refused it already; kept for a direct call
        raise RejectionError("TEKST_FOR_LANG", f"Feltet XREF1_HD i HEADER er længere end {REFERENCE_LENGTH} tegn.")
    lines = [child for child in lines_elements[0]]
    if any(line.tag != "LINE" for line in lines):
        raise RejectionError("FELT_UGYLDIG", "LINES må kun indeholde LINE.")
    if not 2 <= len(lines) <= MAX_LINES:
        raise RejectionError("ANTAL_LINJER", f"Et bilag skal have mellem 2 og {MAX_LINES} linjer.")
    if int(header["NO_DOC_POSITION"]) != len(lines):
        raise RejectionError("ANTAL_LINJER", "NO_DOC_POSITION passer ikke med antallet af linjer.")
    sums = {"D": Decimal("0.00"), "K": Decimal("0.00")}
    payees: list[str] = []
    for number, element in enumerate(lines, 1):
        where = f"linje {number}"
        line = _fields(element, LINE_REQUIRED + LINE_OPTIONAL, where)
        _required(line, LINE_REQUIRED, where)
        if line["DEB_CRED_IND"] not in sums:
            raise RejectionError("FELT_UGYLDIG", f"Feltet DEB_CRED_IND i {where} er hverken D eller K.")
        amount = _amount(line["AMT_DOCCUR"], "AMT_DOCCUR", where)
        if amount <= 0:
            raise RejectionError("FELT_UGYLDIG", f"Beløbet AMT_DOCCUR i {where} skal være større end nul.")
        sums[line["DEB_CRED_IND"]] += amount
        _date(line["VALUE_DATE"], "VALUE_DATE", where)
        _text(line, "ITEM_TEXT", where)
        if bool(line.get("PAYEE_NO_CODE")) != bool(line.get("PAYEE_NO")):
            raise RejectionError("FELT_MANGLER", f"PAYEE_NO_CODE og PAYEE_NO i {where} skal angives sammen.")
        if line.get("PAYEE_NO"):
            payees.append(line["PAYEE_NO"])
    if sums["D"] != debit_total or sums["K"] != credit_total:
        raise RejectionError("UBALANCE", "BALANCE_DEBET og BALANCE_CREDIT passer ikke med linjernes beløb.")
    if debit_total != credit_total:
        raise RejectionError("UBALANCE", "Bilaget balancerer ikke: debet og kredit er ikke ens.")
    return payees


# --- the intake ---------------------------------------------------------------------------------------------------


class KvantumPostingIntake:
    """Kvantum's posting intake on one storage account: answers request files, books, rejects and returns."""

    def __init__(
        self,
        connection_string: str,
        outbox: str = OUTBOX,
        responses: str = RESPONSES,
        state_container: str = STATE_CONTAINER,
    ) -> None:
        service = BlobServiceClient.from_connection_string(connection_string)
        self._outbox = service.get_container_client(outbox)
        self._responses = service.get_container_client(responses)
        self._state_blob = service.get_container_client(state_container).get_blob_client(STATE_BLOB)
        for container in (self._outbox, self._responses, service.get_container_client(state_container)):
            _ensure(container)
        self.delay_seconds = 0.0
        self._lock = threading.RLock()  # one pass at a time in this process; other processes: the append position
        self._released = threading.Event()
        self._released.set()
        self._payee_refusals: dict[str, tuple[str, str]] = {}
        self._answered: list[str] = []
        self._known_answered: set[str] = set()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._bookings: dict[str, Booking] = {}
        self._next_doc_no = FIRST_DOC_NO
        self._returns = 0
        self._journal_length = 0
        self._load()

    # --- persisted state ----------------------------------------------------------------------------------------

    def _load(self) -> None:
        """Reads the journal from the start: booked references, counters, and where the next entry must go."""
        self._bookings, self._next_doc_no, self._returns, self._journal_length = {}, FIRST_DOC_NO, 0, 0
        self._catch_up()

    def _catch_up(self) -> None:
        """Replays journal entries written since the last read (by this intake or another)."""
        try:
            data = self._state_blob.download_blob(offset=self._journal_length).readall()
        except ResourceNotFoundError:
            with contextlib.suppress(ResourceExistsError):
                self._state_blob.create_append_blob(if_none_match="*")
            return
        except HttpResponseError as error:
            if error.status_code != 416:  # nothing beyond the offset
                raise
            return
        for line in data.decode("utf-8").splitlines():
            entry = json.loads(line)
            for reference, doc_no in entry.get("booked", {}).items():
                self._bookings[reference] = Booking(doc_no=doc_no, file_name=entry["file"])
            if "returned" in entry:
                self._bookings[entry["returned"]].returned = True
                self._returns = max(self._returns, entry["returns"])
            self._next_doc_no = max(self._next_doc_no, entry.get("next_doc_no", FIRST_DOC_NO))
        self._journal_length += len(data)

    def _save(self, entry: dict[str, object]) -> bool:
        """Appends one entry where this intake's reading ended; False (and reloaded) when another intake wrote
        there first. One file's bookings per entry, so an answer costs its own size, not the whole state's."""
        line = (json.dumps(entry, sort_keys=True) + "\n").encode("utf-8")
        try:
            self._state_blob.append_block(line, appendpos_condition=self._journal_length)
        except HttpResponseError as error:
            if error.status_code != 412:
                raise
            self._load()  # another intake booked in between: decide again on its state
            return False
        self._journal_length += len(line)
        return True

    # --- configuration for tests ----------------------------------------------------------------------------------

    def reject_payee(self, payee_no: str, code: str, message: str) -> None:
        """Documents with a line paying this PAYEE_NO are REJECTED with this code and Danish text (like the bank)."""
        _check_reason(code, message)
        with self._lock:
            self._payee_refusals[payee_no.strip()] = (code, message)

    def hold(self) -> None:
        """Answers nothing until `release()`: Kvantum down, or late."""
        self._released.clear()

    def release(self) -> None:
        """Answers again after `hold()`."""
        self._released.set()

    def answered(self) -> list[str]:
        """The response (and error) files this intake wrote for outbox files, in the order written."""
        with self._lock:
            return list(self._answered)

    def booked_references(self) -> set[str]:
        """Every reference booked on this storage (returned ones too), as the state blob has it now."""
        with self._lock:
            self._catch_up()
            return set(self._bookings)

    # --- answering ----------------------------------------------------------------------------------------------

    def process_pending(self) -> int:
        """Answers every outbox file without a response or error file; how many it answered (0 while held)."""
        with self._lock:
            if not self._released.is_set():
                return 0
            existing = set(self._responses.list_blob_names())
            count = 0
            for name in sorted(self._outbox.list_blob_names()):
                if name in self._known_answered:
                    continue
                if name in existing or f"{name}{ERROR_SUFFIX}" in existing:
                    self._known_answered.add(name)  # answered before a restart, or by another intake
                    continue
                if not self._released.is_set():
                    break
                if self.delay_seconds:
                    time.sleep(self.delay_seconds)
                if self._answer(name):
                    count += 1
                self._known_answered.add(name)
            if count:
                _log.info("Kvantum answered %d posting files", count)
            return count

    def _answer(self, name: str) -> bool:
        """Answers one outbox file; False when another intake answered it first."""
        try:
            data = self._outbox.get_blob_client(name).download_blob().readall()
        except ResourceNotFoundError:
            return False  # deleted since it was listed
        try:
            if not _FILE_NAME.fullmatch(name) or ".." in name:
                # Checked before anything is booked: the response could not name the file in its FILE_NAME.
                raise UnanswerableError("Filens navn kan ikke bruges som FILE_NAME; filen er ikke behandlet.")
            root = _parse(data)
            while True:
                self._catch_up()
                before = self._next_doc_no
                results = self._decide(root, name)
                booked = {
                    r.reference: r.document_number
                    for r in results
                    if r.status == "BOOKED" and r.document_number and int(r.document_number) >= before
                }
                if not booked or self._save({"file": name, "booked": booked, "next_doc_no": self._next_doc_no}):
                    break
        except UnanswerableError as problem:
            return self._write(f"{name}{ERROR_SUFFIX}", str(problem).encode("utf-8"), "text/plain; charset=utf-8")
        body = render_response(PostingResponse(file_name=name, sent_at=datetime.now(UTC), results=results))
        return self._write(name, body, "application/xml")

    def _write(self, name: str, body: bytes, content_type: str) -> bool:
        """Writes an answer unless one exists (another intake's); notes it as answered by this one."""
        try:
            self._responses.upload_blob(
                name, body, overwrite=False, content_settings=ContentSettings(content_type=content_type)
            )
        except ResourceExistsError:
            return False
        self._answered.append(name)
        return True

    def _decide(self, root: ET.Element, name: str) -> list[DocumentResult]:
        """The result of every document of a parsed file, booking the ones taken (in memory, saved by the caller)."""
        documents = root.findall("DOCUMENT")
        named: list[tuple[ET.Element, str]] = []
        for position, document in enumerate(documents, 1):
            reference = reference_of(document)
            if reference is None:
                raise UnanswerableError(
                    f"Dokument {position} har ingen brugbar XREF1_HD (1-{REFERENCE_LENGTH} tegn); "
                    "filen er ikke behandlet."
                )
            named.append((document, reference))
        try:
            check_control(root, name)
        except RejectionError as rejection:
            if not named:  # nothing to answer per document
                raise UnanswerableError(f"{rejection.message} Filen er ikke behandlet.") from None
            return [self._rejected(reference, rejection) for reference in dict.fromkeys(r for _, r in named)]
        counts: dict[str, int] = {}
        for _, reference in named:
            counts[reference] = counts.get(reference, 0) + 1
        results: list[DocumentResult] = []
        for document, reference in named:
            if counts[reference] > 1:
                if reference not in {result.reference for result in results}:
                    text = "Referencen XREF1_HD forekommer flere gange i filen; ingen af bilagene er bogført."
                    results.append(self._rejected(reference, RejectionError("DUBLET_REFERENCE", text)))
                continue
            results.append(self._result(document, reference, name))
        return results

    def _result(self, document: ET.Element, reference: str, name: str) -> DocumentResult:
        """One document's result: rejected for the first rule broken, a duplicate or a refused payee; else booked."""
        try:
            payees = check_document(document)
        except RejectionError as rejection:
            return self._rejected(reference, rejection)
        booking = self._bookings.get(reference)
        if booking is not None and booking.file_name == name:
            # This file was decided before (a crash before its response was written): the same answer again.
            return DocumentResult(reference=reference, status="BOOKED", document_number=booking.doc_no)
        if booking is not None:
            text = "Referencen XREF1_HD er allerede bogført i en tidligere fil; bilaget er ikke bogført igen."
            return self._rejected(reference, RejectionError("DUBLET_REFERENCE", text))
        for payee in payees:
            if payee in self._payee_refusals:
                return self._rejected(reference, RejectionError(*self._payee_refusals[payee]))
        doc_no = f"{self._next_doc_no:010d}"
        self._next_doc_no += 1
        self._bookings[reference] = Booking(doc_no=doc_no, file_name=name)
        return DocumentResult(reference=reference, status="BOOKED", document_number=doc_no)

    @staticmethod
    def _rejected(reference: str, rejection: RejectionError) -> DocumentResult:
        """A REJECTED result with the rejection's code and text."""
        return DocumentResult(reference=reference, status="REJECTED", code=rejection.code, message=rejection.message)

    # --- returns ------------------------------------------------------------------------------------------------

    def return_payment(self, reference: str, code: str, message: str, file_name: str | None = None) -> str:
        """Writes a response file returning a booked payment (the bank's code and text); its name."""
        _check_reason(code, message)
        if file_name is not None and (not _FILE_NAME.fullmatch(file_name) or ".." in file_name):
            raise ValueError("a return file's name is letters, digits, '_', '.' and '-', at most 100, no '..'")
        with self._lock:
            while True:
                self._catch_up()
                booking = self._bookings.get(reference)
                if booking is None:
                    raise ValueError("the reference was never booked; only a booked payment can be returned")
                if booking.returned:
                    raise ValueError("the payment of this reference has been returned already")
                booking.returned = True
                self._returns += 1
                stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")  # no ten-digit run: the log scan would flag it
                name = file_name or f"RETURN_{self._returns:04d}_{stamp}.xml"
                if self._save({"returned": reference, "returns": self._returns}):
                    break
            result = DocumentResult(
                reference=reference, status="RETURNED", document_number=booking.doc_no, code=code, message=message
            )
            body = render_response(
                PostingResponse(file_name=booking.file_name, sent_at=datetime.now(UTC), results=[result])
            )
            self._responses.upload_blob(
                name, body, overwrite=True, content_settings=ContentSettings(content_type="application/xml")
            )
            _log.info("Kvantum returned a payment (%s)", code)
            return name

    # --- running ------------------------------------------------------------------------------------------------

    def start(self, poll_seconds: float = 0.5) -> "KvantumPostingIntake":
        """Answers on a daemon thread every `poll_seconds` until `stop()`; returns itself."""
        if self._thread is not None and self._thread.is_alive():
            return self
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, args=(poll_seconds,), name="kvantum-posting", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stops the thread `start()` began (after the pass it is in)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None

    def _run(self, poll_seconds: float) -> None:
        """The thread: a pass, then a wait, until stopped; a failed pass is logged by type and tried again."""
        while not self._stop.is_set():
            try:
                self.process_pending()
            except Exception as error:  # a simulator keeps polling, as Kvantum's job would
                # The type only: an Azure error's text is long and may quote a blob's content type or name.
                _log.warning("Kvantum posting intake pass failed (%s)", type(error).__name__)
            self._stop.wait(poll_seconds)


def _parse(data: bytes) -> ET.Element:
    """The file's root element, or `UnanswerableError` when it is not well-formed XML or declares a DTD or entities."""
    try:
        return DefusedET.fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException:
        raise UnanswerableError("Filen indeholder en DTD eller entitetserklæring; filen er ikke behandlet.") from None
    except ET.ParseError:
        raise UnanswerableError("Filen er ikke velformet XML; filen er ikke behandlet.") from None


def _ensure(container: ContainerClient) -> None:
    """Creates the container unless it exists."""
    with contextlib.suppress(ResourceExistsError):
        container.create_container()


def _check_reason(code: str, message: str) -> None:
    """Refuses a reason a response could not carry: code A-Z, 0-9, `_` (at most 50), a one-line text (500)."""
    if not _CODE.fullmatch(code):
        raise ValueError("a reason code is A-Z, 0-9 and '_', at most 50")
    DocumentResult(reference="-", status="REJECTED", code=code, message=message)  # the response's own text rule


def _main(argv: list[str] | None = None) -> None:
    """`python -m devhost.simulators.kvantum_posting --connection-string ... [--poll 0.5]`: answers until SIGTERM."""
    parser = argparse.ArgumentParser(description="Kvantum's posting intake, simulated, on a storage account")
    parser.add_argument("--connection-string", required=True)
    parser.add_argument("--poll", type=float, default=0.5)
    parser.add_argument("--outbox", default=OUTBOX)
    parser.add_argument("--responses", default=RESPONSES)
    parser.add_argument("--state-container", default=STATE_CONTAINER)
    parser.add_argument("--log-file")
    args = parser.parse_args(argv)
    _logging(args.log_file)
    intake = KvantumPostingIntake(args.connection_string, args.outbox, args.responses, args.state_container).start(
        args.poll
    )
    stopped = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopped.set())
    _log.info("Kvantum posting intake polling every %.2f s", args.poll)
    stopped.wait()
    intake.stop()


def _logging(log_file: str | None) -> None:
    """Redacted logging to stderr (and a file), quiet about the Azure SDK's request lines."""
    install()
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_file:
        handlers.append(logging.FileHandler(log_file, encoding="utf-8"))
    logging.basicConfig(level=logging.INFO, handlers=handlers, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    for noisy in ("azure", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


__all__ = ["KvantumPostingIntake", "RejectionError", "check_control", "check_document", "reference_of"]


if __name__ == "__main__":
    _main()
