"""Kvantum's simulated posting intake on real Azurite: booking, rejections, duplicates, returns, restarts."""

import logging
import os
import re
import subprocess
import sys
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from azure.storage.blob import BlobServiceClient
from defusedxml.ElementTree import fromstring

from devhost.simulators.kvantum_posting import KvantumPostingIntake
from functions.claim_payouts import posting
from shared.personal_data import contains_cpr
from tests.conftest import LOG_DIR, ROOT

SENT = datetime(2026, 3, 2, 13, 5, 9, tzinfo=UTC)
PAYEE_CPR = "0101585000"  # synthetic, as in the posting unit tests
FILE_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}"


@pytest.fixture
def containers(azurite_connection: str) -> dict[str, str]:
    """Containers of this test's own: the session shares one Azurite."""
    suffix = uuid.uuid4().hex[:12]
    return {"outbox": f"kvout-{suffix}", "responses": f"kvresp-{suffix}", "state_container": f"kvsim-{suffix}"}


@pytest.fixture
def make_intake(azurite_connection: str, containers: dict[str, str]) -> Iterator[Callable[[], KvantumPostingIntake]]:
    """Builds intakes on the test's containers (a second one is a restart); stops their threads afterwards."""
    made: list[KvantumPostingIntake] = []

    def make() -> KvantumPostingIntake:
        intake = KvantumPostingIntake(azurite_connection, **containers)
        made.append(intake)
        return intake

    yield make
    for intake in made:
        intake.stop()


@pytest.fixture
def intake(make_intake: Callable[[], KvantumPostingIntake]) -> KvantumPostingIntake:
    """One intake on the test's containers."""
    return make_intake()


@pytest.fixture
def blobs(azurite_connection: str, containers: dict[str, str]) -> "Blobs":
    """The test's outbox and responses."""
    return Blobs(BlobServiceClient.from_connection_string(azurite_connection), containers)


class Blobs:
    """Drops request files and reads answers."""

    def __init__(self, service: BlobServiceClient, containers: dict[str, str]) -> None:
        self.outbox = service.get_container_client(containers["outbox"])
        self.responses = service.get_container_client(containers["responses"])

    def drop(self, name: str, data: bytes) -> None:
        self.outbox.upload_blob(name, data, overwrite=True)

    def read(self, name: str) -> bytes:
        return self.responses.download_blob(name).readall()

    def response(self, name: str) -> posting.PostingResponse:
        return posting.parse_response_file(self.read(name))

    def results(self, name: str) -> dict[str, posting.DocumentResult]:
        return {result.reference: result for result in self.response(name).results}

    def names(self) -> set[str]:
        return set(self.responses.list_blob_names())


def document(
    reference: str, amount: str = "250.00", payee_no: str = "12345674", **line: object
) -> posting.PostingDocument:
    """A payout: expense debit on a cost centre, credit to the payee."""
    code = "CPR" if len(payee_no) == 10 else "CVR"
    debit = {
        "debit_credit": "D",
        "amount": Decimal(amount),
        "value_date": date(2026, 3, 3),
        "item_text": "Refusion af udlæg",
        "gl_account": "22110000",
        "cost_center": "1011020000",
        **line,
    }
    credit = {
        "debit_credit": "K",
        "amount": Decimal(amount),
        "value_date": date(2026, 3, 3),
        "item_text": "Udbetaling via NemKonto",
        "gl_account": "29100000",
        "payee_code": code,
        "payee_no": payee_no,
    }
    return posting.PostingDocument(
        reference=reference,
        company_code="1000",
        doc_type="KR",
        doc_date=date(2026, 3, 2),
        posting_date=date(2026, 3, 2),
        header_text="Udbetaling af krav",
        lines=[posting.PostingLine(**debit), posting.PostingLine(**credit)],
    )


def request(name: str, *documents: posting.PostingDocument) -> bytes:
    """A request file rendered by the app's own model."""
    return posting.render(
        posting.PostingFile(
            sender_id="KS-AUTOMATION", receiver="KVANTUM", file_name=name, sent_at=SENT, documents=list(documents)
        )
    )


