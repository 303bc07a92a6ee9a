"""Pure rules of the platform services: schedules, the telemetry identity, mail composition, notices."""

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests
from pydantic import ValidationError

from shared import memory
from shared.connectors.http import pooled_session
from shared.events import CUSTOM_EVENT_ATTRIBUTE, Event, emit
from shared.mail import LINES_PER_MAIL, ROW_CHARACTERS, Notice, _Bag, _rows_of_lines, compose
from shared.schedules import next_occurrence, previous_occurrence
from shared.telemetry import authentication_client_id

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("schedule", "at", "previous", "following"),
    [
        # Seconds first: "0 */15 * * * *" is every quarter hour, not every 15 seconds of minute 0.
        ("0 */15 * * * *", datetime(2026, 11, 24, 10, 7, tzinfo=UTC), (10, 0), (10, 15)),
        # Weekdays only: Saturday noon looks back to Friday and on to Monday.
        ("0 0 6 * * 1-5", datetime(2026, 11, 28, 12, 0, tzinfo=UTC), (6, 0), (6, 0)),
    ],
)
def test_ncrontab_schedules_read_seconds_first(schedule, at, previous, following):
    before, after = previous_occurrence(schedule, at), next_occurrence(schedule, at)
    assert (before.hour, before.minute) == previous and (after.hour, after.minute) == following
    if "1-5" in schedule:
        assert before.weekday() == 4 and after.weekday() == 0


@pytest.mark.parametrize(
    ("value", "client_id"),
    [
        ("ClientId=1111-2222;Authorization=AAD", "1111-2222"),
        ("Authorization=AAD;ClientId=abc", "abc"),
        ("Authorization=AAD", None),  # system-assigned identity
        (None, None),
        ("", None),
    ],
)
def test_the_telemetry_identity_comes_from_the_authentication_string(value, client_id):
    assert authentication_client_id(value) == client_id


def test_an_authentication_string_that_is_not_aad_is_refused():
    with pytest.raises(ValueError, match="Authorization=AAD"):
        authentication_client_id("ClientId=abc;Authorization=Key")


