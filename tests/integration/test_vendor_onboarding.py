"""Automation 1 end to end on Azurite via devhost: ServiceNow requests in; vendors, closed requests, tasks for
people, receipts and the control list out - each request in exactly its expected state, nothing twice."""

import csv
import io
import logging
from datetime import UTC, datetime, timedelta

import pytest

from devhost.vendor_data import REQUESTER, Scenario, seed
from functions.operations.run_closer import close_run
from functions.vendor_onboarding import control_list, steps
from functions.vendor_onboarding.functions import AUTOMATION, take_open_requests
from shared import ledger, storage
from shared.connectors import cvr as cvr_connector
from shared.personal_data import contains_cpr
from tests.integration.test_crash import devhost

pytestmark = pytest.mark.integration
SUBJECT = "Kvittering: ny leverandør i Kvantum"


@pytest.fixture
def vendor_env(sample_env):
    """The environment with the three simulators emptied and seeded with every scenario."""
    state = sample_env.servicenow.state
    for table in ("sc_req_item", "sc_task", "sys_user"):
        state.tables[table].clear()
    sample_env.cvr.state.reset()
    sample_env.kvantum.state.reset()
    sample_env.scenarios = seed(state, sample_env.cvr.state, sample_env.kvantum.state)
    return sample_env


def requests_by_number(env) -> dict[str, dict]:
    return {r["number"]: r for r in env.servicenow.state.tables["sc_req_item"].values()}


def settle(env, host) -> ledger.Run:
    run_id = take_open_requests(datetime.now(UTC))
    host.run_until_idle(timeout=180)
    closed = close_run(run_id)
    host.run_until_idle(timeout=60)  # hand-offs, then the receipts of the closed run
    return close_run(run_id) or closed


def assert_settled(env, run: ledger.Run, scenarios: list[Scenario]) -> None:
    """Every request in its expected state in the ledger, ServiceNow and Kvantum."""
    items = {row["Reference"]: row for row in ledger.item_rows(run)}
    assert {s.number: s.expected for s in scenarios} == {
        number: (row["Status"], row["ReasonCode"]) for number, row in items.items()
    }
    assert run.status is ledger.RunStatus.COMPLETE, run.problems
    requests = requests_by_number(env)
    # This run's tasks only: a devhost serving the whole app may also settle hand-offs other tests left queued.
    tasks = {
        t["request_item"]: t
        for t in env.servicenow.state.tables["sc_task"].values()
        if str(t.get("correlation_id", "")).startswith(f"{run.run_id}/")
    }
    for scenario in scenarios:
        request, row = requests[scenario.number], items[scenario.number]
        if scenario.expected[0] == "done":
            assert request["state"] == "3" and request["active"] == "false"
            assert request["u_kreditornummer"], scenario.key
            notes = " ".join(text for kind, text in request["journal"] if kind == "work_notes")
            assert "Kontroller" in notes and "CVR-register" in notes
        else:
            task = tasks[request["sys_id"]]
            assert request["state"] == "-5", scenario.key
            assert row["CaseNumber"] == task["number"] and scenario.expected[1] in task["short_description"]
            assert not contains_cpr(task["short_description"]) and not contains_cpr(task["description"])
            assert task["correlation_id"] == f"{run.run_id}/{row['RowKey']}"


def test_every_seeded_request_ends_as_expected_and_nothing_happens_twice(vendor_env, host):
    env, scenarios = vendor_env, vendor_env.scenarios
    run = settle(env, host)
    assert_settled(env, run, scenarios)
    by_key = {s.key: s for s in scenarios}
    requests = requests_by_number(env)

    created = env.kvantum.state.created()
    created_keys = sorted(v["RequestKey"] for v in created)
    expected_new = sorted(s.number for s in scenarios if s.expected[0] == "done" and s.key != "eksisterende")
    assert created_keys == expected_new, "one vendor per request created, none for the existing one"
    assert requests[by_key["eksisterende"].number]["u_kreditornummer"] == "100123"
    renamed = next(v for v in created if v["RequestKey"] == by_key["navneafvigelse"].number)
    assert renamed["NAME1"] == "Grøn Rengøring ApS", "the register's name wins"
    assert renamed["LFB1"][0]["BUKRS"] == "0020" and renamed["KTOKK"] == "LEVD" and renamed["ZZPNR"] == ""

    (mail,) = env.mails(SUBJECT)
    assert mail["to"] == [REQUESTER]
    assert all(s.number in mail["body"] for s in scenarios if s.expected[0] == "done")
    assert not contains_cpr(mail["body"])

    # The intake again: every request is closed, pending or already taken - nothing new, nothing twice.
    again = settle(env, host)
    assert again.run_id != run.run_id and again.expected_items == 0 and again.status is ledger.RunStatus.COMPLETE
    assert len(env.kvantum.state.created()) == len(created)
    assert len(env.servicenow.state.tables["sc_task"]) == sum(1 for s in scenarios if s.expected[0] != "done")
    assert len(env.mails(SUBJECT)) == 1

    # The control list of the day: the vendors created, for a second person.
    day = datetime.now(UTC).astimezone(steps.COPENHAGEN).date()
    name, count = control_list.write(day, steps.CREATED_TABLE, steps.COPENHAGEN)
    text = storage.container(control_list.REPORTS_CONTAINER).download_blob(name).readall().decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(text), delimiter=";"))
    assert count >= len(expected_new) and {r["anmodning"] for r in rows} >= set(expected_new)
    assert all(r["kreditornummer"] and r["cvr"] for r in rows)