def edited(data: bytes, edit: Callable[[ET.Element], None]) -> bytes:
    """A request file changed by hand, for what the app's model would refuse to render."""
    root = fromstring(data)
    edit(root)
    return ET.tostring(root, encoding="utf-8")


def nth_document(root: ET.Element, n: int) -> ET.Element:
    """The n-th DOCUMENT (from 0)."""
    return root.findall("DOCUMENT")[n]


# --- booking ----------------------------------------------------------------------------------------------------


def test_a_good_file_is_booked_and_answered_under_its_own_name(intake, blobs):
    blobs.drop("FPR_20260302_0001.xml", request("FPR_20260302_0001.xml", document("KRAV-1"), document("KRAV-2")))
    assert intake.process_pending() == 1
    response = blobs.response("FPR_20260302_0001.xml")
    assert response.file_name == "FPR_20260302_0001.xml" and response.sent_at is not None
    assert [(r.reference, r.status, r.document_number) for r in response.results] == [
        ("KRAV-1", "BOOKED", "1900000001"),
        ("KRAV-2", "BOOKED", "1900000002"),
    ]
    assert all(result.booked for result in response.results)
    assert intake.answered() == ["FPR_20260302_0001.xml"]
    assert intake.booked_references() == {"KRAV-1", "KRAV-2"}


def test_a_file_is_answered_once_also_after_a_restart(make_intake, blobs):
    first = make_intake()
    blobs.drop("FPR_1.xml", request("FPR_1.xml", document("KRAV-1")))
    assert first.process_pending() == 1
    answer = blobs.read("FPR_1.xml")
    assert first.process_pending() == 0
    restarted = make_intake()
    assert restarted.process_pending() == 0 and restarted.answered() == []
    assert blobs.read("FPR_1.xml") == answer, "the answer is not written again"
    blobs.drop("FPR_2.xml", request("FPR_2.xml", document("KRAV-2")))
    assert restarted.process_pending() == 1
    assert blobs.results("FPR_2.xml")["KRAV-2"].document_number == "1900000002", "the counter survives a restart"


def test_a_file_decided_but_not_answered_before_a_crash_gets_the_same_document_numbers(intake, blobs, make_intake):
    blobs.drop("FPR_1.xml", request("FPR_1.xml", document("KRAV-1"), document("KRAV-2")))
    intake.process_pending()
    before = blobs.results("FPR_1.xml")
    blobs.responses.delete_blob("FPR_1.xml")  # as if the simulator died after saving its state
    assert make_intake().process_pending() == 1
    assert blobs.results("FPR_1.xml") == before


# --- rejections -------------------------------------------------------------------------------------------------


def test_an_unbalanced_document_is_rejected_and_the_others_booked(intake, blobs):
    def unbalance(root: ET.Element) -> None:
        credit = nth_document(root, 0).findall("LINES/LINE")[1]
        credit.find("AMT_DOCCUR").text = "249.00"  # type: ignore[union-attr]
        nth_document(root, 0).find("HEADER/BALANCE_CREDIT").text = "249.00"  # type: ignore[union-attr]

    def header_only(root: ET.Element) -> None:
        nth_document(root, 1).find("HEADER/BALANCE_DEBET").text = "260.00"  # type: ignore[union-attr]

    data = request("FPR_1.xml", document("KRAV-1"), document("KRAV-2"), document("KRAV-3"))
    blobs.drop("FPR_1.xml", edited(edited(data, unbalance), header_only))
    intake.process_pending()
    results = blobs.results("FPR_1.xml")
    assert [results[ref].status for ref in ("KRAV-1", "KRAV-2", "KRAV-3")] == ["REJECTED", "REJECTED", "BOOKED"]
    assert results["KRAV-1"].code == "UBALANCE" and results["KRAV-1"].document_number is None
    assert results["KRAV-1"].message == "Bilaget balancerer ikke: debet og kredit er ikke ens."
    assert results["KRAV-2"].code == "UBALANCE"
    assert results["KRAV-2"].message == "BALANCE_DEBET og BALANCE_CREDIT passer ikke med linjernes beløb."
    assert results["KRAV-3"].document_number == "1900000001", "a rejected document takes no number"
    assert intake.booked_references() == {"KRAV-3"}


