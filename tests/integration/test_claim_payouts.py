"""Automation 2 end to end on Azurite via devhost: a claims file in; posting files, Kvantum's responses,
clearings in Opus Debitor, cases for people, receipts and a reconciled batch report out - every claim in
exactly its expected state, nothing paid twice, whatever is redelivered, duplicated, split or killed."""

import csv
import io
import logging
import re
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import defusedxml.ElementTree as DefusedET
import pytest

from devhost import claims_data
from devhost.simulators.kvantum_posting import KvantumPostingIntake
from functions.claim_payouts import intake, payout_index, posting, responses
from functions.claim_payouts.chain import chain
from functions.claim_payouts.steps import AUTOMATION, OUTBOX
from functions.operations.run_closer import close_run
from functions.operations.sweeper import pick_up_orphans
from shared import ledger, pseudonyms, storage
from shared.personal_data import contains_cpr
from tests.integration.test_crash import devhost

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
UPLOADER = "kreditor.sagsbehandler@devhost.example"
RECEIPT = "Kvittering: udbetaling af krav"


@pytest.fixture
def claims_env(sample_env):
    """The environment with the claim simulators emptied and seeded with every scenario."""
    env = sample_env
    env.cvr.state.reset()
    env.kvantum.state.reset()
    env.opus_debitor.state.reset()
    env.servicenow.state.tables["sc_task"].clear()
    for container in (intake.INBOX, OUTBOX, responses.RESPONSES, "payout-index", "rejected", "kvantum-sim"):
        client = storage.container(container)
        if client.exists():
            for blob in client.list_blobs():
                client.delete_blob(blob.name)
    env.posting = KvantumPostingIntake(env.connection_string)  # Kvantum with nothing booked yet
    env.seeds = claims_data.seeds()
    claims_data.apply_seeds(
        env.seeds,
        cvr_state=env.cvr.state,
        opus_state=env.opus_debitor.state,
        kvantum_state=env.kvantum.state,
        posting_intake=env.posting,
    )
    return env


def drop(name: str, body: bytes, uploader: str = UPLOADER) -> None:
    storage.container(intake.INBOX).upload_blob(name, body, overwrite=True, metadata={"indsendt_af": uploader})


def csv_file(rows: list[dict[str, str]], encoding: str = "utf-8", order: list[str] | None = None) -> bytes:
    """The rows as a claims file; its attachment column names this test run, so no two tests share content
    (the ledger keeps every file's content hash, and a second file with the same bytes is a duplicate)."""
    out = io.BytesIO()
    tag = f"BILAG-{uuid.uuid4().hex[:8]}"
    claims_data.write_csv([{**row, "bilag": tag} for row in rows], out, encoding=encoding, column_order=order)
    return out.getvalue()


def run_of(name: str) -> ledger.Run:
    runs = [r for r in ledger.newest_runs(AUTOMATION, 500) if r.source == f"{intake.INBOX}/{name}"]
    assert len(runs) == 1, f"expected one run for {name}, found {len(runs)}"
    return runs[0]


def settle(env, host, *names: str) -> list[ledger.Run]:
    """Everything the host and Kvantum do for the files, until each run closes (or stays open)."""
    for _ in range(4):
        host.run_until_idle(timeout=240)
        env.posting.process_pending()
    host.run_until_idle(timeout=240)
    runs = [run_of(name) for name in names]
    for run in runs:
        close_run(run.run_id)
    host.run_until_idle(timeout=120)  # hand-offs, then the receipts of the closed runs
    return [close_run(run.run_id) or ledger.get_run(run.run_id) for run in runs]


def items_by_claim(run: ledger.Run) -> dict[str, dict]:
    return {row["ClaimId"]: row for row in ledger.item_rows(run)}


def outbox_documents() -> Counter[str]:
    """How many times each claim id appears as a document in the outbox's posting files."""
    seen: Counter[str] = Counter()
    container = storage.container(OUTBOX)
    for blob in container.list_blobs():
        root = DefusedET.fromstring(container.download_blob(blob.name).readall())
        for header in root.iter("HEADER"):
            assert header.findtext("BALANCE_DEBET") == header.findtext("BALANCE_CREDIT")
            seen[header.findtext("XREF1_HD") or ""] += 1
    return seen


