"""The workbook and the alert rules query only events (and dimensions, outcomes, reason codes) the app emits."""

import ast
import re

import pytest

from devhost.app_index import load_app
from devhost.manifest import build
from functions.operations.sweeper import STUCK
from shared.outcomes import TECHNICAL_FAILURE, ItemStatus
from tests.infra.templates import INFRA, MAIN, ROOT, accessor_path, bicep_files, body, resolve, text

QUERIES = INFRA / "queries"
LOADED = re.compile(r"loadTextContent\('([^']+\.kql)'\)")
EVENT_EQUALS = re.compile(r"\bname\s*==\s*'([^']*)'")
EVENT_IN = re.compile(r"\bname\s+in\s*\(([^)]*)\)")
DIMENSION = re.compile(r"customDimensions\.(\w+)")


def _kql(name):
    return (QUERIES / name).read_text(encoding="utf-8")


def _events(query):
    names = EVENT_EQUALS.findall(query)
    for group in EVENT_IN.findall(query):
        names += re.findall(r"'([^']*)'", group)
    return names


def _loaded_queries():
    """(bicep file, kql path) for every query a template loads."""
    found = []
    for path in bicep_files():
        for target in LOADED.findall(path.read_text(encoding="utf-8")):
            found.append((path, (path.parent / target).resolve()))
    return found


def _emitted_dimensions():
    """Keyword names of every emit(...) call in the deployed code: the dimensions events can carry."""
    names = set()
    for folder in ("shared", "functions"):
        for path in (ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", "")) == "emit":
                    names |= {k.arg for k in node.keywords if k.arg}
    return names


def test_every_query_file_is_deployed_and_every_loaded_file_exists():
    loaded = {kql for _, kql in _loaded_queries()}
    assert loaded == {p.resolve() for p in QUERIES.glob("*.kql")}
    workbook = {kql.name for path, kql in _loaded_queries() if path.name == "workbook.bicep"}
    alerts = {kql.name for path, kql in _loaded_queries() if path.name == "alerts.bicep"}
    assert workbook and alerts


@pytest.mark.parametrize("query", sorted(QUERIES.glob("*.kql")), ids=lambda p: p.name)
def test_query_reads_custom_events_the_app_emits(query):
    kql = query.read_text(encoding="utf-8")
    manifest = build(load_app("function_app:app"))
    events = _events(kql)
    assert events, f"{query.name} filters on no event name"
    assert set(events) <= set(manifest["events"]), f"{query.name}: events the app does not emit"
    assert "customEvents" in kql
    assert set(DIMENSION.findall(kql)) <= _emitted_dimensions(), f"{query.name}: dimensions no emit() sets"


@pytest.mark.parametrize("query", sorted(QUERIES.glob("*.kql")), ids=lambda p: p.name)
def test_query_compares_outcomes_and_reason_codes_the_app_uses(query):
    kql = query.read_text(encoding="utf-8")
    outcomes = re.findall(r"outcome\s*==\s*'([^']*)'", kql)
    assert set(outcomes) <= {status.value for status in ItemStatus}
    codes = re.findall(r"reason_code\s*==\s*'([^']*)'", kql)
    for group in re.findall(r"reason_code\s+in\s*\(([^)]*)\)", kql):
        codes += re.findall(r"'([^']*)'", group)
    assert set(codes) <= {TECHNICAL_FAILURE, STUCK}


def test_the_workbook_shows_runs_rate_reasons_poison_stuck_failed_and_heartbeat():
    workbook = " ".join(_kql(name) for name in ("workbook-runs.kql", "workbook-automation-rate.kql"))
    assert {"RunStarted", "RunCompleted", "RunUnreconciled", "ItemOutcome"} <= set(_events(workbook))
    assert "done + handed_off" in _kql("workbook-automation-rate.kql")
    assert "item_id" in _kql("workbook-automation-rate.kql")  # each item once
    assert _events(_kql("workbook-handoff-reasons.kql")) == ["ItemOutcome"]
    assert _events(_kql("workbook-poison-depth.kql")) == ["PoisonQueueDepth"]
    stuck = _kql("workbook-stuck-and-failed.kql")
    assert _events(stuck) == ["OperatorAlert"] and STUCK in stuck and TECHNICAL_FAILURE in stuck
    assert _events(_kql("workbook-heartbeat.kql")) == ["Heartbeat"]
    workbook_bicep = text("modules/workbook.bicep")
    for name in (
        "workbook-runs",
        "workbook-automation-rate",
        "workbook-handoff-reasons",
        "workbook-poison-depth",
        "workbook-stuck-and-failed",
        "workbook-heartbeat",
    ):
        assert f"'../queries/{name}.kql'" in workbook_bicep


def test_the_alert_rules_cover_poison_technical_failure_missed_schedule_and_heartbeat():
    rules = {rule["name"]: rule for rule in resolve("modules/alerts.bicep", "rules")}
    assert set(rules) == {"poison-message", "technical-failure", "schedule-missed", "heartbeat-missing"}
    assert _events(rules["poison-message"]["query"]) == ["PoisonQueueDepth"]
    assert "depth > 0" in rules["poison-message"]["query"]
    assert _events(rules["technical-failure"]["query"]) == ["OperatorAlert"]
    assert f"reason_code == '{TECHNICAL_FAILURE}'" in rules["technical-failure"]["query"]
    assert _events(rules["schedule-missed"]["query"]) == ["ScheduleMissed"]
    heartbeat = rules["heartbeat-missing"]
    assert _events(heartbeat["query"]) == ["Heartbeat"]
    assert (heartbeat["operator"], heartbeat["threshold"], heartbeat["windowSize"]) == ("LessThan", 1, "PT15M")
    for name in ("poison-message", "technical-failure", "schedule-missed"):
        assert (rules[name]["operator"], rules[name]["threshold"]) == ("GreaterThan", 0), name


def test_alerts_and_workbook_read_application_insights_and_mail_the_alert_address():
    alert_rule = body("modules/alerts.bicep", "alertRules")["properties"]
    assert alert_rule["scopes"] == ["appInsightsId"]
    assert accessor_path(alert_rule["actions"]["actionGroups"][0]) == ["actionGroup", "id"]
    receivers = body("modules/alerts.bicep", "actionGroup")["properties"]["emailReceivers"]
    assert [r["emailAddress"] for r in receivers] == ["alertEmail"]
    assert body(MAIN, "alerts")["params"]["alertEmail"] == "alertEmail"
    for symbol in ("alerts", "workbook"):
        assert accessor_path(body(MAIN, symbol)["params"]["appInsightsId"]) == [
            "monitoring",
            "outputs",
            "appInsightsId",
        ]
    assert body("modules/workbook.bicep", "workbook")["properties"]["sourceId"] == "appInsightsId"