def test_a_line_without_gl_account_is_rejected(intake, blobs):
    def drop_gl_account(root: ET.Element) -> None:
        line = nth_document(root, 0).findall("LINES/LINE")[0]
        line.remove(line.find("GL_ACCOUNT"))  # type: ignore[arg-type]

    blobs.drop("FPR_1.xml", edited(request("FPR_1.xml", document("KRAV-1")), drop_gl_account))
    intake.process_pending()
    result = blobs.results("FPR_1.xml")["KRAV-1"]
    assert (result.status, result.code, result.message) == (
        "REJECTED",
        "FELT_MANGLER",
        "Feltet GL_ACCOUNT mangler i linje 1.",
    )


def test_a_too_long_item_text_is_rejected(intake, blobs):
    def lengthen(root: ET.Element) -> None:
        nth_document(root, 0).findall("LINES/LINE")[1].find("ITEM_TEXT").text = "x" * 51  # type: ignore[union-attr]

    data = request("FPR_1.xml", document("KRAV-1", item_text="y" * 50), document("KRAV-2"))
    blobs.drop("FPR_1.xml", edited(data, lengthen))
    intake.process_pending()
    results = blobs.results("FPR_1.xml")
    assert (results["KRAV-1"].status, results["KRAV-1"].code) == ("REJECTED", "TEKST_FOR_LANG")
    assert "ITEM_TEXT i linje 2" in (results["KRAV-1"].message or "")
    assert results["KRAV-2"].booked, "50 characters fit"


@pytest.mark.parametrize(
    ("edit", "code"),
    [
        (lambda d: d.find("HEADER/NO_DOC_POSITION").__setattr__("text", "3"), "ANTAL_LINJER"),
        (lambda d: d.find("HEADER/PSTNG_DATE").__setattr__("text", "2026-03-02"), "FELT_UGYLDIG"),
        (lambda d: d.find("HEADER/FIS_PERIOD").__setattr__("text", "04"), "FELT_UGYLDIG"),
        (lambda d: d.find("HEADER").remove(d.find("HEADER/COMP_CODE")), "FELT_MANGLER"),
        (lambda d: d.find("HEADER/HEADER_TXT").__setattr__("text", "z" * 26), "TEKST_FOR_LANG"),
        (lambda d: d.find("LINES/LINE/DEB_CRED_IND").__setattr__("text", "C"), "FELT_UGYLDIG"),
        (lambda d: d.find("LINES/LINE/AMT_DOCCUR").__setattr__("text", "250,00"), "FELT_UGYLDIG"),
        (lambda d: d.find("LINES/LINE/VALUE_DATE").__setattr__("text", "20260231"), "FELT_UGYLDIG"),
        (lambda d: ET.SubElement(d.find("LINES/LINE"), "EXTRA").__setattr__("text", "x"), "FELT_UGYLDIG"),
    ],
    ids=["positions", "date-format", "period", "comp-code", "header-text", "dk", "comma", "no-such-day", "extra"],
)
def test_each_broken_rule_rejects_the_document(intake, blobs, edit, code):
    blobs.drop("FPR_1.xml", edited(request("FPR_1.xml", document("KRAV-1")), lambda r: edit(nth_document(r, 0))))
    intake.process_pending()
    result = blobs.results("FPR_1.xml")["KRAV-1"]
    assert (result.status, result.code) == ("REJECTED", code)


def test_a_file_name_other_than_the_blobs_rejects_every_document(intake, blobs):
    blobs.drop("FPR_2.xml", request("FPR_1.xml", document("KRAV-1"), document("KRAV-2")))
    intake.process_pending()
    results = blobs.results("FPR_2.xml")
    assert {(r.status, r.code) for r in results.values()} == {("REJECTED", "FIL_UGYLDIG")} and len(results) == 2
    assert intake.booked_references() == set()