def refused_as_repeated() -> list[str]:
    """References Kvantum's responses refused because it had booked them already."""
    container = storage.container(responses.RESPONSES)
    found = []
    for blob in container.list_blobs():
        if blob.name.endswith(".xml"):
            response = posting.parse_response_file(container.download_blob(blob.name).readall())
            found += [r.reference for r in response.results if r.code == "DUBLET_REFERENCE"]
    return found


def report(run: ledger.Run, kind: str) -> list[dict[str, str]]:
    container = storage.container("reports")
    (name,) = [
        b.name
        for b in container.list_blobs(name_starts_with=f"{AUTOMATION}/")
        if run.run_id in b.name and b.name.endswith(f"-{kind}.csv")
    ]
    text = container.download_blob(name).readall().decode("utf-8-sig")
    return list(csv.DictReader(io.StringIO(text), delimiter=";"))


def test_a_mixed_file_ends_every_claim_as_expected_with_balanced_files_receipts_cases_and_a_reconciled_report(
    claims_env, host
):
    env = claims_env
    scenarios = claims_data.scenarios()
    drop("krav-blandet.csv", csv_file([s.row for s in scenarios]))
    (run,) = settle(env, host, "krav-blandet.csv")

    assert run.status is ledger.RunStatus.COMPLETE, (run.problems, run.missing)
    assert run.submitted_by == UPLOADER
    items = items_by_claim(run)
    assert {s.row["krav_id"]: s.expected for s in scenarios} == {
        claim: (row["Status"], row["ReasonCode"]) for claim, row in items.items()
    }
    assert run.expected_items == len(scenarios)

    # Posting files: each claim that was posted is a document exactly once, and balanced.
    posted = outbox_documents()
    paid = {s.row["krav_id"] for s in scenarios if s.expected[0] == "done"}
    assert set(posted) >= paid and max(posted.values()) == 1
    for claim in paid:
        assert re.fullmatch(r"[0-9]{4}-[0-9]{6}", items[claim]["DocNo"]), "the document number, shown CPR-safe"

    # Offsetting: the debt of the payee whose claim type is offset automatically is cleared, keyed by the claim.
    offset = [row for row in items.values() if row.get("Offset") and Decimal(row["Offset"]) > 0]
    assert offset and all(row["Status"] == "done" for row in offset)
    clearings = env.opus_debitor.state.clearings()
    assert {c["ClaimKey"] for c in clearings} == {row["ClaimId"] for row in offset}

    # Hand-offs: one case per claim for a person, with the reason and no CPR in its title.
    tasks = env.tasks(run.run_id)
    handed = {row["RowKey"] for row in items.values() if row["Status"] == "handed_off"}
    assert set(tasks) == handed and all(len(t) == 1 for t in tasks.values())
    assert not any(contains_cpr(t[0]["short_description"]) for t in tasks.values())

    # Receipts: one mail per requester for the run, naming each of their claims.
    mails = env.mails(RECEIPT) + env.mails("Krav sendt til manuel behandling")
    requesters = {
        s.row["anmoder_email"].lower()
        for s in scenarios
        if "@" in s.row["anmoder_email"] and s.expected[0] != "rejected"
    }
    recipients = [m["to"][0].lower() for m in env.mails() if m["to"][0].lower() in requesters]
    assert sorted(recipients) == sorted(set(recipients)), "one mail per requester"
    assert not any(contains_cpr(m["body"]) for m in mails)

    # The batch report reconciles with the file.
    lines = report(run, "poster")
    assert len(lines) == len(scenarios)
    summary = {row["post"]: row for row in report(run, "afstemning")}
    assert summary["afstemt med filen"]["antal"] == "ja"
    assert summary["rækker og beløb i filen"]["antal"] == str(len(scenarios))
    assert summary["rækker og beløb i filen"]["beloeb"] == summary["rækker og beløb i alt behandlet"]["beloeb"]
    assert not any(line["krav_id"].startswith(("=", "+", "-", "@")) for line in lines)