def test_a_request_taken_by_a_run_is_not_taken_again_while_it_works(vendor_env, host):
    first = take_open_requests(datetime.now(UTC))
    second = take_open_requests(datetime.now(UTC))  # before any step ran: the requests are still open (state 1)
    host.run_until_idle(timeout=180)
    items_first = list(ledger.item_rows(ledger.get_run(first)))
    items_second = list(ledger.item_rows(ledger.get_run(second)))
    assert len(items_first) == len(vendor_env.scenarios) and items_second == []


def test_the_host_killed_between_create_and_close_creates_no_second_vendor(vendor_env, log_dir):
    env = vendor_env
    run_id = take_open_requests(datetime.now(UTC))
    killed = devhost(env, log_dir, "vendor-kill", "--kill-after", "shared.connectors.kvantum:KvantumClient.create:2")
    assert killed.wait(timeout=180) == 137, "the host should have been killed after the second create"
    finished = devhost(env, log_dir, "vendor-kill-restart")
    assert finished.wait(timeout=180) == 0, "see devhost-vendor-kill-restart.stderr"
    finished = devhost(env, log_dir, "vendor-kill-handoffs")  # hand-offs retried after the restart
    assert finished.wait(timeout=180) == 0
    run = close_run(run_id)
    assert_settled(env, run, env.scenarios)
    keys = [v["RequestKey"] for v in env.kvantum.state.created()]
    assert len(keys) == len(set(keys)), "a repeated create returned the same vendor"
    assert env.kvantum.state.count("POST", "/Vendors") > len(keys), "the create was repeated after the kill"


def test_cvr_down_for_a_while_is_retried_then_succeeds(vendor_env, host, monkeypatch):
    quick = cvr_connector.CvrClient(
        vendor_env.cvr.url, "devhost", "devhost-secret", max_retries=1, sleep=lambda _seconds: None
    )
    monkeypatch.setattr(steps, "cvr_client", lambda: quick)
    vendor_env.cvr.state.inject("503", count=4)  # two lookups' worth of attempts fail, then it answers
    run = settle(vendor_env, host)
    assert_settled(vendor_env, run, vendor_env.scenarios)
    retried = [r for r in ledger.transitions(run.run_id) if r.get("Retried")]
    assert retried, "some items were retried after CVR failed"


def test_cvr_down_for_good_hands_to_a_person_as_technical_failure(vendor_env, host, monkeypatch, caplog):
    caplog.set_level(logging.INFO, logger="ks.events")
    quick = cvr_connector.CvrClient(
        vendor_env.cvr.url, "devhost", "devhost-secret", max_retries=0, sleep=lambda _seconds: None
    )
    monkeypatch.setattr(steps, "cvr_client", lambda: quick)
    vendor_env.cvr.state.inject("503", count=10_000)
    run = settle(vendor_env, host)
    items = {row["Reference"]: row for row in ledger.item_rows(run)}
    before_cvr = ("MANGLENDE_FELT", "UGYLDIGE_OPLYSNINGER")  # refused on the form alone, CVR never asked
    needs_cvr = [
        s
        for s in vendor_env.scenarios
        if s.variables["leverandoer_type"] == "DK_VIRKSOMHED" and s.expected[1] not in before_cvr
    ]
    for scenario in vendor_env.scenarios:
        if scenario not in needs_cvr:
            assert (items[scenario.number]["Status"], items[scenario.number]["ReasonCode"]) == scenario.expected
    for scenario in needs_cvr:
        assert (items[scenario.number]["Status"], items[scenario.number]["ReasonCode"]) == (
            "handed_off",
            "TEKNISK_FEJL",
        ), scenario.key
    alerts = [r for r in caplog.records if getattr(r, "custom_event", "") == "OperatorAlert"]
    assert {r.item_id for r in alerts if r.reason_code == "TEKNISK_FEJL"} >= {
        items[s.number]["RowKey"] for s in needs_cvr
    }
    assert run.status is ledger.RunStatus.COMPLETE, "never lost: every item ended and has its case"
    assert run.automation == AUTOMATION


def test_an_intake_that_died_before_its_run_opened_is_finished_by_the_next_tick(vendor_env, host, monkeypatch):
    real_advance = ledger.advance_run

    def die(*args, **kwargs):
        raise RuntimeError("the instance was recycled")

    monkeypatch.setattr(ledger, "advance_run", die)
    tick = datetime.now(UTC)
    with pytest.raises(Exception, match="recycled"):  # redacted on its way out, as every escaping error is
        take_open_requests(tick)
    monkeypatch.setattr(ledger, "advance_run", real_advance)
    (stuck,) = [r for r in ledger.newest_runs(AUTOMATION, 5) if r.status is ledger.RunStatus.INTAKE]

    later = take_open_requests(tick + timedelta(minutes=3))  # the next tick finishes it, and takes nothing new
    host.run_until_idle(timeout=180)
    close_run(stuck.run_id)
    host.run_until_idle(timeout=60)
    assert_settled(vendor_env, close_run(stuck.run_id), vendor_env.scenarios)
    assert ledger.get_run(later).expected_items == 0
