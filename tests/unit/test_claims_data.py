"""The claims seed data and sample files: every row reaches its expected ending, every file reads as it should."""

import io
import json
import time
from collections import Counter, defaultdict
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from devhost import claims_data
from devhost.claims_data import (
    BAD_FILE_CODES,
    CP1252_COLUMN_ORDER,
    MIXED_FILES,
    ZIP_BOMB_UNPACKED,
    ClaimScenario,
    apply_seeds,
    bad_files,
    benchmark_companies,
    generate,
    sample_files,
    scenarios,
    seeds,
    write_csv,
    write_xlsx,
)
from devhost.simulators.cvr import CvrState
from devhost.simulators.opus_debitor import OpusDebitorState
from functions.claim_payouts import identifiers
from functions.claim_payouts.amounts import parse_amount
from functions.claim_payouts.reader import COLUMNS, ClaimsFileError, RawClaim, iter_rows
from functions.claim_payouts.rules import ClaimRefusalError, check_claim, over_daily_cap, payment_channel
from shared import config

SAMPLES = Path(__file__).parents[2] / "samples" / "claims"
TODAY = date(2026, 11, 24)
RULES = (
    config.Rules.model_validate(json.loads(config.DEFAULT_RULES_FILE.read_text(encoding="utf-8")))
    .in_force(datetime(2026, 11, 24, 12, tzinfo=UTC))
    .rules("claim_payouts")
)
SCENARIOS = scenarios()
BY_KEY = {s.key: s for s in SCENARIOS}
SYSTEM_CODES = {
    "VIRKSOMHED_IKKE_AKTIV",
    "VIRKSOMHED_UKENDT",
    "ARTSKONTO_LUKKET",
    "OMKOSTNINGSSTED_LUKKET",
    "PSP_ELEMENT_LUKKET",
    "DAGSGRAENSE_OVERSKREDET",
    "MULIG_DUBLET",
    "GAELD_TIL_MODREGNING",
    "GAELD_HOS_INDDRIVELSE",
    "INGEN_NEMKONTO",
    "KONTO_LUKKET",
}
RULE_CODES = {
    "UGYLDIGT_CPR",
    "CPR_IKKE_UDBETALBAR",
    "UGYLDIGT_CVR",
    "UKENDT_MODTAGERTYPE",
    "UGYLDIGT_BELOEB",
    "FORKERT_VALUTA",
    "BELOEB_OVER_GRAENSE",
    "TEKST_FOR_LANG",
    "MANGLENDE_ARTSKONTO",
    "KONTERING_UKLAR",
    "MANGLENDE_GODKENDELSE",
    "GODKENDT_AF_ANMODER",
    "IKKE_ATTESTATIONSBERETTIGET",
    "OVER_ATTESTATIONSGRAENSE",
    "UGYLDIG_GODKENDELSESDATO",
    "UGYLDIG_EMAIL",
    "INGEN_NEMKONTO_KANAL",
}


def outcome(row: Any) -> tuple[str, str]:
    """What the pure checks make of a row: ("done", "") or ("handed_off", code)."""
    try:
        payment_channel(check_claim(row, RULES, TODAY))
    except ClaimRefusalError as refusal:
        return "handed_off", refusal.code
    return "done", ""


def read(data: bytes, **limits: int) -> list[RawClaim]:
    return list(iter_rows(io.BytesIO(data), **limits))


def key_of(scenario: ClaimScenario) -> str:
    return scenario.key


# --- the scenarios -----------------------------------------------------------------------------------


def test_every_reason_code_of_the_brief_is_reached_and_keys_and_claim_ids_are_unique():
    reached = Counter(s.expected[1] for s in SCENARIOS)
    assert set(reached) >= (RULE_CODES | SYSTEM_CODES)
    assert reached[""] >= 10
    assert len(BY_KEY) == len(SCENARIOS)
    claim_ids = [s.row["krav_id"] for s in SCENARIOS if s.row["krav_id"]]
    assert len(set(claim_ids)) == len(claim_ids)
    assert all(set(s.row) == set(COLUMNS) for s in SCENARIOS)
    assert {s.decided_by for s in SCENARIOS if s.expected[1] in SYSTEM_CODES} <= {"system", "bank"}


@pytest.mark.parametrize("scenario", [s for s in SCENARIOS if s.decided_by == "rules"], ids=key_of)
def test_a_rules_scenario_ends_as_the_pure_checks_decide(scenario: ClaimScenario):
    assert outcome(scenario.row) == scenario.expected


