"""Seed data and files for the claims automation: one mixed claims file whose rows reach every branch, what
each row should end as, the system state (CVR, Opus Debitor, Kvantum, the bank) that makes them end so, file
writers (CSV in three encodings, XLSX), one broken file per way a file can be unreadable, and a streaming
generator of large happy-path files for benchmarks.

All numbers are synthetic: every CPR number states a birth date in 1858-1870 (7th digit 5-8 with a year of
58-70), so it can never be a living person's; CVR numbers pass modulus 11 and come from a fixed range; the
names are invented. `python -m devhost.claims_data write-samples samples/claims` writes the sample files.

Claim types: the automation takes a claim's type from its GL account (artskonto) through configuration.
`22010000` is "refusion" (automatic offset on in the demo configuration); `22020000` and `22030000` are types
without automatic offset. `22090000` is a blocked account.
"""

import csv
import io
import random
import re
import struct
import sys
import zipfile
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import IO, Any, Protocol

from devhost.vendor_data import synthetic_cvrs
from functions.claim_payouts.amounts import AmountError, parse_amount
from functions.claim_payouts.reader import COLUMNS, HEAD_BYTES, RATIO_CHECKED_FROM

# --- the chart of accounts the scenarios use -------------------------------------------------------------

GL_REFUND = "22010000"  # claim type "refusion": automatic offset in the demo configuration
GL_OUTLAY = "22020000"  # claim type without automatic offset
GL_COMPENSATION = "22030000"  # claim type without automatic offset
GL_BLOCKED = "22090000"
#: GL account -> the claim type the demo configuration gives it.
CLAIM_TYPES = {GL_REFUND: "refusion", GL_OUTLAY: "udlaeg", GL_COMPENSATION: "erstatning", GL_BLOCKED: "spaerret"}
GL_ACCOUNTS = {GL_REFUND: True, GL_OUTLAY: True, GL_COMPENSATION: True, GL_BLOCKED: False}
COST_CENTERS = {"1000100": True, "1000200": True, "1000900": False}
WBS_ELEMENTS = {"XG-0001-01": True, "XG-0009-99": False}

REQUESTER_EMAIL = "sagsbehandler@devhost.example"

#: The range the scenarios' CVR numbers come from (vendor_data uses 39,000,000 and up).
SCENARIO_CVR_START = 38_000_000
#: The range the benchmark's companies come from.
BENCHMARK_CVR_START = 38_500_000

#: Fixed timestamp written into the sample XLSX (core properties and ZIP entries), so a rewrite is identical.
FIXED_TIMESTAMP = datetime(2026, 11, 2, 8, 0, 0)
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


def _mod11_ok(number: str) -> bool:
    """Whether a ten-digit CPR passes the old modulus 11 check (informative only: it is no validity test)."""
    return sum(w * int(d) for w, d in zip((4, 3, 2, 7, 6, 5, 4, 3, 2, 1), number, strict=True)) % 11 == 0


def synthetic_cpr(day: int, month: int, yy: int, serial: int) -> str:
    """A ten-digit CPR of someone born in 1858-1870: yy 58-70, serial 5000-8999 (7th digit 5-8 → 1800s)."""
    if not 58 <= yy <= 70 or not 5000 <= serial <= 8999:
        raise ValueError("synthetic CPRs are born 1858-1870: yy 58-70 and serial 5000-8999")
    return f"{day:02d}{month:02d}{yy:02d}{serial:04d}"


def _cpr_with_mod11(day: int, month: int, yy: int, serial: int, *, passes: bool) -> str:
    """The first synthetic CPR from serial on whose modulus 11 result is `passes`."""
    while True:
        number = synthetic_cpr(day, month, yy, serial)
        if _mod11_ok(number) == passes:
            return number
        serial += 1


# --- scenarios ---------------------------------------------------------------------------------------------


@dataclass
class ClaimScenario:
    """One row of the mixed claims file, the system state it needs, and the ending it must reach."""

    key: str
    row: dict[str, str]
    #: (final item status "done" | "handed_off" | "rejected", reason code or "").
    expected: tuple[str, str]
    #: Who decides a refusal: "rules" (rules.check_claim / payment_channel), "system" (CVR, Kvantum, Opus
    #: Debitor, the day's total, earlier payments) or "bank" (the response file). A "rules" row that is paid
    #: may still need seeds (an active company in CVR); a "system" row that is paid needs them (an offset).
    decided_by: str = "rules"
    companies: list[dict[str, Any]] = field(default_factory=list)
    debts: list[dict[str, Any]] = field(default_factory=list)
    #: (code, Danish message) the bank answers for this payee, or None.
    bank_reject: tuple[str, str] | None = None

    @property
    def payee_no(self) -> str:
        """The payee number as the automation normalises it (a CPR as ten digits)."""
        return _payee_no(self.row["modtager_type"], self.row["modtager_id"])