@pytest.mark.parametrize("name", ["krav-blandet-bom.csv", "krav-blandet-cp1252.csv", "krav-blandet.xlsx"])
def test_the_mixed_sample_in_every_encoding_and_as_a_workbook_ends_the_same(claims_env, host, name):
    body = (ROOT / "samples" / "claims" / name).read_bytes()
    drop(name, body)
    (run,) = settle(claims_env, host, name)
    assert run.status is ledger.RunStatus.COMPLETE, (run.problems, run.missing)
    outcomes = {claim: (row["Status"], row["ReasonCode"]) for claim, row in items_by_claim(run).items()}
    assert outcomes == {s.row["krav_id"]: s.expected for s in claims_data.scenarios()}


def test_the_same_blob_delivered_again_does_nothing(claims_env, host):
    rows = [s.row for s in claims_data.scenarios() if s.expected == ("done", "")]
    rows[0] = {**rows[0], "krav_id": "G1-0000000042"}  # a case system's id with a CPR-shaped digit run
    drop("igen.csv", csv_file(rows))
    (run,) = settle(claims_env, host, "igen.csv")
    assert {row["Status"] for row in ledger.item_rows(run)} == {"done"}
    assert "G1-[CPR]" in items_by_claim(run), "shown redacted in the ledger, booked under its real id"
    files = sorted(b.name for b in storage.container(OUTBOX).list_blobs())
    blob = storage.container(intake.INBOX).get_blob_client("igen.csv")
    assert intake.open_claims_file(blob) == run.run_id  # an Event Grid redelivery
    assert intake.open_claims_file(blob) == run.run_id
    settle(claims_env, host, "igen.csv")
    assert sorted(b.name for b in storage.container(OUTBOX).list_blobs()) == files
    assert len(list(ledger.item_rows(run))) == len(rows)


def test_the_same_content_under_a_new_name_is_rejected_as_a_duplicate(claims_env, host):
    rows = [s.row for s in claims_data.scenarios() if s.expected == ("done", "")]
    body = csv_file(rows)
    drop("original.csv", body)
    settle(claims_env, host, "original.csv")
    drop("kopi.csv", body, uploader="anden.bruger@devhost.example")
    (copy,) = settle(claims_env, host, "kopi.csv")
    (item,) = list(ledger.item_rows(copy))
    assert (item["Status"], item["ReasonCode"]) == ("rejected", "DUBLET_FIL")
    assert copy.status is ledger.RunStatus.COMPLETE
    assert not storage.container(intake.INBOX).get_blob_client("kopi.csv").exists(), "moved out of the inbox"
    rejected = storage.container("rejected")
    names = [b.name for b in rejected.list_blobs(name_starts_with=f"{AUTOMATION}/{copy.run_id}/")]
    kept = next(n for n in names if n.endswith("kopi.csv"))
    assert rejected.download_blob(kept).readall() == body, "moved untouched"
    (mail,) = [m for m in claims_env.mails("Kravfil afvist") if m["to"] == ["anden.bruger@devhost.example"]]
    assert "samme indhold" in mail["body"]
    assert sum(outbox_documents().values()) == len(rows), "nothing of the copy was posted"


@pytest.mark.parametrize("kind", sorted(claims_data.bad_files()))
def test_every_kind_of_bad_file_is_moved_untouched_with_a_danish_report_and_the_uploader_is_told(
    claims_env, host, kind
):
    body = claims_data.bad_files()[kind]
    name = f"fejl-{kind}.csv"
    drop(name, body)
    (run,) = settle(claims_env, host, name)
    (item,) = list(ledger.item_rows(run))
    assert item["Status"] == "rejected" and item["ReasonText"].startswith("Filen er afvist")
    assert item["ReasonCode"] == claims_data.BAD_FILE_CODES[kind]
    rejected = storage.container("rejected")
    folder = f"{AUTOMATION}/{run.run_id}/"
    names = {b.name for b in rejected.list_blobs(name_starts_with=folder)}
    assert rejected.download_blob(f"{folder}{name}").readall() == body
    report_text = rejected.download_blob(f"{folder}{name}.fejl.txt").readall().decode("utf-8")
    assert f"Fejlkode: {item['ReasonCode']}" in report_text and "afvist" in report_text
    assert names == {f"{folder}{name}", f"{folder}{name}.fejl.txt"}
    assert [m["to"] for m in claims_env.mails("Kravfil afvist")] == [[UPLOADER]]
    assert not list(storage.container(OUTBOX).list_blobs())