def test_a_rejected_payee_is_rejected_like_the_bank_would_and_never_logged(intake, blobs, caplog):
    intake.reject_payee(PAYEE_CPR, "INGEN_NEMKONTO", "Modtageren har ingen NemKonto.")
    intake.reject_payee("29403473", "KONTO_LUKKET", "Modtagerens konto er lukket.")
    data = request(
        "FPR_1.xml", document("KRAV-1", payee_no=PAYEE_CPR), document("KRAV-2", payee_no="29403473"), document("KRAV-3")
    )
    blobs.drop("FPR_1.xml", data)
    with caplog.at_level(logging.DEBUG):
        intake.process_pending()
    results = blobs.results("FPR_1.xml")
    assert (results["KRAV-1"].code, results["KRAV-1"].message) == ("INGEN_NEMKONTO", "Modtageren har ingen NemKonto.")
    assert (results["KRAV-2"].status, results["KRAV-2"].code) == ("REJECTED", "KONTO_LUKKET")
    assert results["KRAV-3"].booked
    assert not any(contains_cpr(record.getMessage()) for record in caplog.records)
    with pytest.raises(ValueError, match="reason code"):
        intake.reject_payee(PAYEE_CPR, "ingen nemkonto", "x")


# --- duplicates -------------------------------------------------------------------------------------------------


def test_a_reference_repeated_in_one_file_is_rejected_once_and_nothing_of_it_booked(intake, blobs):
    def repeat(root: ET.Element) -> None:
        nth_document(root, 1).find("HEADER/XREF1_HD").text = "KRAV-1"  # type: ignore[union-attr]

    data = request("FPR_1.xml", document("KRAV-1"), document("KRAV-2"), document("KRAV-3"))
    blobs.drop("FPR_1.xml", edited(data, repeat))
    intake.process_pending()
    response = blobs.response("FPR_1.xml")  # parses: each reference is answered once
    assert [(r.reference, r.status, r.code) for r in response.results] == [
        ("KRAV-1", "REJECTED", "DUBLET_REFERENCE"),
        ("KRAV-3", "BOOKED", None),
    ]
    assert intake.booked_references() == {"KRAV-3"}


def test_a_reference_booked_in_an_earlier_file_is_rejected_also_after_a_restart(make_intake, blobs):
    first = make_intake()
    blobs.drop("FPR_1.xml", request("FPR_1.xml", document("KRAV-1")))
    first.process_pending()
    blobs.drop("FPR_2.xml", request("FPR_2.xml", document("KRAV-1"), document("KRAV-2")))
    first.process_pending()
    second = blobs.results("FPR_2.xml")
    assert (second["KRAV-1"].status, second["KRAV-1"].code) == ("REJECTED", "DUBLET_REFERENCE")
    assert second["KRAV-2"].booked
    restarted = make_intake()
    blobs.drop("FPR_3.xml", request("FPR_3.xml", document("KRAV-2", amount="10.00")))
    restarted.process_pending()
    third = blobs.results("FPR_3.xml")["KRAV-2"]
    assert (third.status, third.code) == ("REJECTED", "DUBLET_REFERENCE")
    assert restarted.booked_references() == {"KRAV-1", "KRAV-2"}


def test_two_intakes_deciding_at_once_book_a_reference_once(make_intake, blobs):
    first, second = make_intake(), make_intake()
    blobs.drop("FPR_1.xml", request("FPR_1.xml", document("KRAV-1")))
    decide = first._decide
    raced = []

    def decide_while_the_other_books(root, name):
        results = decide(root, name)
        if not raced:  # between this intake's reading and its saving, the other books the same reference
            raced.append(name)
            second._known_answered.add("FPR_1.xml")  # busy with its own file only
            blobs.drop("FPR_2.xml", request("FPR_2.xml", document("KRAV-1", amount="10.00")))
            assert second.process_pending() == 1
        return results

    first._decide = decide_while_the_other_books
    first.process_pending()
    assert blobs.results("FPR_2.xml")["KRAV-1"].booked
    lost = blobs.results("FPR_1.xml")["KRAV-1"]
    assert (lost.status, lost.code) == ("REJECTED", "DUBLET_REFERENCE")  # decided again on the other's journal
    assert make_intake().booked_references() == {"KRAV-1"}