def _payee_no(payee_type: str, payee_id: str) -> str:
    text = payee_id.strip().replace("-", "") if payee_type.upper() == "CPR" else payee_id.strip()
    if payee_type.upper() == "CPR" and len(text) == 9:
        text = "0" + text
    return text


def _row(claim_id: str, **cells: str) -> dict[str, str]:
    """A valid CPR claim row with every column, the given cells replacing the defaults."""
    base = {
        "krav_id": claim_id,
        "modtager_type": "CPR",
        "modtager_id": "",
        "modtager_navn": "Søren Ærøe",
        "beloeb": "1.234,50",
        "valuta": "DKK",
        "posteringstekst": "Refusion af udlæg",
        "bilagstekst": "Udlæg november",
        "reference": f"SAG-{claim_id[-4:]}",
        "artskonto": GL_OUTLAY,
        "omkostningssted": "1000100",
        "psp_element": "",
        "bilag": f"BILAG-{claim_id[-4:]}",
        "godkendt_af": "BOLAR",
        "godkendt_dato": "20-11-2026",
        "anmodet_af": "KIMKO",
        "anmoder_email": REQUESTER_EMAIL,
    }
    unknown = set(cells) - set(base)
    if unknown:
        raise ValueError(f"unknown columns: {sorted(unknown)}")
    return {**base, **cells}


def _company(cvr: str, name: str, status: str = "NORMAL") -> dict[str, Any]:
    return {"cvr": cvr, "name": name, "status": status}


def _debt(id_type: str, partner_id: str, amount: str, *, collection: bool = False) -> dict[str, Any]:
    return {"id_type": id_type, "partner_id": partner_id, "amount": Decimal(amount), "collection": collection}