def test_a_claim_split_across_two_files_to_dodge_the_limit_is_caught(claims_env, host):
    (base,) = [
        s.row for s in claims_data.scenarios() if s.expected == ("done", "") and s.row["modtager_type"] == "CVR"
    ][:1]
    first = {**base, "krav_id": "SPLIT-1", "beloeb": "30.000,00", "reference": "DEL-1", "godkendt_af": "ANNJE"}
    second = {**base, "krav_id": "SPLIT-2", "beloeb": "25.000,00", "reference": "DEL-2", "godkendt_af": "ANNJE"}
    drop("del-1.csv", csv_file([first]))
    drop("del-2.csv", csv_file([second], encoding="cp1252"))
    one, two = settle(claims_env, host, "del-1.csv", "del-2.csv")
    outcomes = {**items_by_claim(one), **items_by_claim(two)}
    assert sorted((row["Status"], row["ReasonCode"]) for row in outcomes.values()) == [
        ("done", ""),
        ("handed_off", "DAGSGRAENSE_OVERSKREDET"),
    ]


def test_claim_ids_that_differ_only_in_case_are_two_documents_each_settled_by_its_own_answer(claims_env, host):
    # Two payees in one payout-index shard (so in one chunk and one posting file), with claim ids that differ
    # only in case: the claim-id check is per payee, so both are paid, and each answer must find its own item.
    (base,) = [
        s.row for s in claims_data.scenarios() if s.expected == ("done", "") and s.row["modtager_type"] == "CPR"
    ][:1]
    by_shard: dict[int, list[str]] = {}
    for serial in range(7000, 7400):
        cpr = claims_data.synthetic_cpr(12, 4, 66, serial)
        payee = pseudonyms.reference(f"CPR:{cpr}")
        by_shard.setdefault(payout_index.shard_of(payee), []).append(cpr)
    first, second = next(cprs for cprs in by_shard.values() if len(cprs) >= 2)[:2]
    rows = [
        {**base, "modtager_id": first, "krav_id": "KR-CASE-a1", "reference": "CASE-1"},
        {**base, "modtager_id": second, "krav_id": "KR-CASE-A1", "reference": "CASE-2"},
    ]
    drop("case.csv", csv_file(rows))
    (run,) = settle(claims_env, host, "case.csv")
    assert run.status is ledger.RunStatus.COMPLETE, run
    outcomes = items_by_claim(run)
    assert {claim: row["Status"] for claim, row in outcomes.items()} == {"KR-CASE-a1": "done", "KR-CASE-A1": "done"}
    assert outcomes["KR-CASE-a1"]["DocNo"] != outcomes["KR-CASE-A1"]["DocNo"]
    assert outcomes["KR-CASE-a1"]["PostingFile"] == outcomes["KR-CASE-A1"]["PostingFile"], "one file, two documents"


def test_a_posting_file_kvantum_could_not_read_sends_each_of_its_claims_to_a_person(claims_env, host, caplog):
    caplog.set_level(logging.INFO, logger="ks.events")
    rows = [s.row for s in claims_data.scenarios() if s.expected == ("done", "")][:2]
    claims_env.posting.hold()  # Kvantum late: the file is out, not answered
    drop("ulaeselig.csv", csv_file(rows))
    host.run_until_idle(timeout=240)
    run = run_of("ulaeselig.csv")
    names = [b.name for b in storage.container(OUTBOX).list_blobs() if run.run_id in b.name]
    assert names
    why = "Filen er ikke velformet XML (linje 1, kolonne 0)."
    for name in names:
        storage.container(responses.RESPONSES).upload_blob(f"{name}{responses.ERROR_SUFFIX}", why.encode())
    claims_env.posting.release()
    (run,) = settle(claims_env, host, "ulaeselig.csv")
    assert run.status is ledger.RunStatus.COMPLETE, run
    outcomes = items_by_claim(run)
    assert {(row["Status"], row["ReasonCode"]) for row in outcomes.values()} == {("handed_off", "POSTERINGSFIL_AFVIST")}
    assert all(why in row["ReasonText"] for row in outcomes.values())
    assert claims_env.posting.booked_references().isdisjoint(outcomes), "Kvantum never answers it after the error"
    assert "POSTERINGSFIL_AFVIST" in caplog.text, "the operators are alerted"


