"""Kvantum posting files: the request's fields and formats, its refusals, and the response both ways."""

import xml.etree.ElementTree as ET
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from defusedxml.ElementTree import fromstring
from pydantic import ValidationError

from functions.claim_payouts.posting import (
    MAX_LINES,
    DocumentResult,
    PostingDocument,
    PostingFile,
    PostingLine,
    PostingResponse,
    PostingResponseError,
    parse_response,
    parse_response_file,
    render,
    render_response,
)

SENT = datetime(2026, 3, 2, 13, 5, 9, tzinfo=UTC)  # 14:05:09 in Copenhagen (CET, UTC+1)


def line(debit_credit: str = "D", amount: str = "1234.50", **changes: object) -> PostingLine:
    """A valid line, debit to an expense account on a cost center unless changed."""
    fields: dict[str, object] = {
        "debit_credit": debit_credit,
        "amount": Decimal(amount),
        "value_date": date(2026, 3, 3),
        "item_text": "Refusion af udlæg",
        "gl_account": "44110000",
        "cost_center": "1010101",
    }
    fields.update(changes)
    return PostingLine.model_validate(fields)


def credit(amount: str = "1234.50", **changes: object) -> PostingLine:
    """A credit line to the payee via NemKonto (a synthetic CVR)."""
    changes = {"gl_account": "29100000", "cost_center": None, "payee_code": "CVR", "payee_no": "12345674"} | changes
    return line("K", amount, **changes)


def document(
    reference: str = "KRAV-0001", lines: list[PostingLine] | None = None, **changes: object
) -> PostingDocument:
    """A balanced two-line document unless changed."""
    fields: dict[str, object] = {
        "reference": reference,
        "company_code": "0100",
        "doc_type": "KR",
        "doc_date": date(2026, 3, 2),
        "posting_date": date(2026, 3, 2),
        "header_text": "Udbetaling af krav",
        "lines": lines if lines is not None else [line(), credit()],
    }
    fields.update(changes)
    return PostingDocument.model_validate(fields)


def posting_file(*documents: PostingDocument, sent_at: datetime = SENT) -> PostingFile:
    """A file holding the documents (one balanced document by default)."""
    return PostingFile(
        sender_id="KS-AUTOMATION",
        receiver="KVANTUM",
        file_name="FPR_20260302_0001.xml",
        sent_at=sent_at,
        documents=list(documents) or [document()],
    )


def texts(element: ET.Element) -> dict[str, str | None]:
    """The child elements' texts by tag."""
    return {child.tag: child.text for child in element}


def test_balanced_two_line_document_renders_every_field_in_its_format():
    data = render(posting_file())
    assert data.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
    root = fromstring(data)
    assert root.tag == "FinancePostingRequest"
    assert [child.tag for child in root] == ["CONTROL_FIELDS", "DOCUMENT"]
    assert texts(root.find("CONTROL_FIELDS")) == {
        "SENDERID": "KS-AUTOMATION",
        "RECEIVER": "KVANTUM",
        "FILE_NAME": "FPR_20260302_0001.xml",
        "SEND_DATE": "20260302",
        "SEND_TIME": "140509",
    }
    header = texts(root.find("DOCUMENT/HEADER"))
    assert header == {
        "NO_DOC_POSITION": "2",
        "BALANCE_DEBET": "1234.50",
        "BALANCE_CREDIT": "1234.50",
        "COMP_CODE": "0100",
        "DOC_TYPE": "KR",
        "DOC_DATE": "20260302",
        "PSTNG_DATE": "20260302",
        "FIS_PERIOD": "03",
        "HEADER_TXT": "Udbetaling af krav",
        "CURRENCY": "DKK",
        "XREF1_HD": "KRAV-0001",
    }
    assert header["BALANCE_DEBET"] == header["BALANCE_CREDIT"]
    debit, credit_line = (texts(item) for item in root.findall("DOCUMENT/LINES/LINE"))
    assert debit == {
        "DEB_CRED_IND": "D",
        "AMT_DOCCUR": "1234.50",
        "VALUE_DATE": "20260303",
        "ITEM_TEXT": "Refusion af udlæg",
        "GL_ACCOUNT": "44110000",
        "COSTCENTER": "1010101",
    }  # empty optional elements (WBS, payee) are left out, not written empty
    assert credit_line == {
        "DEB_CRED_IND": "K",
        "AMT_DOCCUR": "1234.50",
        "VALUE_DATE": "20260303",
        "ITEM_TEXT": "Refusion af udlæg",
        "GL_ACCOUNT": "29100000",
        "PAYEE_NO_CODE": "CVR",
        "PAYEE_NO": "12345674",
    }


