"""Run reports for people (tables) and machines (--json), read from the ledger."""

import json
from decimal import Decimal
from typing import Any

from shared import ledger
from shared.config import rules
from shared.outcomes import ItemStatus, automation_rate, classify, minutes_saved


def run_summary(run: ledger.Run) -> dict[str, Any]:
    """One run as a flat dictionary, with its automation rate and minutes saved."""
    minutes = rules().version(run.config_version).minutes_per_case.get(run.automation, Decimal(0))
    rate = automation_rate(run.counts)
    return {
        "run_id": run.run_id,
        "automation": run.automation,
        "status": run.status.value,
        "trigger": run.trigger,
        "source": run.source,
        "started_at": run.started_at.isoformat(),
        "ended_at": run.ended_at.isoformat() if run.ended_at else None,
        "expected_items": run.expected_items,
        "expected_amount": str(run.expected_amount),
        "counts": {status.value: run.counts.get(status, 0) for status in ItemStatus},
        "classes": {cls.value: n for cls, n in classify(run.counts).items()},
        "automation_rate": None if rate is None else f"{rate:.3f}",
        "minutes_saved": str(minutes_saved(run.counts, minutes)),
        "reasons": run.reasons,
        "amount_total": str(run.amount_total),
        "missing_count": run.missing_count,
        "missing": list(run.missing),
        "problems": list(run.problems),
        "code_version": run.code_version,
        "config_version": run.config_version,
    }


def print_runs(runs: list[ledger.Run], as_json: bool) -> None:
    """Prints runs as JSON lines or as a table."""
    summaries = [run_summary(run) for run in runs]
    if as_json:
        print(json.dumps(summaries, indent=2))
        return
    print(
        f"{'run':<40} {'status':<12} {'items':>6} {'done':>6} {'person':>6} {'rejected':>8} {'rate':>6} "
        f"{'min saved':>9}"
    )
    for s in summaries:
        counts = s["counts"]
        print(
            f"{s['run_id']:<40} {s['status']:<12} {s['expected_items']:>6} {counts['done']:>6} "
            f"{counts['handed_off']:>6} {counts['rejected']:>8} {s['automation_rate'] or '-':>6} "
            f"{s['minutes_saved']:>9}"
        )
        for code, n in sorted(s["reasons"].items()):
            print(f"{'':<42}{code}: {n}")
        for problem in s["problems"]:
            print(f"{'':<42}PROBLEM: {problem}")
        if s["missing_count"]:
            print(f"{'':<42}missing {s['missing_count']}: {', '.join(s['missing'])}")


def item_summaries(run: ledger.Run, status: ItemStatus | None) -> list[dict[str, Any]]:
    """A run's items (optionally in one status) as flat dictionaries."""
    return [
        {
            "item_id": row["ItemId"],
            "status": row["Status"],
            "step": row.get("Step", ""),
            "attempts": row.get("Attempts", 0),
            "reason_code": row.get("ReasonCode", ""),
            "reason_text": row.get("ReasonText", ""),
            "case_number": row.get("CaseNumber", ""),
            "reference": row.get("Reference", ""),
            "amount": row.get("Amount", ""),
        }
        for row in ledger.item_rows(run, status)
    ]


def print_items(items: list[dict[str, Any]], as_json: bool) -> None:
    """Prints items as JSON or as a table."""
    if as_json:
        print(json.dumps(items, indent=2, ensure_ascii=False))
        return
    for item in items:
        line = (
            f"{item['item_id']:<10} {item['status']:<11} {item['step']:<10} {item['attempts']:>2} "
            f"{item['case_number']:<14} {item['reason_code']}"
        )
        print(line)
        if item["reason_text"]:
            print(f"{'':<11}{item['reason_text'].splitlines()[0]}")
