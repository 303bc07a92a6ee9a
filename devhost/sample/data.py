"""Sample payee files for the sample chain, with the faults the simulator must inject for them.

CPR numbers here are synthetic and can never be a real person's: birth dates in 1858-1870 (seventh digit
5-8 with a year above 57 means the 1800s), a range no living person's number falls in, yet well-formed and
with real dates, so they pass validation and are CPR-shaped for the log scan.
"""

import random
from dataclasses import dataclass, field
from decimal import Decimal

from devhost.sample.chain import COLUMNS


@dataclass
class SampleFile:
    """A sample file and what the simulator and the ledger should make of it."""

    text: str
    faults: dict[str, int] = field(default_factory=dict)
    no_nemkonto: list[str] = field(default_factory=list)
    #: expected terminal status and reason per row id
    expected: dict[str, tuple[str, str]] = field(default_factory=dict)
    total: Decimal = Decimal(0)


def synthetic_cpr(rng: random.Random) -> str:
    """A well-formed CPR of someone born 1858-1870."""
    year = rng.randint(1858, 1870)
    day, month = rng.randint(1, 28), rng.randint(1, 12)
    seventh = rng.choice("5678")
    return f"{day:02d}{month:02d}{year % 100:02d}{seventh}{rng.randint(0, 999):03d}"


def sample_file(rows: int = 40, *, seed: int = 7, max_attempts: int = 5, with_problems: bool = True) -> SampleFile:
    """A sample file: mostly good rows, and (with_problems) one of each way a row can end elsewhere."""
    rng = random.Random(seed)
    sample = SampleFile(text=";".join(COLUMNS) + "\n")
    kinds = ["ok"] * rows
    if with_problems:
        special = ["bad_date", "over_limit", "bad_amount", "flaky", "down", "no_nemkonto", "dash_cpr"]
        stride = max(1, rows // len(special))
        for index, kind in enumerate(special):
            kinds[(2 + index * stride) % rows] = kind
    for number, kind in enumerate(kinds, start=1):
        row_id = f"S{seed:02d}-{number:06d}"
        person = synthetic_cpr(rng)
        amount = Decimal(rng.randint(100, 900000)) / 100
        written_cpr, written_amount = person, f"{amount:.2f}".replace(".", ",")
        expected = ("done", "")
        if kind == "bad_date":
            written_cpr = "32" + person[2:]
            expected = ("handed_off", "UGYLDIGT_CPR")
        elif kind == "over_limit":
            amount = Decimal("25000.00")
            written_amount = "25.000,00"
            expected = ("handed_off", "BELOEB_OVER_GRAENSE")
        elif kind == "bad_amount":
            written_amount = "mange penge"
            expected = ("rejected", "UGYLDIGT_BELOEB")
        elif kind == "flaky":
            sample.faults[person] = 2
        elif kind == "down":
            sample.faults[person] = -1
            expected = ("handed_off", "TEKNISK_FEJL")
        elif kind == "no_nemkonto":
            sample.no_nemkonto.append(person)
            expected = ("handed_off", "INGEN_NEMKONTO")
        elif kind == "dash_cpr":
            written_cpr = f"{person[:6]}-{person[6:]}"
            sample.faults[written_cpr] = max_attempts - 1  # recovers on the last attempt
        if kind != "bad_amount":
            sample.total += amount
        sample.expected[row_id] = expected
        sample.text += f"{row_id};{written_cpr};Modtager {number};{written_amount}\n"
    return sample