def scenarios() -> list[ClaimScenario]:
    """The mixed file's rows in file order, each with its expected ending; every branch at least once."""
    cvr = synthetic_cvrs(12, start=SCENARIO_CVR_START)
    done, person = ("done", ""), "handed_off"
    # CPR payees, one per row so no day total or duplicate check is touched by accident.
    mod11_fails = _cpr_with_mod11(14, 3, 62, 5230, passes=False)
    mod11_passes = _cpr_with_mod11(2, 7, 63, 5410, passes=True)
    dashed = _cpr_with_mod11(12, 3, 64, 6120, passes=False)
    nine = _cpr_with_mod11(5, 5, 62, 5300, passes=True)  # day 05: written without its leading zero
    offset_auto = synthetic_cpr(21, 9, 59, 7011)
    offset_manual = synthetic_cpr(22, 9, 59, 7022)
    collection = synthetic_cpr(23, 9, 59, 7033)
    day_cap = synthetic_cpr(11, 11, 66, 5511)
    duplicate = synthetic_cpr(17, 1, 67, 6017)
    no_nemkonto = synthetic_cpr(3, 4, 68, 8003)
    closed_account = synthetic_cpr(9, 10, 69, 8109)
    plain = [synthetic_cpr(d, 6, 65, 5600 + d) for d in range(10, 30)]
    se_number, p_number = "31415926", "1012345678"

    def k(n: int) -> str:
        return f"K-2026-{n:04d}"

    return [
        # --- paid ----------------------------------------------------------------------------------------
        ClaimScenario("cpr_mod11_fejler", _row(k(1), modtager_id=mod11_fails, beloeb="1.234,50"), done),
        ClaimScenario(
            "cpr_mod11_ok",
            _row(k(2), modtager_id=mod11_passes, modtager_navn="Åse Øster", beloeb="1234,50", artskonto=GL_REFUND),
            done,
        ),
        ClaimScenario(
            "cpr_bindestreg",
            _row(k(3), modtager_id=f"{dashed[:6]}-{dashed[6:]}", beloeb="1234.50", godkendt_dato="2026-11-19"),
            done,
        ),
        ClaimScenario("cpr_9_cifre", _row(k(4), modtager_id=nine[1:], beloeb="1.000"), done),
        ClaimScenario(
            "cvr_aktiv",
            _row(
                k(5),
                modtager_type="CVR",
                modtager_id=cvr[0],
                modtager_navn="Grøn Rengøring ApS",
                beloeb="8.750,00",
                posteringstekst="Erstatning for ødelagt materiel",
                artskonto=GL_COMPENSATION,
                omkostningssted="",
                psp_element="XG-0001-01",
                godkendt_af="annje",
                godkendt_dato="2026-11-18",
            ),
            done,
            companies=[_company(cvr[0], "Grøn Rengøring ApS")],
        ),
        ClaimScenario(
            "se_nummer",
            _row(
                k(6),
                modtager_type="SE",
                modtager_id=se_number,
                modtager_navn="Kaffe & Kage ApS",
                beloeb="450,00",
                omkostningssted="1000200",
                godkendt_af="CHRHA",
            ),
            done,
            # Seeded too, in case SE payees are looked up in CVR: an SE number is a unit of a company there.
            companies=[_company(se_number, "Kaffe & Kage ApS")],
        ),
        ClaimScenario(
            "p_nummer",
            _row(
                k(7),
                modtager_type="p",
                modtager_id=p_number,
                modtager_navn="Børnehuset Mælkebøtten",
                beloeb="99,95",
                psp_element="XG-0001-01",
                omkostningssted="",
            ),
            done,
        ),
        ClaimScenario(
            "modregning_automatisk",
            _row(k(8), modtager_id=offset_auto, beloeb="1.500,00", artskonto=GL_REFUND, posteringstekst="Refusion"),
            done,
            decided_by="system",
            debts=[_debt("CPR", offset_auto, "300.00")],
        ),
        ClaimScenario("dagsgraense_foerste", _row(k(9), modtager_id=day_cap, beloeb="30.000,00"), done),
        ClaimScenario("dublet_foerste", _row(k(10), modtager_id=duplicate, beloeb="500,00", reference="SAG-DUB"), done),
        # --- to a person: the claim itself -------------------------------------------------------------
        ClaimScenario(
            "krav_id_for_langt",
            _row(k(11), modtager_id=plain[0], krav_id=k(11) + "-FOR-LANGT-ID"),
            (person, "UGYLDIGT_KRAV_ID"),
        ),
        ClaimScenario(
            "cpr_ugyldig_dato",
            _row(k(12), modtager_id=synthetic_cpr(32, 1, 62, 5432)),
            (person, "UGYLDIGT_CPR"),
        ),
        ClaimScenario(
            "cpr_erstatningsnummer",
            _row(k(13), modtager_id=synthetic_cpr(75, 3, 62, 5234)),
            (person, "CPR_IKKE_UDBETALBAR"),
        ),
        ClaimScenario(
            "cvr_ugyldigt",
            _row(k(14), modtager_type="CVR", modtager_id=str(int(cvr[1]) + 1), modtager_navn="Forkert Nummer ApS"),
            (person, "UGYLDIGT_CVR"),
        ),
        ClaimScenario(
            "se_ugyldigt",
            _row(k(15), modtager_type="SE", modtager_id="1234", modtager_navn="Kort SE ApS"),
            (person, "UGYLDIGT_SE"),
        ),
        ClaimScenario(
            "p_ugyldigt",
            _row(k(16), modtager_type="P", modtager_id="12345", modtager_navn="Kort P-enhed"),
            (person, "UGYLDIGT_PNR"),
        ),
        ClaimScenario(
            "ukendt_modtagertype",
            _row(k(17), modtager_type="FIRMA", modtager_id=cvr[2]),
            (person, "UKENDT_MODTAGERTYPE"),
        ),
        ClaimScenario(
            "beloeb_tre_decimaler", _row(k(18), modtager_id=plain[1], beloeb="12,345"), (person, "UGYLDIGT_BELOEB")
        ),
        ClaimScenario("valuta_eur", _row(k(19), modtager_id=plain[2], valuta="EUR"), (person, "FORKERT_VALUTA")),
        ClaimScenario(
            "over_graensen",
            _row(k(20), modtager_id=plain[3], beloeb="50.000,01", godkendt_af="ANNJE"),
            (person, "BELOEB_OVER_GRAENSE"),
        ),
        ClaimScenario(
            "tekst_for_lang",
            _row(k(21), modtager_id=plain[4], posteringstekst="Refusion af udlæg til kursus, transport og ophold 2026"),
            (person, "TEKST_FOR_LANG"),
        ),
        ClaimScenario(
            "artskonto_mangler", _row(k(22), modtager_id=plain[5], artskonto=""), (person, "MANGLENDE_ARTSKONTO")
        ),
        ClaimScenario(
            "kontering_begge",
            _row(k(23), modtager_id=plain[6], psp_element="XG-0001-01"),
            (person, "KONTERING_UKLAR"),
        ),
        ClaimScenario(
            "kontering_ingen",
            _row(k(24), modtager_id=plain[7], omkostningssted=""),
            (person, "KONTERING_UKLAR"),
        ),
        ClaimScenario(
            "ikke_godkendt", _row(k(25), modtager_id=plain[8], godkendt_af=""), (person, "MANGLENDE_GODKENDELSE")
        ),
        ClaimScenario(
            "godkendt_af_anmoder",
            _row(k(26), modtager_id=plain[9], godkendt_af="BOLAR", anmodet_af="bolar"),
            (person, "GODKENDT_AF_ANMODER"),
        ),
        ClaimScenario(
            "ikke_attestationsberettiget",
            _row(k(27), modtager_id=plain[10], godkendt_af="XYZAB"),
            (person, "IKKE_ATTESTATIONSBERETTIGET"),
        ),
        ClaimScenario(
            "over_attestationsgraense",
            _row(k(28), modtager_id=plain[11], godkendt_af="CHRHA", beloeb="10.000,01"),
            (person, "OVER_ATTESTATIONSGRAENSE"),
        ),
        ClaimScenario(
            "godkendelsesdato_ugyldig",
            _row(k(29), modtager_id=plain[12], godkendt_dato="31-02-2026"),
            (person, "UGYLDIG_GODKENDELSESDATO"),
        ),
        ClaimScenario(
            "email_ugyldig",
            _row(k(30), modtager_id=plain[13], anmoder_email="ikke en adresse"),
            (person, "UGYLDIG_EMAIL"),
        ),
        ClaimScenario(
            "udenlandsk",
            _row(
                k(31),
                modtager_type="UDENLANDSK",
                modtager_id="DE89370400440532013000",
                modtager_navn="Holz Lieferant GmbH",
            ),
            (person, "INGEN_NEMKONTO_KANAL"),
        ),
        # --- to a person: the systems ------------------------------------------------------------------
        ClaimScenario(
            "virksomhed_konkurs",
            _row(k(32), modtager_type="CVR", modtager_id=cvr[3], modtager_navn="Byg og Beton A/S"),
            (person, "VIRKSOMHED_IKKE_AKTIV"),
            decided_by="system",
            companies=[_company(cvr[3], "Byg og Beton A/S", "UNDER KONKURS")],
        ),
        ClaimScenario(
            "virksomhed_ukendt",
            _row(k(33), modtager_type="CVR", modtager_id=cvr[4], modtager_navn="Ukendt Firma ApS"),
            (person, "VIRKSOMHED_UKENDT"),
            decided_by="system",
        ),
        ClaimScenario(
            "artskonto_lukket",
            _row(k(34), modtager_id=plain[14], artskonto=GL_BLOCKED),
            (person, "ARTSKONTO_LUKKET"),
            decided_by="system",
        ),
        ClaimScenario(
            "omkostningssted_lukket",
            _row(k(35), modtager_id=plain[15], omkostningssted="1000900"),
            (person, "OMKOSTNINGSSTED_LUKKET"),
            decided_by="system",
        ),
        ClaimScenario(
            "psp_lukket",
            _row(k(36), modtager_id=plain[16], omkostningssted="", psp_element="XG-0009-99"),
            (person, "PSP_ELEMENT_LUKKET"),
            decided_by="system",
        ),
        ClaimScenario(
            "dagsgraense_anden",
            _row(k(37), modtager_id=day_cap, beloeb="25.000,00", godkendt_af="ANNJE"),
            (person, "DAGSGRAENSE_OVERSKREDET"),
            decided_by="system",
        ),
        ClaimScenario(
            "dublet_anden",
            _row(k(38), modtager_id=duplicate, beloeb="500,00", reference="SAG-DUB"),
            (person, "MULIG_DUBLET"),
            decided_by="system",
        ),
        ClaimScenario(
            "gaeld_uden_automatisk_modregning",
            _row(k(39), modtager_id=offset_manual, artskonto=GL_OUTLAY),
            (person, "GAELD_TIL_MODREGNING"),
            decided_by="system",
            debts=[_debt("CPR", offset_manual, "200.00")],
        ),
        ClaimScenario(
            "gaeld_hos_inddrivelse",
            _row(k(40), modtager_id=collection, artskonto=GL_REFUND),
            (person, "GAELD_HOS_INDDRIVELSE"),
            decided_by="system",
            debts=[_debt("CPR", collection, "2500.00", collection=True)],
        ),
        ClaimScenario(
            "ingen_nemkonto",
            _row(k(41), modtager_id=no_nemkonto),
            (person, "INGEN_NEMKONTO"),
            decided_by="bank",
            bank_reject=("INGEN_NEMKONTO", "Modtageren har ingen NemKonto."),
        ),
        ClaimScenario(
            "konto_lukket",
            _row(k(42), modtager_id=closed_account),
            (person, "KONTO_LUKKET"),
            decided_by="bank",
            bank_reject=("KONTO_LUKKET", "Modtagerens konto er lukket."),
        ),
        # --- a few more paid ones: the other cost centre, WBS, ISO dates -------------------------------
        ClaimScenario(
            "wbs_iso_dato",
            _row(
                k(43),
                modtager_id=plain[17],
                omkostningssted="",
                psp_element="XG-0001-01",
                godkendt_dato="2026-11-02",
                artskonto=GL_COMPENSATION,
            ),
            done,
        ),
        ClaimScenario(
            "omkostningssted_2",
            _row(k(44), modtager_id=plain[18], omkostningssted="1000200", beloeb="9.999,99", godkendt_af="chrha"),
            done,
        ),
        ClaimScenario(
            "refusion_uden_gaeld",
            _row(k(45), modtager_id=plain[19], artskonto=GL_REFUND, beloeb="49.999,99", godkendt_af="ANNJE"),
            done,
        ),
    ]