@pytest.mark.parametrize("scenario", [s for s in SCENARIOS if s.decided_by != "rules"], ids=key_of)
def test_a_system_scenario_passes_every_pure_check(scenario: ClaimScenario):
    assert outcome(scenario.row) == ("done", "")


def test_every_cpr_is_synthetic_born_1858_to_1870_and_one_paid_cpr_fails_modulus_11():
    cprs = [s for s in SCENARIOS if s.row["modtager_type"] == "CPR"]
    for scenario in cprs:
        number = identifiers.normalise_cpr(scenario.row["modtager_id"])
        assert 5 <= int(number[6]) <= 8 and 58 <= int(number[4:6]) <= 70
        if identifiers.cpr_valid(number):
            assert 1858 <= identifiers.cpr_birth_date(number).year <= 1870
    paid = [s for s in cprs if s.expected == ("done", "")]
    assert any(not claims_data._mod11_ok(s.payee_no) for s in paid)
    assert any("-" in s.row["modtager_id"] for s in paid)
    assert any(len(s.row["modtager_id"]) == 9 for s in paid)


def test_the_paid_rows_cover_every_notation_payee_type_and_posting():
    paid = [s.row for s in SCENARIOS if s.expected == ("done", "")]
    assert {"1.234,50", "1234,50", "1234.50", "1.000"} <= {r["beloeb"] for r in paid}
    assert parse_amount("1.000") == Decimal("1000.00")
    assert {"CPR", "CVR", "SE", "P"} == {r["modtager_type"].upper() for r in paid}
    dates = {r["godkendt_dato"] for r in paid}
    assert any(d[2] == "-" for d in dates) and any(d[4] == "-" for d in dates)
    assert {"1000100", "1000200"} <= {r["omkostningssted"] for r in paid}
    assert "XG-0001-01" in {r["psp_element"] for r in paid}


def test_the_day_cap_pair_passes_only_together_and_the_second_is_refused():
    first, second = BY_KEY["dagsgraense_foerste"], BY_KEY["dagsgraense_anden"]
    assert SCENARIOS.index(first) < SCENARIOS.index(second) and first.payee_no == second.payee_no
    a, b = check_claim(first.row, RULES, TODAY), check_claim(second.row, RULES, TODAY)
    assert not over_daily_cap(Decimal(0), a, RULES) and not over_daily_cap(Decimal(0), b, RULES)
    assert over_daily_cap(a.amount, b, RULES)
    assert first.expected == ("done", "") and second.expected[1] == "DAGSGRAENSE_OVERSKREDET"


def test_the_duplicate_repeats_payee_amount_and_reference_of_an_earlier_row():
    first, second = BY_KEY["dublet_foerste"], BY_KEY["dublet_anden"]
    assert SCENARIOS.index(first) < SCENARIOS.index(second)
    assert first.payee_no == second.payee_no and first.row["reference"] == second.row["reference"]
    assert parse_amount(first.row["beloeb"]) == parse_amount(second.row["beloeb"])
    assert first.row["krav_id"] != second.row["krav_id"]


def test_no_other_payee_repeats_or_passes_the_day_cap():
    totals: defaultdict[str, Decimal] = defaultdict(Decimal)
    for scenario in SCENARIOS:
        if outcome(scenario.row) == ("done", ""):
            totals[scenario.payee_no] += parse_amount(scenario.row["beloeb"])
    repeated = Counter(s.payee_no for s in SCENARIOS if outcome(s.row) == ("done", ""))
    assert {p for p, n in repeated.items() if n > 1} == {
        BY_KEY["dagsgraense_foerste"].payee_no,
        BY_KEY["dublet_foerste"].payee_no,
    }
    assert [p for p, total in totals.items() if total > 50_000] == [BY_KEY["dagsgraense_foerste"].payee_no]


def test_offsetting_follows_the_claim_type_of_the_gl_account():
    auto, manual, collected = (
        BY_KEY[k] for k in ("modregning_automatisk", "gaeld_uden_automatisk_modregning", "gaeld_hos_inddrivelse")
    )
    assert auto.row["artskonto"] == claims_data.GL_REFUND and auto.debts and not auto.debts[0]["collection"]
    assert auto.debts[0]["amount"] < parse_amount(auto.row["beloeb"])
    assert manual.row["artskonto"] != claims_data.GL_REFUND and manual.debts
    assert collected.debts[0]["collection"]