@pytest.mark.parametrize(
    ("amount", "written"),
    [("1234.5", "1234.50"), ("7", "7.00"), ("0.01", "0.01"), ("1E+3", "1000.00"), ("99999999999.99", "99999999999.99")],
)
def test_amounts_are_written_with_a_dot_and_two_places(amount, written):
    root = fromstring(render(posting_file(document(lines=[line(amount=amount), credit(amount)]))))
    assert {item.findtext("AMT_DOCCUR") for item in root.iter("LINE")} == {written}
    assert root.findtext("DOCUMENT/HEADER/BALANCE_DEBET") == written


def test_several_lines_balance_in_total():
    lines = [line(amount="100.10"), line(amount="0.90"), credit("50.00"), credit("51.00")]
    header = fromstring(render(posting_file(document(lines=lines)))).find("DOCUMENT/HEADER")
    assert header.findtext("NO_DOC_POSITION") == "4"
    assert header.findtext("BALANCE_DEBET") == header.findtext("BALANCE_CREDIT") == "101.00"


def test_unbalanced_document_is_refused_with_both_totals():
    with pytest.raises(ValidationError) as caught:
        document(lines=[line(amount="1234.50"), credit("1234.49")])
    message = str(caught.value)
    assert "does not balance" in message
    assert "debit 1234.50" in message
    assert "credit 1234.49" in message


def test_one_sided_document_is_refused():
    with pytest.raises(ValidationError, match="does not balance"):
        document(lines=[line(), line()])


def test_999_lines_are_fine_and_1000_are_refused():
    debit = line(amount="998.00")
    assert len(document(lines=[debit] + [credit("1.00")] * (MAX_LINES - 1)).lines) == MAX_LINES
    with pytest.raises(ValidationError, match="at most 999 lines"):
        document(lines=[line(amount="999.00")] + [credit("1.00")] * MAX_LINES)


def test_a_document_needs_two_lines():
    with pytest.raises(ValidationError):
        document(lines=[line()])


@pytest.mark.parametrize(
    ("field", "limit"),
    [("item_text", 50)],
)
def test_line_text_length(field, limit):
    assert len(getattr(line(**{field: "x" * limit}), field)) == limit
    with pytest.raises(ValidationError, match="at most 50 characters"):
        line(**{field: "x" * (limit + 1)})


@pytest.mark.parametrize(("field", "limit"), [("header_text", 25), ("reference", 20)])
def test_header_text_lengths(field, limit):
    assert len(getattr(document(**{field: "æ" * limit}), field)) == limit  # characters, not bytes
    with pytest.raises(ValidationError, match=f"at most {limit} characters"):
        document(**{field: "æ" * (limit + 1)})


@pytest.mark.parametrize("text", ["", "   ", "to\nlinjer", "tab\there", "nul\x00byte"])
def test_blank_or_control_character_texts_are_refused(text):
    with pytest.raises(ValidationError):
        line(item_text=text)