# --- seeds -------------------------------------------------------------------------------------------------


@dataclass
class Seeds:
    """What the simulators must hold for the mixed file's rows to end as expected."""

    companies: list[dict[str, Any]]
    debts: list[dict[str, Any]]
    gl_accounts: dict[str, bool]
    cost_centers: dict[str, bool]
    wbs_elements: dict[str, bool]
    bank_rejects: dict[str, tuple[str, str]]


def seeds(claim_scenarios: Sequence[ClaimScenario] | None = None) -> Seeds:
    """The seeds the scenarios (default: `scenarios()`) need."""
    found = list(scenarios() if claim_scenarios is None else claim_scenarios)
    return Seeds(
        companies=[company for s in found for company in s.companies],
        debts=[debt for s in found for debt in s.debts],
        gl_accounts=dict(GL_ACCOUNTS),
        cost_centers=dict(COST_CENTERS),
        wbs_elements=dict(WBS_ELEMENTS),
        bank_rejects={s.payee_no: s.bank_reject for s in found if s.bank_reject},
    )


class CvrSeedable(Protocol):
    """The CVR simulator's state, as far as seeding goes."""

    def add_company(  # noqa: D102, PLR0917
        self,
        cvr: str,
        name: str,
        street_name: str,
        house_number: int | None,
        postal_code: str | int,
        city: str,
        status: str = ...,
    ) -> Any: ...


