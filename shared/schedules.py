"""Scheduled automations and their NCRONTAB schedules, so the sweeper can tell a run that did not happen.

NCRONTAB (the Functions timer format) has six fields with seconds first; `croniter` reads a sixth field as
seconds last unless told `second_at_beginning=True`, which is why every use goes through here. Schedules are in
UTC, as the timer trigger evaluates them on Flex Consumption (WEBSITE_TIME_ZONE is not supported there).
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar

from croniter import croniter

from shared.settings import get_settings


def next_occurrence(schedule: str, after: datetime) -> datetime:
    """The first time after `after` at which an NCRONTAB schedule fires."""
    return croniter(schedule, after, second_at_beginning=True).get_next(datetime)


def previous_occurrence(schedule: str, before: datetime) -> datetime:
    """The last time at or before `before` at which an NCRONTAB schedule fired."""
    return croniter(schedule, before, second_at_beginning=True).get_prev(datetime)


@dataclass(frozen=True)
class Schedule:
    """A scheduled job and the setting that holds its schedule (the timer's `%SETTING%`).

    By default the job's trace is its automation's newest run in the ledger; a job that makes no runs (a
    report) says how to find when it last ran.
    """

    registry: ClassVar[dict[str, "Schedule"]] = {}

    automation: str  # the name events carry: an automation, or a job of one ("vendor_control_list")
    setting: str  # field name on Settings, e.g. "vendor_intake_schedule"
    last_run: Callable[[], datetime | None] | None = None

    def __post_init__(self) -> None:
        Schedule.registry[self.automation] = self

    @property
    def expression(self) -> str:
        """The schedule as configured now."""
        return str(getattr(get_settings(), self.setting))