def test_xml_special_characters_are_escaped_and_a_leading_equals_is_kept():
    tricky = '<b>Tom & Jerry\'s "bil"</b>'
    formula = '=HYPERLINK("http://x")'
    data = render(posting_file(document(lines=[line(item_text=tricky), credit(item_text=formula)])))
    assert b"&lt;b&gt;Tom &amp; Jerry's" in data
    assert b"<b>" not in data
    items = [item.findtext("ITEM_TEXT") for item in fromstring(data).iter("LINE")]
    assert items == [tricky, formula]  # escaped for XML, never neutralised like a spreadsheet cell


def test_rendering_is_deterministic_to_the_byte():
    first = render(posting_file(document("KRAV-1"), document("KRAV-2")))
    again = render(posting_file(document("KRAV-1"), document("KRAV-2")))
    assert first == again
    assert render(PostingFile.model_validate_json(posting_file().model_dump_json())) == render(posting_file())


@pytest.mark.parametrize(
    ("sent_at", "send_date", "send_time"),
    [
        (datetime(2026, 3, 29, 0, 59, 59, tzinfo=UTC), "20260329", "015959"),  # CET, before the spring change
        (datetime(2026, 3, 29, 1, 0, 0, tzinfo=UTC), "20260329", "030000"),  # CEST from 01:00 UTC
        (datetime(2026, 10, 25, 0, 30, tzinfo=UTC), "20261025", "023000"),  # CEST, the first 02:30
        (datetime(2026, 10, 25, 1, 30, tzinfo=UTC), "20261025", "023000"),  # CET, the second 02:30
        (datetime(2026, 12, 31, 23, 30, tzinfo=UTC), "20270101", "003000"),  # already next year in Copenhagen
    ],
)
def test_send_date_and_time_are_copenhagen_wall_clock(sent_at, send_date, send_time):
    control = fromstring(render(posting_file(sent_at=sent_at))).find("CONTROL_FIELDS")
    assert control.findtext("SEND_DATE") == send_date
    assert control.findtext("SEND_TIME") == send_time


def test_sent_at_is_held_in_utc_and_must_carry_a_zone():
    from zoneinfo import ZoneInfo

    local = datetime(2026, 6, 1, 12, 0, tzinfo=ZoneInfo("Europe/Copenhagen"))
    assert posting_file(sent_at=local).sent_at == datetime(2026, 6, 1, 10, 0, tzinfo=UTC)
    with pytest.raises(ValidationError, match="time zone"):
        posting_file(sent_at=datetime(2026, 6, 1, 12, 0))


def test_fiscal_period_is_derived_from_the_posting_date_unless_given():
    assert document(posting_date=date(2026, 12, 31)).fiscal_period == 12
    assert document(posting_date=date(2026, 12, 31), fiscal_period=13).fiscal_period == 13
    with pytest.raises(ValidationError, match="does not match"):
        document(posting_date=date(2026, 3, 2), fiscal_period=4)


def test_duplicate_document_references_in_a_file_are_refused():
    with pytest.raises(ValidationError, match="appears twice"):
        posting_file(document("KRAV-1"), document("KRAV-1"))


@pytest.mark.parametrize("name", ["../outbox/x.xml", "a/b.xml", "x y.xml", ".hidden", "a..xml", "fil<1>.xml", ""])
def test_unsafe_file_names_are_refused(name):
    with pytest.raises(ValidationError):
        PostingFile(sender_id="KS", receiver="KVANTUM", file_name=name, sent_at=SENT, documents=[document()])


def test_line_rules():
    with pytest.raises(ValidationError, match="give both or neither"):
        credit(payee_no=None)
    with pytest.raises(ValidationError, match="8 digits"):
        credit(payee_no="123456789")
    with pytest.raises(ValidationError, match="not both"):
        line(wbs_element="XG-0001-02")
    with pytest.raises(ValidationError):
        line(amount="0.00")
    with pytest.raises(ValidationError):
        line(amount="1.005")
    with pytest.raises(ValidationError, match="never a float"):
        PostingLine(debit_credit="D", amount=0.1, value_date=date(2026, 3, 3), item_text="x", gl_account="1")  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        line(gl_account=None)
    with pytest.raises(ValidationError):
        document(currency="EUR")


