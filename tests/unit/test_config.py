"""Versioned configuration and pseudonym-key rotation."""

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from pydantic import ValidationError

from shared import pseudonyms
from shared.config import DEFAULT_RULES_FILE, Rules, RulesVersion
from shared.settings import get_settings

CPR = "2412581234"


def version(name: str, valid_from: date, minutes: str = "4") -> RulesVersion:
    return RulesVersion(
        version=name, valid_from=valid_from, description="x", minutes_per_case={"sample": Decimal(minutes)}
    )


def test_the_version_in_force_follows_the_danish_calendar_date():
    rules = Rules(versions=(version("2026.1", date(2026, 1, 1)), version("2027.1", date(2027, 1, 1), "3")))
    # 23:30 UTC on New Year's Eve is already 1 January in Copenhagen
    assert rules.in_force(datetime(2026, 12, 31, 23, 30, tzinfo=UTC)).version == "2027.1"
    assert rules.in_force(datetime(2026, 12, 31, 22, 30, tzinfo=UTC)).version == "2026.1"
    assert rules.version("2026.1").minutes_per_case["sample"] == Decimal(4)
    with pytest.raises(LookupError):
        rules.in_force(datetime(2025, 6, 1, tzinfo=UTC))
    with pytest.raises(LookupError):
        rules.version("1999.1")


def test_versions_must_be_unique_and_in_date_order():
    with pytest.raises(ValidationError):
        Rules(versions=(version("2027.1", date(2027, 1, 1)), version("2026.1", date(2026, 1, 1))))
    with pytest.raises(ValidationError):
        Rules(versions=(version("2026.1", date(2026, 1, 1)), version("2026.1", date(2026, 6, 1))))


def test_the_deployed_rules_file_is_valid_and_covers_every_automation_s_minutes():
    rules = Rules.model_validate_json(DEFAULT_RULES_FILE.read_text(encoding="utf-8"))
    current = rules.in_force(datetime(2026, 11, 24, tzinfo=UTC))
    assert {"sample", "vendor_onboarding", "claim_payouts"} <= set(current.minutes_per_case)
    assert all(m > 0 for m in current.minutes_per_case.values())
    assert Decimal(current.rules("sample")["amount_limit"]) == Decimal(10000)


def test_a_rotated_pseudonym_key_still_finds_older_references(monkeypatch):
    old = pseudonyms.reference(CPR)
    monkeypatch.setenv("PSEUDONYM_KEY", "a-new-key")
    monkeypatch.setenv("PSEUDONYM_KEY_VERSION", "2")
    monkeypatch.setenv("PSEUDONYM_PREVIOUS_KEYS", '{"1": "test-key-not-a-secret"}')
    get_settings.cache_clear()
    try:
        new = pseudonyms.reference(CPR)
        assert new != old and new.startswith("p2:") and old.startswith("p1:")
        assert pseudonyms.lookup_references(CPR) == [new, old]
    finally:
        get_settings.cache_clear()


def test_an_unresolved_key_vault_reference_is_refused_by_name(monkeypatch):
    from shared.settings import get_settings

    reference = "@Microsoft.KeyVault(SecretUri=https://kv.vault.azure.net/secrets/pseudonym-key/)"
    monkeypatch.setenv("PSEUDONYM_KEY", reference)
    get_settings.cache_clear()
    try:
        with pytest.raises(RuntimeError, match="PSEUDONYM_KEY") as refused:
            get_settings()
        assert "kv.vault" not in str(refused.value)
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
