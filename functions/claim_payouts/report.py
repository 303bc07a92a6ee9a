"""The batch report of a claims run: every row of the input with its outcome, and a reconciliation that
puts the file's control totals beside what the ledger says became of them.

Written by the run closer just before it saves the run complete (`Chain.on_complete`), so a run that does not
reconcile never gets one; writing it again gives the same content. Both files are accounting records in the
reports container. The rows stream from the ledger to the blob a bucket at a time: a run of 100,000 claims is
never held whole.
"""

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from functions.claim_payouts.calendar import COPENHAGEN
from functions.claim_payouts.steps import AUTOMATION
from shared import ledger, storage
from shared.outcomes import ItemStatus
from shared.spreadsheet import Cell, csv_bytes, csv_pieces

REPORTS = storage.required_container("reports")
ITEM_COLUMNS = (
    "linje",
    "krav_id",
    "status",
    "aarsagskode",
    "aarsag",
    "beloeb",
    "modregnet",
    "udbetalt",
    "betalingsdato",
    "bilag",
    "sag",
    "post",
)
#: The ledger columns a report line is made of: a 100,000-claim run's rows are read without the rest (receipt
#: texts, timestamps), which Azurite would send and the worker parse for nothing.
LEDGER_COLUMNS = (
    "Status",
    "Line",
    "ClaimId",
    "ReasonCode",
    "ReasonText",
    "Amount",
    "Offset",
    "Payout",
    "PaymentDate",
    "DocNo",
    "CaseNumber",
)
STATUS_DA = {
    ItemStatus.DONE: "udbetalt",
    ItemStatus.HANDED_OFF: "manuel behandling",
    ItemStatus.REJECTED: "afvist",
    ItemStatus.PENDING: "i gang",
}


@dataclass
class Totals:
    """What the rows of a run add up to, by status."""

    count: Counter[ItemStatus] = field(default_factory=Counter)
    amount: dict[ItemStatus, Decimal] = field(default_factory=dict)
    offset: Decimal = Decimal(0)
    paid: Decimal = Decimal(0)

    def add(self, status: ItemStatus, amount: Decimal, offset: Decimal, paid: Decimal) -> None:
        """Counts one row."""
        self.count[status] += 1
        self.amount[status] = self.amount.get(status, Decimal(0)) + amount
        if status is ItemStatus.DONE:
            self.offset += offset
            self.paid += paid


def _decimal(value: Any) -> Decimal:
    return Decimal(str(value)) if value not in (None, "") else Decimal(0)


def item_line(row: dict[str, Any]) -> list[Cell]:
    """One ledger row as a report line (numbers stay numbers; text is neutralised by the writer)."""
    status = ItemStatus(row["Status"])
    done = status is ItemStatus.DONE
    paid_on = row.get("PaymentDate")
    return [
        int(row["Line"]) if str(row.get("Line", "")).isdigit() else None,
        str(row.get("ClaimId", "")),
        STATUS_DA[status],
        str(row.get("ReasonCode", "")),
        str(row.get("ReasonText", "")),
        _decimal(row.get("Amount")) if row.get("Amount") else None,
        _decimal(row.get("Offset")) if done else None,
        _decimal(row.get("Payout")) if done else None,
        date.fromisoformat(paid_on) if done and paid_on else None,
        str(row.get("DocNo", "")),
        str(row.get("CaseNumber", "")),
        row["ItemId"],
    ]


def write(run: ledger.Run) -> tuple[str, str]:
    """Writes the run's item report and reconciliation; returns their blob names."""
    folder = f"{AUTOMATION}/{run.started_at.astimezone(COPENHAGEN):%Y-%m-%d}/{run.run_id}"
    totals = Totals()

    def lines() -> Iterator[list[Cell]]:
        for row in ledger.item_rows(run, columns=LEDGER_COLUMNS):
            status = ItemStatus(row["Status"])
            totals.add(status, _decimal(row.get("Amount")), _decimal(row.get("Offset")), _decimal(row.get("Payout")))
            yield item_line(row)

    reports = storage.container(REPORTS)
    items_name, summary_name = f"{folder}-poster.csv", f"{folder}-afstemning.csv"
    reports.upload_blob(items_name, csv_pieces(ITEM_COLUMNS, lines()), overwrite=True)
    reports.upload_blob(summary_name, reconciliation(run, totals), overwrite=True)
    return items_name, summary_name


def reconciliation(run: ledger.Run, totals: Totals) -> bytes:
    """The file's control totals beside the ledger's, per outcome, and whether they agree."""
    rows = sum(totals.count.values())
    amount = sum(totals.amount.values(), Decimal(0))
    agrees = rows == run.expected_items and amount == run.expected_amount
    lines: list[list[Cell]] = [
        ["kørsel", run.run_id, None],
        ["fil", run.source, None],
        ["indsendt af", run.submitted_by, None],
        ["rækker og beløb i filen", run.expected_items, run.expected_amount],
        ["rækker og beløb i alt behandlet", rows, amount],
    ]
    lines += [
        [f"heraf {STATUS_DA[status]}", totals.count[status], totals.amount.get(status, Decimal(0))]
        for status in ItemStatus
    ]
    lines += [
        ["modregnet i gæld (udbetalte krav)", None, totals.offset],
        ["udbetalt til NemKonto", None, totals.paid],
        ["afstemt med filen", "ja" if agrees else "nej", None],
    ]
    return csv_bytes(("post", "antal", "beloeb"), lines)