def test_a_file_dropped_while_the_host_is_down_is_picked_up(claims_env, host):
    rows = [s.row for s in claims_data.scenarios() if s.expected == ("done", "")]
    drop("mens-nede.csv", csv_file(rows))
    assert host.lose_blob_events() >= 1  # the event went while nobody listened
    host.run_until_idle()
    assert not [r for r in ledger.newest_runs(AUTOMATION, 500) if r.source.endswith("mens-nede.csv")]
    pick_up_orphans(datetime.now(UTC) + timedelta(minutes=30))
    (run,) = settle(claims_env, host, "mens-nede.csv")
    assert run.status is ledger.RunStatus.COMPLETE
    assert {row["Status"] for row in ledger.item_rows(run)} == {"done"}


@pytest.mark.parametrize(
    ("kill", "name"),
    [
        ("--kill-after", "kill-efter.csv"),  # the file is out, its items' outcome not recorded
        ("--kill-before", "kill-foer.csv"),  # the items are claimed, the file only staged
    ],
)
def test_the_host_killed_around_writing_a_posting_file_pays_nobody_twice(claims_env, log_dir, kill, name):
    env = claims_env
    rows = [s.row for s in claims_data.scenarios() if s.expected == ("done", "")]
    drop(name, csv_file(rows))
    tag = f"claims{kill}"
    killed = devhost(env, log_dir, tag, kill, "functions.claim_payouts.steps:_write_out:1")
    assert killed.wait(timeout=240) == 137, "the host should have been killed at the first posting file"
    for step in ("restart", "responses", "final"):
        env.posting.process_pending()
        assert devhost(env, log_dir, f"{tag}-{step}").wait(timeout=240) == 0, f"see devhost-{tag}-{step}.stderr"
    run = close_run(run_of(name).run_id)
    assert run.status is ledger.RunStatus.COMPLETE, (run.problems, run.missing)
    documents = outbox_documents()
    assert sorted(documents) == sorted(r["krav_id"] for r in rows) and set(documents.values()) == {1}
    assert not refused_as_repeated(), "Kvantum never saw a repeated reference"


def test_a_payment_returned_by_the_bank_becomes_a_new_item_linked_to_the_original(claims_env, host, caplog):
    caplog.set_level(logging.INFO, logger="ks.events")
    rows = [s.row for s in claims_data.scenarios() if s.expected == ("done", "")][:2]
    drop("retur.csv", csv_file(rows))
    (run,) = settle(claims_env, host, "retur.csv")
    original = items_by_claim(run)[rows[0]["krav_id"]]
    name = claims_env.posting.return_payment(rows[0]["krav_id"], "KONTO_LUKKET", "Modtagerens konto er lukket.")
    host.run_until_idle(timeout=120)
    returns = [r for r in ledger.newest_runs(AUTOMATION, 500) if r.source == f"{responses.RESPONSES}/{name}"]
    assert len(returns) == 1
    close_run(returns[0].run_id)
    host.run_until_idle(timeout=120)
    (item,) = list(ledger.item_rows(ledger.get_run(returns[0].run_id)))
    assert (item["Status"], item["ReasonCode"]) == ("handed_off", "KONTO_LUKKET")
    assert item["ReturnOf"] == f"{run.run_id}/{original['RowKey']}"
    again = ledger.item_rows(ledger.get_run(run.run_id))
    assert {r["RowKey"]: r["Status"] for r in again}[original["RowKey"]] == "done", "the original is not reopened"
    blob = storage.container(responses.RESPONSES).get_blob_client(name)
    assert responses.open_response(blob) == 0, "the same return handled again opens nothing"
    assert chain.automation == AUTOMATION