class OpusSeedable(Protocol):
    """The Opus Debitor simulator's state, as far as seeding goes."""

    def add_partner(self, partner_id: str, id_type: str = ...) -> str: ...  # noqa: D102

    def add_item(self, partner: str, amount: Decimal | str, due: date, collection: bool = ...) -> str: ...  # noqa: D102


class KvantumSeedable(Protocol):
    """The Kvantum simulator's state, as far as seeding the chart of accounts goes."""

    def add_gl_account(self, number: str, open: bool = ...) -> Any: ...  # noqa: A002, D102

    def add_cost_center(self, number: str, open: bool = ...) -> Any: ...  # noqa: A002, D102

    def add_wbs_element(self, code: str, open: bool = ...) -> Any: ...  # noqa: A002, D102


class PostingIntakeSeedable(Protocol):
    """Kvantum's posting intake (the bank's answers), as far as seeding goes."""

    def reject_payee(self, payee_no: str, code: str, message: str) -> Any: ...  # noqa: D102


def apply_seeds(
    seeds: Seeds,
    *,
    cvr_state: CvrSeedable,
    opus_state: OpusSeedable,
    kvantum_state: KvantumSeedable,
    posting_intake: PostingIntakeSeedable,
    today: date | None = None,
) -> None:
    """Puts the seeds into the simulators' states; debts fall due 30 days before today (default: date.today())."""
    for company in seeds.companies:
        cvr_state.add_company(
            company["cvr"],
            company["name"],
            company.get("street_name", "Vesterbrogade"),
            company.get("house_number", 10),
            company.get("postal_code", 1620),
            company.get("city", "København V"),
            status=company.get("status", "NORMAL"),
        )
    due = (today or date.today()) - timedelta(days=30)
    partners: dict[tuple[str, str], str] = {}
    for debt in seeds.debts:
        key = (debt["id_type"], debt["partner_id"])
        if key not in partners:
            partners[key] = opus_state.add_partner(debt["partner_id"], debt["id_type"])
        opus_state.add_item(partners[key], debt["amount"], due, collection=bool(debt["collection"]))
    for number, is_open in seeds.gl_accounts.items():
        kvantum_state.add_gl_account(number, open=is_open)
    for number, is_open in seeds.cost_centers.items():
        kvantum_state.add_cost_center(number, open=is_open)
    for code, is_open in seeds.wbs_elements.items():
        kvantum_state.add_wbs_element(code, open=is_open)
    for payee_no, (code, message) in seeds.bank_rejects.items():
        posting_intake.reject_payee(payee_no, code, message)


def benchmark_companies(n: int = 200) -> list[dict[str, Any]]:
    """Active companies (cvr, name, status) for the benchmark to seed into CVR; `generate` pays some of them."""
    return [
        _company(cvr, f"Benchmark Leverandør {i:03d} ApS")
        for i, cvr in enumerate(synthetic_cvrs(n, BENCHMARK_CVR_START))
    ]


# --- writers -----------------------------------------------------------------------------------------------

Row = Mapping[str, str]


def write_csv(
    rows: Iterable[Row],
    stream: IO[bytes],
    encoding: str = "utf-8",
    column_order: Sequence[str] | None = None,
) -> int:
    """Writes a `;`-separated claims CSV (header line, CRLF) to a binary stream; returns the rows written."""
    order = list(column_order or COLUMNS)
    if sorted(order) != sorted(COLUMNS):
        raise ValueError("column_order must name every column exactly once")
    text = io.TextIOWrapper(stream, encoding=encoding, newline="", write_through=True)
    try:
        writer = csv.writer(text, delimiter=";", quotechar='"', lineterminator="\r\n")
        writer.writerow(order)
        count = 0
        for row in rows:
            writer.writerow([row.get(column, "") for column in order])
            count += 1
        text.flush()
    finally:
        text.detach()
    return count


