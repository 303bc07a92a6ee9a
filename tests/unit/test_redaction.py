import io
import logging

import pytest
from pydantic import ValidationError

from shared.logs import get_logger, log_context
from shared.models import BoundaryModel
from shared.personal_data import REDACTED, contains_cpr, pseudonym, redact
from tests.logscan import scan

CPR = "2412581234"  # synthetic: 24 December 1858


@pytest.fixture
def captured() -> tuple[logging.Logger, io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(
        logging.Formatter("%(levelname)s [%(automation)s|%(run_id)s|%(step)s|%(item_id)s] %(message)s %(note)s")
    )
    logger = get_logger("tests.redaction")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    yield logger, stream
    logger.removeHandler(handler)


@pytest.mark.parametrize(
    "text",
    [CPR, "241258-1234", "x241258-1234y", "cpr=412581234 (leading zero dropped)", "41258-1234", f"a {CPR}."],
)
def test_redact_removes_every_cpr_shape(text):
    assert not contains_cpr(redact(text))
    assert REDACTED in redact(text)


@pytest.mark.parametrize(
    "text",
    ["CVR 12345678", "EAN 5798000000001", "2026-11-24", "sample.20261124T051438-267Z.2d7116", "beløb 1.234,50"],
)
def test_redact_leaves_other_numbers(text):
    assert redact(text) == text


def test_message_arguments_and_extra_fields_are_redacted(captured):
    logger, stream = captured
    with log_context(automation="sample", run_id="r-1", step="validate", item_id="000001"):
        logger.info("payee %s and %d", CPR, 412581234, extra={"note": f"note {CPR[:6]}-{CPR[6:]}"})
    line = stream.getvalue()
    assert not contains_cpr(line)
    assert "[sample|r-1|validate|000001]" in line
    assert line.count(REDACTED) == 3


def test_exception_text_and_traceback_are_redacted(captured):
    logger, stream = captured

    def failing() -> None:
        try:
            raise KeyError(f"lookup of {CPR} failed")
        except KeyError as inner:
            raise RuntimeError(f"wrapped {CPR}") from inner

    try:
        failing()
    except RuntimeError:
        logger.exception("step failed", extra={"note": ""})
    text = stream.getvalue()
    assert "Traceback" in text and "RuntimeError" in text and "KeyError" in text
    assert not contains_cpr(text)


def test_exception_object_handed_to_other_handlers_is_redacted(captured):
    logger, _ = captured
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    keep = Keep()
    logger.addHandler(keep)
    try:
        raise ValueError(CPR)
    except ValueError:
        logger.error("failed", exc_info=True, extra={"note": ""})
    finally:
        logger.removeHandler(keep)
    (record,) = records
    assert record.exc_info is not None
    assert not contains_cpr(str(record.exc_info[1]))
    assert "ValueError" in str(record.exc_info[1])


def test_pydantic_errors_do_not_echo_input(captured):
    logger, stream = captured

    class Payee(BoundaryModel):
        amount: int

    with pytest.raises(ValidationError) as error:
        Payee(amount=f"{CPR} kr")  # type: ignore[arg-type]
    assert CPR not in str(error.value)
    try:
        Payee(amount=f"{CPR} kr")  # type: ignore[arg-type]
    except ValidationError:
        logger.exception("bad row", extra={"note": ""})
    assert CPR not in stream.getvalue()


def test_context_fields_are_empty_outside_a_context(captured):
    logger, stream = captured
    logger.info("plain", extra={"note": ""})
    assert "[|||]" in stream.getvalue()


def test_pseudonym_is_keyed_versioned_and_stable():
    first = pseudonym(CPR, b"key-1", "1")
    assert first == pseudonym(CPR, b"key-1", "1")
    assert first != pseudonym(CPR, b"key-2", "1")
    assert first.startswith("p1:") and not contains_cpr(first) and CPR not in first
    assert pseudonym(CPR, b"key-2", "2").startswith("p2:")


def test_log_scan_finds_a_planted_cpr(tmp_path):
    (tmp_path / "host.log").write_text(f"fine line\nleaked {CPR[:6]}-{CPR[6:]} here\n")
    findings = scan(tmp_path)
    assert findings == ["host.log:2: 24*********"]
    assert CPR not in findings[0]