def test_an_unconfigured_app_never_imports_the_telemetry_distro():
    # (msal is no longer checked: the SDK-typed blob binding of the claims intake imports azure.identity, and
    # with it msal, when the app is indexed.)
    code = "import sys, function_app; print('azure.monitor.opentelemetry' in sys.modules)"
    env = {"PATH": "/usr/bin:/bin", "PSEUDONYM_KEY": "x"}
    result = subprocess.run(
        [sys.executable, "-c", code], check=False, cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False"]


def test_an_event_is_a_log_record_the_exporter_sends_as_a_custom_event(caplog):
    caplog.set_level("INFO", logger="ks.events")
    emit(Event.ITEM_OUTCOME, automation="sample", run_id="r", item_id="000001", outcome="done", reason_code="")
    record = caplog.records[-1]
    assert getattr(record, CUSTOM_EVENT_ATTRIBUTE) == "ItemOutcome"
    assert (record.automation, record.item_id, record.outcome) == ("sample", "000001", "done")


def _line(item_id: str, subject: str = "Kvittering") -> dict[str, str]:
    return {"Recipient": "a@kk.dk", "ItemId": item_id, "Subject": subject, "Text": f"Sag {item_id} er oprettet."}


def test_one_mail_per_recipient_carries_every_line_under_their_subject():
    mail = compose("a@kk.dk", [_line("000001"), _line("000002")])
    assert mail.to == ["a@kk.dk"] and mail.subject == "Kvittering"
    assert "Sag 000001 er oprettet." in mail.body and "Sag 000002 er oprettet." in mail.body
    mixed = compose("a@kk.dk", [_line("000001"), _line("000002", "Besked")])
    assert mixed.subject == "Kvitteringer fra Koncernservice"


def test_a_long_mail_is_summarised_rather_than_sent_whole():
    mail = compose("a@kk.dk", [_line(f"{n:06d}") for n in range(LINES_PER_MAIL + 5)])
    assert f"Sag {LINES_PER_MAIL - 1:06d}" in mail.body and f"Sag {LINES_PER_MAIL:06d}" not in mail.body
    assert "og 5 flere" in mail.body


def test_a_notice_needs_an_address_and_text():
    with pytest.raises(ValidationError):
        Notice(recipient="ikke-en-adresse", item_id="000001", subject="Kvittering", text="x")
    with pytest.raises(ValidationError):
        Notice(recipient="a@kk.dk", item_id="000001", subject="Kvittering", text="")


def test_spans_lose_anything_cpr_shaped_before_they_are_exported():
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from shared.telemetry import redacting_span_processor

    exported = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(redacting_span_processor())
    provider.add_span_processor(SimpleSpanProcessor(exported))
    url = "https://opus.example/BusinessPartners?partner_id=1503625234&id_type=CPR"
    with provider.get_tracer("test").start_as_current_span("GET 150362-5234", attributes={"url.full": url}):
        pass
    (span,) = exported.get_finished_spans()
    assert span.attributes["url.full"] == "https://opus.example/BusinessPartners?partner_id=[CPR]&id_type=CPR"
    assert span.name == "GET [CPR]"


def test_a_session_reads_the_environment_once_and_never_looks_for_a_netrc(monkeypatch, tmp_path):
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tmp_path / "bundle.pem"))

    def no_netrc(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("a .netrc was looked for")

    monkeypatch.setattr(requests.sessions, "get_netrc_auth", no_netrc)
    session = pooled_session()
    session.prepare_request(requests.Request("GET", "http://127.0.0.1:1/x"))
    settings = session.merge_environment_settings("http://127.0.0.1:1/x", {}, None, None, None)
    assert (session.trust_env, settings["verify"]) == (False, str(tmp_path / "bundle.pem"))

    monkeypatch.setenv("https_proxy", "http://proxy.example:3128")
    assert pooled_session().trust_env is True


def test_mail_lines_are_stored_in_rows_that_fit_a_table_property_however_long_the_lines():
    longest = [
        Notice(recipient="a@x.dk", item_id=f"{n:06d}", subject="Æ" * 200, text=('"ø\n' * 700)[:2000]) for n in range(40)
    ]
    rows = list(_rows_of_lines(longest))
    assert [line["ItemId"] for row in rows for line in row] == [n.item_id for n in longest]
    for row in rows:
        assert len(json.dumps(row, ensure_ascii=False).encode("utf-16-le")) // 2 <= ROW_CHARACTERS < 32 * 1024
    receipt = "Krav K1: 1.234,50 kr. bogført."
    receipts = [Notice(recipient="a@x.dk", item_id=f"{n:06d}", subject="Kvittering", text=receipt) for n in range(500)]
    assert len(list(_rows_of_lines(receipts))) <= 3, "short lines share rows"


def test_freed_memory_is_handed_back_at_most_once_per_interval(monkeypatch):
    trims: list[int] = []
    monkeypatch.setattr(memory, "_trim", trims.append)
    monkeypatch.setattr(memory, "_next", 0.0)
    assert memory.release_freed() is True
    assert memory.release_freed() is False, "a second chunk within the interval does not walk the heap again"
    monkeypatch.setattr(memory, "_next", 0.0)
    assert memory.release_freed() is True
    assert trims == [0, 0]
    monkeypatch.setattr(memory, "_trim", memory._no_trim)  # not glibc
    monkeypatch.setattr(memory, "_next", 0.0)
    assert memory.release_freed() is False


def test_a_recipients_lines_count_each_item_once_without_holding_every_id():
    bag = _Bag("a@x.dk")
    line = {"Subject": "Kvittering", "Text": "Krav K1 er udbetalt."}
    bag.add([{**line, "ItemId": f"{n:06d}"} for n in range(1, 1001)])
    bag.add([{**line, "ItemId": f"{n:06d}"} for n in range(990, 1011)])  # a redelivery noted some again
    bag.add([{**line, "ItemId": "ret-1"}, {**line, "ItemId": "ret-1"}])
    assert bag.item_count == 1011
    assert len(bag.shown) <= 2 * LINES_PER_MAIL
    assert "... og 811 flere" in bag.compose().body