def _amount_cell(value: str) -> object:
    """An amount as a number cell, or as typed when it cannot be read."""
    try:
        amount = parse_amount(value)
    except AmountError:
        return value
    return int(amount) if amount == amount.to_integral_value() else float(amount)


def _date_cell(value: str) -> object:
    """An ISO date as a date cell, anything else as typed."""
    try:
        return date.fromisoformat(value)
    except ValueError:
        return value


def _number_or_text(column: str, value: str, index: int) -> object:
    """A cell as a spreadsheet user might have left it: some amounts, ids and dates as numbers or dates."""
    if column == "beloeb" and index % 2 == 0:
        return _amount_cell(value)
    if column == "modtager_id" and re.fullmatch(r"[1-9][0-9]{7,9}", value):
        return int(value)  # typed as a number: a CPR starting with 0 was already written with nine digits
    if column == "artskonto" and index % 3 == 0 and value.isdigit():
        return int(value)
    if column == "godkendt_dato" and index % 4 == 0:
        return _date_cell(value)
    return value


def write_xlsx(rows: Iterable[Row], path_or_stream: str | Path | IO[bytes]) -> int:
    """Writes a claims XLSX (header in row 1 of the first sheet); identical bytes for identical rows."""
    import openpyxl

    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.title = "Krav"
    sheet.append(list(COLUMNS))
    count = 0
    for index, row in enumerate(rows):
        cells = [_number_or_text(column, row.get(column, ""), index) for column in COLUMNS]
        sheet.append(cells)
        for cell in sheet[sheet.max_row]:
            if isinstance(cell.value, date):
                cell.number_format = "DD-MM-YYYY"
        count += 1
    workbook.properties.creator = "devhost"
    workbook.properties.created = FIXED_TIMESTAMP
    buffer = io.BytesIO()
    workbook.save(buffer)
    data = _deterministic_zip(buffer.getvalue())
    if isinstance(path_or_stream, str | Path):
        Path(path_or_stream).write_bytes(data)
    else:
        path_or_stream.write(data)
    return count


_MODIFIED = re.compile(rb"(<dcterms:modified[^>]*>)[^<]*(</dcterms:modified>)")