# --- seeds -------------------------------------------------------------------------------------------


class Recorder:
    """Records every call made on it, by method name."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []

    def __getattr__(self, name: str) -> Any:
        def record(*args: Any, **kwargs: Any) -> None:
            self.calls.append((name, args, kwargs))

        return record


def test_seeds_hold_the_companies_debts_accounts_and_bank_answers_the_scenarios_need():
    seeded = seeds()
    statuses = {c["cvr"]: c["status"] for c in seeded.companies}
    assert statuses[BY_KEY["cvr_aktiv"].payee_no] == "NORMAL"
    assert statuses[BY_KEY["virksomhed_konkurs"].payee_no] == "UNDER KONKURS"
    assert BY_KEY["virksomhed_ukendt"].payee_no not in statuses
    assert identifiers.cvr_valid(BY_KEY["virksomhed_ukendt"].payee_no)
    assert {d["partner_id"] for d in seeded.debts} == {
        BY_KEY[k].payee_no
        for k in ("modregning_automatisk", "gaeld_uden_automatisk_modregning", "gaeld_hos_inddrivelse")
    }
    assert all(isinstance(d["amount"], Decimal) for d in seeded.debts)
    assert seeded.gl_accounts == {"22010000": True, "22020000": True, "22030000": True, "22090000": False}
    assert seeded.cost_centers == {"1000100": True, "1000200": True, "1000900": False}
    assert seeded.wbs_elements == {"XG-0001-01": True, "XG-0009-99": False}
    assert {code for code, _ in seeded.bank_rejects.values()} == {"INGEN_NEMKONTO", "KONTO_LUKKET"}
    assert all(len(payee) == 10 for payee in seeded.bank_rejects)


def test_apply_seeds_fills_the_real_cvr_and_opus_states_and_calls_kvantum_and_the_bank():
    cvr, opus, kvantum, intake = CvrState(), OpusDebitorState(), Recorder(), Recorder()
    seeded = seeds()
    apply_seeds(seeded, cvr_state=cvr, opus_state=opus, kvantum_state=kvantum, posting_intake=intake, today=TODAY)
    konkurs = cvr.companies[BY_KEY["virksomhed_konkurs"].payee_no][0]
    assert konkurs["Vrvirksomhed"]["virksomhedMetadata"]["sammensatStatus"] == "UNDER KONKURS"
    for debt in seeded.debts:
        partner = opus.find_partner(debt["partner_id"], debt["id_type"])
        assert partner is not None
        items = opus.open_items(partner, TODAY)
        assert [(i["BETRH"], i["INKGS"] == "X") for i in items] == [(debt["amount"], debt["collection"])]
    assert ("add_gl_account", ("22090000",), {"open": False}) in kvantum.calls
    assert ("add_cost_center", ("1000900",), {"open": False}) in kvantum.calls
    assert ("add_wbs_element", ("XG-0001-01",), {"open": True}) in kvantum.calls
    assert len(intake.calls) == 2 and {c[0] for c in intake.calls} == {"reject_payee"}


# --- the files ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", MIXED_FILES)
def test_each_mixed_sample_reads_every_row_as_written(name: str):
    claims = read((SAMPLES / name).read_bytes())
    assert len(claims) == len(SCENARIOS) and not [c.line for c in claims if c.error]
    for claim, scenario in zip(claims, SCENARIOS, strict=True):
        if name.endswith(".csv"):
            assert claim.model_dump(exclude={"line", "error"}) == scenario.row, scenario.key
        else:  # numbers and dates come back in another notation, with the same meaning
            assert outcome(claim.model_dump()) == outcome(scenario.row), scenario.key


def test_the_xlsx_holds_some_amounts_ids_and_dates_as_numbers_and_dates():
    import openpyxl

    sheet = openpyxl.load_workbook(SAMPLES / "krav-blandet.xlsx").worksheets[0]
    header = [cell.value for cell in sheet[1]]
    assert header == list(COLUMNS)
    amounts = [row[header.index("beloeb")] for row in sheet.iter_rows(min_row=2, values_only=True)]
    assert any(isinstance(a, str) for a in amounts) and any(isinstance(a, int | float) for a in amounts)
    dates = [row[header.index("godkendt_dato")] for row in sheet.iter_rows(min_row=2, values_only=True)]
    assert any(isinstance(d, datetime) for d in dates)


def test_the_cp1252_sample_is_windows_1252_in_another_column_order():
    data = (SAMPLES / "krav-blandet-cp1252.csv").read_bytes()
    assert data.decode("cp1252").split("\r\n")[0].split(";") == list(CP1252_COLUMN_ORDER)
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")
    assert (SAMPLES / "krav-blandet-bom.csv").read_bytes().startswith(b"\xef\xbb\xbf")


@pytest.mark.parametrize("name", sorted(BAD_FILE_CODES))
def test_each_bad_file_is_refused_with_its_code(name: str):
    with pytest.raises(ClaimsFileError) as refused:
        read((SAMPLES / name).read_bytes())
    assert refused.value.code == BAD_FILE_CODES[name]


def test_the_zip_bomb_is_small_unpacks_far_beyond_the_limits_and_is_refused_by_either_limit():
    data = bad_files()["fejl-zipbombe.xlsx"]
    assert len(data) < 200_000 and 100 * len(data) < ZIP_BOMB_UNPACKED
    with pytest.raises(ClaimsFileError) as by_size:
        read(data, max_xlsx_uncompressed=ZIP_BOMB_UNPACKED // 2, max_xlsx_ratio=10**9)
    assert by_size.value.code == "XLSX_FOR_STOR"


def test_the_committed_samples_equal_a_fresh_write(tmp_path: Path):
    fresh = sample_files()
    assert sorted(p.name for p in SAMPLES.iterdir() if p.name != "README.md") == sorted(fresh)
    for name, content in fresh.items():
        assert (SAMPLES / name).read_bytes() == content, name
    readme = (SAMPLES / "README.md").read_text(encoding="utf-8")
    assert all(name in readme for name in fresh)
    assert claims_data.main(["write-samples", str(tmp_path)]) == 0
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == fresh


def test_write_csv_refuses_an_incomplete_column_order_and_write_xlsx_writes_to_a_path(tmp_path: Path):
    with pytest.raises(ValueError, match="column_order"):
        write_csv([], io.BytesIO(), column_order=COLUMNS[:-1])
    assert write_xlsx([SCENARIOS[0].row], tmp_path / "one.xlsx") == 1
    assert len(read((tmp_path / "one.xlsx").read_bytes())) == 1


# --- the generator -----------------------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "cp1252"])
def test_generate_writes_a_readable_payable_file_whose_totals_match(encoding: str):
    buffer = io.BytesIO()
    count, total = generate(3_000, buffer, seed=7, encoding=encoding)
    claims = read(buffer.getvalue())
    assert count == len(claims) == 3_000 and not [c.line for c in claims if c.error]
    checked = [check_claim(c.model_dump(), RULES, TODAY) for c in claims]  # raises if any is refused
    assert sum(c.amount for c in checked) == total
    assert all(c.amount <= Decimal(10_000) for c in checked)
    assert len({c.reference for c in checked}) == len({c.claim_id for c in checked}) == count
    per_payee: defaultdict[str, Decimal] = defaultdict(Decimal)
    for claim in checked:
        per_payee[claim.payee_id] += claim.amount
    assert max(per_payee.values()) <= Decimal(RULES["auto_payout_limit"])
    companies = {c["cvr"] for c in benchmark_companies()}
    cvr_payees = [c.payee_id for c in checked if c.payee_type == "CVR"]
    assert cvr_payees and set(cvr_payees) <= companies
    cprs = [c.payee_id for c in checked if c.payee_type == "CPR"]
    assert len(set(cprs)) == len(cprs)
    assert all(1858 <= identifiers.cpr_birth_date(n).year <= 1870 for n in cprs)
    assert any(not claims_data._mod11_ok(n) for n in cprs)


def test_generate_is_deterministic_and_fast():
    first, second = io.BytesIO(), io.BytesIO()
    generate(1_000, first, seed=3)
    generate(1_000, second, seed=3)
    assert first.getvalue() == second.getvalue()
    started = time.perf_counter()
    count, _ = generate(100_000, io.BytesIO())
    assert count / (time.perf_counter() - started) >= 50_000


def test_benchmark_companies_are_valid_distinct_and_active():
    companies = benchmark_companies(200)
    assert len({c["cvr"] for c in companies}) == 200
    assert all(identifiers.cvr_valid(c["cvr"]) and c["status"] == "NORMAL" for c in companies)
    assert not {c["cvr"] for c in companies} & {c["cvr"] for c in seeds().companies}