def test_a_rejected_reference_may_be_sent_again_and_booked(intake, blobs):
    intake.reject_payee("12345674", "KONTO_LUKKET", "Modtagerens konto er lukket.")
    blobs.drop("FPR_1.xml", request("FPR_1.xml", document("KRAV-1")))
    intake.process_pending()
    blobs.drop("FPR_2.xml", request("FPR_2.xml", document("KRAV-1", payee_no="29403473")))
    intake.process_pending()
    assert not blobs.results("FPR_1.xml")["KRAV-1"].booked and blobs.results("FPR_2.xml")["KRAV-1"].booked


# --- returns ----------------------------------------------------------------------------------------------------


def test_a_returned_payment_comes_in_a_later_response_file(intake, blobs):
    blobs.drop("FPR_1.xml", request("FPR_1.xml", document("KRAV-1"), document("KRAV-2")))
    intake.process_pending()
    name = intake.return_payment("KRAV-2", "INGEN_NEMKONTO", "Modtageren har ingen NemKonto.")
    assert name.startswith("RETURN_0001_") and name.endswith(".xml")
    assert re.fullmatch(FILE_PATTERN, name) and not contains_cpr(name)
    response = blobs.response(name)
    assert response.file_name == "FPR_1.xml", "it names the request file the document was in"
    [result] = response.results
    assert (result.reference, result.status, result.document_number, result.code, result.message) == (
        "KRAV-2",
        "RETURNED",
        "1900000002",
        "INGEN_NEMKONTO",
        "Modtageren har ingen NemKonto.",
    )
    assert not result.booked
    assert name not in intake.answered() and intake.process_pending() == 0, "a return is no request to answer"
    named = intake.return_payment("KRAV-1", "KONTO_LUKKET", "Modtagerens konto er lukket.", file_name="RET_A.xml")
    assert named == "RET_A.xml" and blobs.response("RET_A.xml").results[0].document_number == "1900000001"


def test_only_a_booked_payment_can_be_returned_and_only_once(intake, blobs):
    intake.reject_payee("29403473", "KONTO_LUKKET", "Modtagerens konto er lukket.")
    blobs.drop("FPR_1.xml", request("FPR_1.xml", document("KRAV-1"), document("KRAV-2", payee_no="29403473")))
    intake.process_pending()
    with pytest.raises(ValueError, match="never booked"):
        intake.return_payment("KRAV-9", "KONTO_LUKKET", "Modtagerens konto er lukket.")
    with pytest.raises(ValueError, match="never booked"):
        intake.return_payment("KRAV-2", "KONTO_LUKKET", "Modtagerens konto er lukket.")
    intake.return_payment("KRAV-1", "KONTO_LUKKET", "Modtagerens konto er lukket.")
    with pytest.raises(ValueError, match="returned already"):
        intake.return_payment("KRAV-1", "KONTO_LUKKET", "Modtagerens konto er lukket.")
    with pytest.raises(ValueError, match="name"):
        intake.return_payment("KRAV-1", "KONTO_LUKKET", "x", file_name="../evil.xml")


# --- files that cannot be answered ------------------------------------------------------------------------------

DTD = b"""<?xml version="1.0"?>
<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>
<FinancePostingRequest><CONTROL_FIELDS><FILE_NAME>&x;</FILE_NAME></CONTROL_FIELDS></FinancePostingRequest>"""


