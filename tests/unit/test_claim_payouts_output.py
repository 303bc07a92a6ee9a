"""What automation 2 writes for people and for Kvantum: report lines, document numbers, file names."""

import csv
import io
from datetime import UTC, datetime

from functions.claim_payouts import report, responses, steps
from functions.claim_payouts.intake import error_report
from functions.claim_payouts.reader import ClaimsFileError
from shared.personal_data import contains_cpr
from shared.spreadsheet import csv_bytes


def test_a_report_line_keeps_amounts_as_numbers_and_neutralises_text():
    row = {
        "ItemId": "000007",
        "Status": "done",
        "Line": "9",
        "ClaimId": "=HYPERLINK(1)",
        "Amount": "1500.00",
        "Offset": "300.00",
        "Payout": "1200.00",
        "PaymentDate": "2026-11-26",
        "DocNo": "1900-000001",
    }
    text = csv_bytes(report.ITEM_COLUMNS, [report.item_line(row)]).decode("utf-8-sig")
    (line,) = list(csv.DictReader(io.StringIO(text), delimiter=";"))
    assert line["krav_id"] == "'=HYPERLINK(1)" and line["beloeb"] == "1500,00" and line["udbetalt"] == "1200,00"
    assert line["betalingsdato"] == "26.11.2026" and line["status"] == "udbetalt" and line["linje"] == "9"


def test_a_handed_off_line_shows_no_payout():
    line = report.item_line({"ItemId": "1", "Status": "handed_off", "Amount": "10.00", "Payout": "10.00"})
    assert line[6] is None and line[7] is None


def test_document_numbers_are_shown_whole_and_never_cpr_shaped():
    assert responses.shown_document_number("1900000123") == "1900-000123"
    assert not contains_cpr(responses.shown_document_number("0101701234"))
    assert responses.shown_document_number("12345") == "12345"
    assert responses.shown_document_number(None) == ""


def test_a_posting_file_name_names_its_run_and_bucket_and_nothing_else():
    run_id = "claim_payouts.20261124T120000-000Z.abcdef"
    name = steps.file_name(run_id, 3, "000501")
    assert responses.target_of(name) == responses.Target(run_id, 3)
    assert responses.target_of("RETURN_0001_20261124T123456Z.xml") is None
    assert not contains_cpr(name) and len(name) <= 100


def test_the_error_report_says_in_danish_what_is_wrong_and_where():
    error = ClaimsFileError("FORKERT_TEGNSAET", "Linje 7 kan ikke læses som tekst.", line=7, column="beloeb")
    text = error_report("krav 0101701234.csv", error, datetime(2026, 11, 24, 11, 5, tzinfo=UTC))
    assert "Linje: 7" in text and "Kolonne: beloeb" in text and "Fejlkode: FORKERT_TEGNSAET" in text
    assert "24.11.2026 12:05" in text, "Danish local time at the edge"
    assert not contains_cpr(text), "the file name is redacted"