def test_errors_never_echo_a_cpr():
    with pytest.raises(ValidationError) as caught:
        credit(payee_code="CPR", payee_no="010158500")  # a synthetic CPR with its leading zero dropped
    assert "010158500" not in str(caught.value)


RESULTS = [
    DocumentResult(reference="KRAV-1", status="BOOKED", document_number="1900001234"),
    DocumentResult(
        reference="KRAV-2", status="REJECTED", code="NO_NEMKONTO", message="Modtager har ingen NemKonto & <ingen> konto"
    ),
]


def test_response_round_trip():
    response = PostingResponse(file_name="FPR_20260302_0001.xml", sent_at=SENT, results=RESULTS)
    data = render_response(response)
    assert data == render_response(response)
    assert parse_response(data) == RESULTS
    assert parse_response_file(data) == response
    root = fromstring(data)
    assert root.findtext("CONTROL_FIELDS/SEND_TIME") == "140509"
    rejected = root.findall("DOCUMENT_RESULT")[1]
    assert texts(rejected) == {
        "XREF1_HD": "KRAV-2",
        "STATUS": "REJECTED",
        "MESSAGE_CODE": "NO_NEMKONTO",
        "MESSAGE": "Modtager har ingen NemKonto & <ingen> konto",
    }


def test_rejected_result_carries_its_message():
    data = b"""<?xml version="1.0" encoding="UTF-8"?>
<FinancePostingResponse>
  <CONTROL_FIELDS><FILE_NAME>FPR_1.xml</FILE_NAME></CONTROL_FIELDS>
  <DOCUMENT_RESULT><XREF1_HD>KRAV-9</XREF1_HD><STATUS>REJECTED</STATUS>
    <MESSAGE_CODE>ACCOUNT_CLOSED</MESSAGE_CODE><MESSAGE>Konto lukket</MESSAGE></DOCUMENT_RESULT>
</FinancePostingResponse>"""
    (result,) = parse_response(data)
    assert result == DocumentResult(
        reference="KRAV-9", status="REJECTED", code="ACCOUNT_CLOSED", message="Konto lukket"
    )
    assert not result.booked
    assert parse_response_file(data).sent_at is None


def test_a_returned_payment_carries_its_booking_and_the_banks_reason():
    data = b"""<?xml version="1.0" encoding="UTF-8"?>
<FinancePostingResponse>
  <CONTROL_FIELDS><FILE_NAME>FPR_1.xml</FILE_NAME></CONTROL_FIELDS>
  <DOCUMENT_RESULT><XREF1_HD>KRAV-9</XREF1_HD><STATUS>RETURNED</STATUS><DOC_NO>1900000001</DOC_NO>
    <MESSAGE_CODE>INGEN_NEMKONTO</MESSAGE_CODE><MESSAGE>Modtageren har ingen NemKonto.</MESSAGE></DOCUMENT_RESULT>
</FinancePostingResponse>"""
    response = parse_response_file(data)
    (result,) = response.results
    assert (result.status, result.document_number, result.code) == ("RETURNED", "1900000001", "INGEN_NEMKONTO")
    assert result.message == "Modtageren har ingen NemKonto." and not result.booked
    assert response.file_name == "FPR_1.xml", "a return names the request file the document was in"
    assert parse_response(render_response(response)) == [result]


def test_booked_is_derived_from_the_status():
    assert DocumentResult(reference="K", status="BOOKED", document_number="1").booked
    assert not DocumentResult(reference="K", status="REJECTED", code="X", message="x").booked
    assert not DocumentResult(reference="K", status="RETURNED", document_number="1", code="X", message="x").booked
    with pytest.raises(ValidationError):
        DocumentResult(reference="K", booked=True, document_number="1")  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"status": "BOOKED"}, "a booked document has a document number"),
        ({"status": "REJECTED", "document_number": "1"}, "a rejected document has no document number"),
        ({"status": "RETURNED", "code": "X", "message": "x"}, "booked under"),
        ({"status": "RETURNED", "document_number": "1", "code": "X"}, "the bank's reason"),
        ({"status": "RETURNED", "document_number": "1", "message": "x"}, "the bank's reason"),
        ({"status": "PAID", "document_number": "1"}, "status"),
    ],
)
def test_status_and_document_number_go_together(fields, reason):
    with pytest.raises(ValidationError, match=reason):
        DocumentResult(reference="K", **fields)