@pytest.mark.parametrize(
    ("data", "text"),
    [
        (b"PK\x03\x04 not xml", "ikke velformet XML"),
        (b"<FinancePostingRequest><DOCUMENT>", "ikke velformet XML"),
        (DTD, "DTD"),
        (b"<FinancePostingRequest><CONTROL_FIELDS/></FinancePostingRequest>", "CONTROL_FIELDS"),
        (b"<Other/>", "rodelement"),
    ],
    ids=["binary", "truncated", "dtd", "no-documents", "root"],
)
def test_a_file_that_cannot_be_read_gets_an_error_file(intake, blobs, data, text):
    blobs.drop("FPR_1.xml", data)
    assert intake.process_pending() == 1
    assert blobs.names() == {"FPR_1.xml.error.txt"}
    assert text in blobs.read("FPR_1.xml.error.txt").decode("utf-8")
    assert intake.answered() == ["FPR_1.xml.error.txt"] and intake.booked_references() == set()
    assert intake.process_pending() == 0


def test_a_document_without_a_usable_reference_stops_the_whole_file(intake, blobs):
    def long_reference(root: ET.Element) -> None:
        nth_document(root, 1).find("HEADER/XREF1_HD").text = "K" * 21  # type: ignore[union-attr]

    blobs.drop("FPR_1.xml", edited(request("FPR_1.xml", document("KRAV-1"), document("KRAV-2")), long_reference))
    intake.process_pending()
    assert "Dokument 2 har ingen brugbar XREF1_HD" in blobs.read("FPR_1.xml.error.txt").decode("utf-8")
    assert intake.booked_references() == set(), "nothing of the file is booked"


def test_a_blob_name_that_cannot_be_a_file_name_gets_an_error_file(intake, blobs):
    blobs.drop("sub/FPR_1.xml", request("FPR_1.xml", document("KRAV-1")))
    intake.process_pending()
    assert blobs.names() == {"sub/FPR_1.xml.error.txt"} and intake.booked_references() == set()


# --- slowness, faults and running on its own -------------------------------------------------------------------


def test_hold_answers_nothing_until_released_and_delay_slows_each_file(intake, blobs):
    blobs.drop("FPR_1.xml", request("FPR_1.xml", document("KRAV-1")))
    intake.hold()
    assert intake.process_pending() == 0 and blobs.names() == set()
    intake.release()
    intake.delay_seconds = 0.3
    started = time.monotonic()
    assert intake.process_pending() == 1
    assert time.monotonic() - started >= 0.3


def wait_for(condition: Callable[[], bool], seconds: float = 15) -> None:
    """Waits until the condition holds, failing after so many seconds."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_the_thread_answers_files_as_they_arrive(intake, blobs):
    intake.start(poll_seconds=0.05)
    blobs.drop("FPR_1.xml", request("FPR_1.xml", document("KRAV-1")))
    wait_for(lambda: "FPR_1.xml" in blobs.names())
    intake.hold()
    blobs.drop("FPR_2.xml", request("FPR_2.xml", document("KRAV-2")))
    time.sleep(0.3)
    assert "FPR_2.xml" not in blobs.names(), "held: Kvantum is down"
    intake.release()
    wait_for(lambda: "FPR_2.xml" in blobs.names())
    intake.stop()
    assert intake.answered() == ["FPR_1.xml", "FPR_2.xml"]


def test_the_intake_runs_in_a_process_of_its_own(azurite_connection, containers, blobs):
    log_file = LOG_DIR / f"kvantum-posting-{containers['outbox']}.log"
    command = [sys.executable, "-m", "devhost.simulators.kvantum_posting", "--connection-string", azurite_connection]
    command += ["--poll", "0.1", "--outbox", containers["outbox"], "--responses", containers["responses"]]
    command += ["--state-container", containers["state_container"], "--log-file", str(log_file)]
    process = subprocess.Popen(command, cwd=ROOT, env={**os.environ}, stderr=subprocess.DEVNULL)
    try:
        wait_for(blobs.outbox.exists)
        blobs.drop("FPR_1.xml", request("FPR_1.xml", document("KRAV-1", payee_no=PAYEE_CPR)))
        wait_for(lambda: "FPR_1.xml" in blobs.names())
        assert blobs.results("FPR_1.xml")["KRAV-1"].document_number == "1900000001"
    finally:
        process.terminate()
        assert process.wait(timeout=30) == 0
    assert "answered 1 posting files" in log_file.read_text(encoding="utf-8")
