"""Versioned business configuration: the rules and defaults KS configures, each version with a valid-from date.

Every [default] of the domain brief (limits, rule tables, rate tables, minutes per case) lives in
`config/rules.json`, deployed with the code. A run is decided under the version in force on its start date
(a Danish calendar date), and every run and item records that version, so a decision can always be
explained by the rules it was made under. A new version is added, never edited in place.
"""

import json
from datetime import date, datetime
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import Field, model_validator

from shared.models import BoundaryModel
from shared.settings import get_settings

DANISH_TIME = ZoneInfo("Europe/Copenhagen")
DEFAULT_RULES_FILE = Path(__file__).resolve().parent.parent / "config" / "rules.json"


class RulesVersion(BoundaryModel):
    """One version of the configuration."""

    version: str = Field(pattern=r"^[0-9]{4}\.[0-9]+$")
    valid_from: date
    description: str
    minutes_per_case: dict[str, Decimal] = Field(default_factory=dict)
    automations: dict[str, dict[str, Any]] = Field(default_factory=dict)

    def rules(self, automation: str) -> dict[str, Any]:
        """The rule values of one automation in this version."""
        return self.automations.get(automation, {})


class Rules(BoundaryModel):
    """Every version, oldest first."""

    versions: tuple[RulesVersion, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _ordered_and_unique(self) -> "Rules":
        dates = [v.valid_from for v in self.versions]
        names = [v.version for v in self.versions]
        if dates != sorted(set(dates)) or len(set(names)) != len(names):
            raise ValueError("versions must have unique names and strictly increasing valid_from dates")
        return self

    def in_force(self, at: datetime) -> RulesVersion:
        """The version in force at a moment, by its Danish calendar date."""
        day = at.astimezone(DANISH_TIME).date()
        candidates = [v for v in self.versions if v.valid_from <= day]
        if not candidates:
            raise LookupError(f"no configuration is in force on {day.isoformat()}")
        return candidates[-1]

    def version(self, name: str) -> RulesVersion:
        """A version by its name (to explain an earlier decision)."""
        for candidate in self.versions:
            if candidate.version == name:
                return candidate
        raise LookupError(f"no configuration version {name}")


@cache
def rules() -> Rules:
    """The configuration file of this deployment, read once on first use."""
    path = Path(get_settings().rules_file or DEFAULT_RULES_FILE)
    return Rules.model_validate(json.loads(path.read_text(encoding="utf-8")))