def test_a_cpr_in_a_response_message_is_redacted():
    data = render_response(
        PostingResponse(
            file_name="FPR_1.xml",
            results=[DocumentResult(reference="K", status="REJECTED", message="CPR 0101585000 ukendt")],
        )
    )
    assert parse_response(data)[0].message == "CPR [CPR] ukendt"


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
  <!ENTITY lol "lol">
  <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
  <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
]>
<FinancePostingResponse><CONTROL_FIELDS><FILE_NAME>&lol3;</FILE_NAME></CONTROL_FIELDS></FinancePostingResponse>"""

EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>
<FinancePostingResponse><CONTROL_FIELDS><FILE_NAME>&x;</FILE_NAME></CONTROL_FIELDS></FinancePostingResponse>"""

BARE_DOCTYPE = b"""<?xml version="1.0"?>
<!DOCTYPE FinancePostingResponse>
<FinancePostingResponse><CONTROL_FIELDS><FILE_NAME>a.xml</FILE_NAME></CONTROL_FIELDS></FinancePostingResponse>"""


@pytest.mark.parametrize("data", [BILLION_LAUGHS, EXTERNAL_ENTITY, BARE_DOCTYPE], ids=["laughs", "external", "dtd"])
def test_a_response_with_a_dtd_or_entities_is_refused(data):
    with pytest.raises(PostingResponseError, match="DTD or entity"):
        parse_response(data)


def _response(results: str, control: str = "<FILE_NAME>FPR_1.xml</FILE_NAME>") -> bytes:
    """A response file around the given results."""
    return (
        f"<FinancePostingResponse><CONTROL_FIELDS>{control}</CONTROL_FIELDS>{results}</FinancePostingResponse>".encode()
    )


BOOKED = "<DOCUMENT_RESULT><XREF1_HD>K1</XREF1_HD><STATUS>BOOKED</STATUS><DOC_NO>1</DOC_NO></DOCUMENT_RESULT>"


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "not well-formed"),
        (b"<FinancePostingResponse>", "not well-formed"),
        (b"PK\x03\x04 not xml", "not well-formed"),
        (b"<FinancePostingRequest/>", "root"),
        (_response(""), "at least one DOCUMENT_RESULT"),
        (_response(BOOKED, control=""), "no FILE_NAME"),
        (_response(BOOKED.replace("BOOKED", "MAYBE")), "not BOOKED, REJECTED or RETURNED"),
        (_response(BOOKED.replace("BOOKED", "RETURNED")), "the bank's reason"),
        (_response(BOOKED.replace("<DOC_NO>1</DOC_NO>", "")), "document number"),
        (_response(BOOKED.replace("<XREF1_HD>K1</XREF1_HD>", "")), "no XREF1_HD"),
        (_response(BOOKED + BOOKED), "answered twice"),
        (_response(BOOKED.replace("</DOCUMENT_RESULT>", "<EXTRA>x</EXTRA></DOCUMENT_RESULT>")), "unexpected"),
        (_response(BOOKED, control="<FILE_NAME>../x.xml</FILE_NAME>"), "file name"),
        (_response(BOOKED, control="<FILE_NAME>a.xml</FILE_NAME><SEND_DATE>2026</SEND_DATE>"), "go together"),
        (_response(BOOKED.replace("K1", "K" * 21)), "at most 20 characters"),
    ],
)
def test_a_malformed_response_is_a_clear_error(data, reason):
    with pytest.raises(PostingResponseError, match=reason):
        parse_response(data)