def _deterministic_zip(data: bytes) -> bytes:
    """The workbook with fixed ZIP entry times and a fixed modified time (openpyxl stamps both with now)."""
    stamp = FIXED_TIMESTAMP.strftime("%Y-%m-%dT%H:%M:%SZ").encode()
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for member in source.infolist():
            content = source.read(member)
            if member.filename == "docProps/core.xml":
                content = _MODIFIED.sub(rb"\g<1>" + stamp + rb"\g<2>", content)
            info = zipfile.ZipInfo(member.filename, date_time=_ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            target.writestr(info, content)
    return out.getvalue()


# --- files that cannot be read ----------------------------------------------------------------------------

#: Each bad file's name and the ClaimsFileError code reader.iter_rows raises for it.
BAD_FILE_CODES: dict[str, str] = {
    "fejl-utf16.csv": "FORKERT_TEGNSAET",
    "fejl-blandet-tegnsaet.csv": "FORKERT_TEGNSAET",
    "fejl-manglende-kolonne.csv": "MANGLENDE_KOLONNER",
    "fejl-ukendt-kolonne.csv": "UKENDTE_KOLONNER",
    "fejl-dobbelt-kolonne.csv": "DUBLEREDE_KOLONNER",
    "fejl-ingen-overskrift.csv": "MANGLENDE_KOLONNER",
    "fejl-tom.csv": "TOM_FIL",
    "fejl-kun-overskrift.csv": "TOM_FIL",
    "fejl-afkortet.csv": "AFKORTET_FIL",
    "fejl-billede.png": "UKENDT_FORMAT",
    "fejl-gammelt-excel.xls": "UKENDT_FORMAT",
    "fejl-zip-uden-regneark.xlsx": "UKENDT_FORMAT",
    "fejl-zipbombe.xlsx": "XLSX_FOR_STOR",
}

#: How far the zip bomb's sheet unpacks: far above the ratio-checked size, a few tens of KiB packed.
ZIP_BOMB_UNPACKED = 32 * RATIO_CHECKED_FROM


def _csv_bytes(rows: Iterable[Row], encoding: str = "utf-8", column_order: Sequence[str] | None = None) -> bytes:
    buffer = io.BytesIO()
    write_csv(rows, buffer, encoding, column_order)
    return buffer.getvalue()


def _line(cells: Iterable[str]) -> str:
    return ";".join(cells) + "\r\n"


def _png() -> bytes:
    """A 1x1 PNG image: a binary that is no claims file."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00\xff\xff\xff"))
        + chunk(b"IEND", b"")
    )


def _zip(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in members.items():
            info = zipfile.ZipInfo(name, date_time=_ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, content, compresslevel=9)
    return out.getvalue()


def _zip_bomb() -> bytes:
    """A small workbook-shaped ZIP whose sheet unpacks to ZIP_BOMB_UNPACKED bytes of repetitive XML."""
    row = b'<row><c t="inlineStr"><is><t>x</t></is></c></row>'
    body = row * (ZIP_BOMB_UNPACKED // len(row))
    sheet = b'<?xml version="1.0"?><worksheet><sheetData>' + body + b"</sheetData></worksheet>"
    return _zip(
        {
            "[Content_Types].xml": b'<?xml version="1.0"?><Types/>',
            "xl/workbook.xml": b'<?xml version="1.0"?><workbook/>',
            "xl/worksheets/sheet1.xml": sheet,
        }
    )


def bad_files() -> dict[str, bytes]:
    """One unreadable file per kind, by file name; `BAD_FILE_CODES` says which code the reader raises."""
    good = [s.row for s in scenarios()[:3]]
    header = _line(COLUMNS)
    first = _line(good[0][c] for c in COLUMNS)
    second = _line(good[1][c] for c in COLUMNS)
    truncated = dict(good[1], posteringstekst='"Refusion af udlæg; afbrudt')
    files = {
        "fejl-utf16.csv": (header + first).encode("utf-16"),
        "fejl-blandet-tegnsaet.csv": header.encode() + first.encode("utf-8") + second.encode("cp1252"),
        "fejl-manglende-kolonne.csv": _line(c for c in COLUMNS if c != "artskonto").encode()
        + _line(good[0][c] for c in COLUMNS if c != "artskonto").encode(),
        "fejl-ukendt-kolonne.csv": _line([*COLUMNS, "bemaerkning"]).encode()
        + _line([*(good[0][c] for c in COLUMNS), "haster"]).encode(),
        "fejl-dobbelt-kolonne.csv": _line([*COLUMNS, "beloeb"]).encode()
        + _line([*(good[0][c] for c in COLUMNS), "1,00"]).encode(),
        "fejl-ingen-overskrift.csv": (first + second).encode(),
        "fejl-tom.csv": b"",
        "fejl-kun-overskrift.csv": header.encode(),
        # The last field opens a quote that never closes: the file was cut off mid-row.
        "fejl-afkortet.csv": (header + first).encode() + _line(truncated[c] for c in COLUMNS).encode()[:-40],
        "fejl-billede.png": _png(),
        "fejl-gammelt-excel.xls": b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(HEAD_BYTES // 16) + b"Workbook",
        "fejl-zip-uden-regneark.xlsx": _zip({"krav.csv": (header + first).encode()}),
        "fejl-zipbombe.xlsx": _zip_bomb(),
    }
    assert set(files) == set(BAD_FILE_CODES)
    return files


# --- a large happy-path file -------------------------------------------------------------------------------

_FIRST_NAMES = ("Søren", "Åse", "Mette", "Jørgen", "Anna", "Bjørn", "Lærke", "Kim", "Ærling", "Ida")
_LAST_NAMES = ("Ærøe", "Østergaard", "Nielsen", "Hansen", "Møller", "Bæk", "Sørensen", "Jensen")
_TEXTS = ("Refusion af udlæg", "Tilbagebetaling af depositum", "Erstatning", "Kreditsaldo udbetales")
_OPEN_GL = tuple(number for number, is_open in GL_ACCOUNTS.items() if is_open)
_OPEN_CC = tuple(number for number, is_open in COST_CENTERS.items() if is_open)
_OPEN_WBS = tuple(code for code, is_open in WBS_ELEMENTS.items() if is_open)
_APPROVERS = ("ANNJE", "BOLAR", "CHRHA")  # every one may approve 10,000 DKK
#: Every CVR-payee row in `generate`; at most CVR_CLAIMS_PER_COMPANY per company keeps each under the day cap.
CVR_EVERY = 50
CVR_CLAIMS_PER_COMPANY = 4
GENERATED_MAX_CENTS = 1_000_000  # 10,000.00 DKK


def _birth_prefixes() -> list[str]:
    """DDMMYY for every day of 1858-1870."""
    day, end, found = date(1858, 1, 1), date(1870, 12, 31), []
    while day <= end:
        found.append(day.strftime("%d%m") + f"{day.year % 100:02d}")
        day += timedelta(days=1)
    return found


def _danish_amount(cents: int, style: int) -> str:
    """An amount in one of the notations the file uses: 1.234,50 / 1234,50 / 1234.50 / 1.000 (whole)."""
    units, rest = divmod(cents, 100)
    if style == 0:
        return f"{units:,}".replace(",", ".") + f",{rest:02d}"
    if style == 1:
        return f"{units},{rest:02d}"
    if style == 2:
        return f"{units}.{rest:02d}"
    if rest == 0 and units >= 1000:
        return f"{units:,}".replace(",", ".")
    return f"{units},{rest:02d}"


def generate(count: int, stream: IO[bytes], *, seed: int = 1, encoding: str = "utf-8") -> tuple[int, Decimal]:
    """Streams a happy-path claims CSV of `count` rows (every row valid and payable); returns (rows, amount sum).

    CPR payees are unique (birth dates 1858-1870); every CVR_EVERY-th row pays one of `benchmark_companies()`,
    at most CVR_CLAIMS_PER_COMPANY times each, so no payee passes the day cap; amounts are at most 10,000.00
    DKK; references are unique, so nothing looks like a duplicate; nobody has debts.
    """
    prefixes = _birth_prefixes()
    if count > len(prefixes) * 4000:
        raise ValueError("not enough synthetic CPR numbers for that many rows")
    companies = benchmark_companies()
    company_rows = len(companies) * CVR_CLAIMS_PER_COMPANY
    rng = random.Random(seed)
    names = [f"{first} {last}" for first in _FIRST_NAMES for last in _LAST_NAMES]
    stream.write(("\ufeff" if encoding == "utf-8-sig" else "").encode("utf-8") + _line(COLUMNS).encode("ascii"))
    codec = "utf-8" if encoding == "utf-8-sig" else encoding
    total_cents, batch, cvr_used = 0, [], 0
    randrange = rng.randrange
    approved = "20-11-2026"
    for index in range(count):
        cents = randrange(100, GENERATED_MAX_CENTS + 1)
        total_cents += cents
        claim_id = f"G{seed}-{index:010d}"
        if index % CVR_EVERY == CVR_EVERY - 1 and cvr_used < company_rows:
            company = companies[cvr_used % len(companies)]
            cvr_used += 1
            payee_type, payee_id, name = "CVR", company["cvr"], company["name"]
        else:
            serial, prefix = divmod(index, len(prefixes))
            payee_type, payee_id, name = "CPR", f"{prefixes[prefix]}{5000 + serial}", names[index % len(names)]
        if index % 7 == 6:
            cost_center, wbs = "", _OPEN_WBS[0]
        else:
            cost_center, wbs = _OPEN_CC[index & 1], ""
        batch.append(
            f"{claim_id};{payee_type};{payee_id};{name};{_danish_amount(cents, index & 3)};DKK;"
            f"{_TEXTS[index & 3]};Udbetaling;R{seed}-{index:010d};{_OPEN_GL[index % 3]};{cost_center};{wbs};"
            f"B-{index};{_APPROVERS[index % 3]};{approved};SAGSBEH;{REQUESTER_EMAIL}\r\n"
        )
        if len(batch) >= 5000:
            stream.write("".join(batch).encode(codec))
            batch.clear()
    if batch:
        stream.write("".join(batch).encode(codec))
    return count, Decimal(total_cents).scaleb(-2)


# --- the sample files --------------------------------------------------------------------------------------

#: The column order of the Windows-1252 sample: the brief's order reversed, to show that order is free.
CP1252_COLUMN_ORDER: tuple[str, ...] = tuple(reversed(COLUMNS))
MIXED_FILES = ("krav-blandet-utf8.csv", "krav-blandet-bom.csv", "krav-blandet-cp1252.csv", "krav-blandet.xlsx")


def sample_files() -> dict[str, bytes]:
    """Every sample file by name: the mixed file four ways and the bad files."""
    rows = [s.row for s in scenarios()]
    xlsx = io.BytesIO()
    write_xlsx(rows, xlsx)
    return {
        "krav-blandet-utf8.csv": _csv_bytes(rows, "utf-8"),
        "krav-blandet-bom.csv": _csv_bytes(rows, "utf-8-sig"),
        "krav-blandet-cp1252.csv": _csv_bytes(rows, "cp1252", CP1252_COLUMN_ORDER),
        "krav-blandet.xlsx": xlsx.getvalue(),
        **bad_files(),
    }


def write_samples(folder: str | Path) -> list[Path]:
    """Writes every sample file into folder (made if missing); returns their paths."""
    target = Path(folder)
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for name, content in sample_files().items():
        path = target / name
        path.write_bytes(content)
        written.append(path)
    return written


def main(argv: Sequence[str]) -> int:
    """`write-samples FOLDER` or `generate COUNT FILE [SEED]`."""
    if len(argv) == 2 and argv[0] == "write-samples":
        for path in write_samples(argv[1]):
            print(path)
        return 0
    if len(argv) in (3, 4) and argv[0] == "generate":
        with Path(argv[2]).open("wb") as stream:
            rows, total = generate(int(argv[1]), stream, seed=int(argv[3]) if len(argv) == 4 else 1)
        print(f"{rows} rows, {total} DKK")
        return 0
    print("usage: python -m devhost.claims_data write-samples FOLDER | generate COUNT FILE [SEED]", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
