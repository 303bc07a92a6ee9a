"""Item states, terminal outcomes and the business-case taxonomy: the one place the benefit report reads.

Every item ends in exactly one terminal status. The business case (investeringsforslaget) promises that at
least 80 % of the cases an automation is shown are settled without a person, and 2 FTE freed; both figures
are computed from these classes and nothing else.
"""

from collections.abc import Mapping
from decimal import Decimal
from enum import StrEnum


class ItemStatus(StrEnum):
    """Where an item is; everything but PENDING is terminal."""

    PENDING = "pending"  # created, moving through the steps
    DONE = "done"  # settled by the automation, no person involved
    HANDED_OFF = "handed_off"  # a person must act: a business rule said no, or technical failure
    REJECTED = "rejected"  # the input row could not be read as a case at all; kept with its error


TERMINAL = frozenset({ItemStatus.DONE, ItemStatus.HANDED_OFF, ItemStatus.REJECTED})


class OutcomeClass(StrEnum):
    """How a terminal item counts in the business case."""

    SETTLED_AUTOMATICALLY = "settled_automatically"
    HANDED_TO_PERSON = "handed_to_person"
    REJECTED_INPUT = "rejected_input"


OUTCOME_CLASS: Mapping[ItemStatus, OutcomeClass] = {
    ItemStatus.DONE: OutcomeClass.SETTLED_AUTOMATICALLY,
    ItemStatus.HANDED_OFF: OutcomeClass.HANDED_TO_PERSON,
    ItemStatus.REJECTED: OutcomeClass.REJECTED_INPUT,
}

#: The automation rate is settled / (settled + handed to a person). Rejected input is not a case the
#: automation was shown (an unreadable row, a wrong file) and is reported beside the rate, not in it;
#: TEKNISK_FEJL hand-offs are in the denominator, so outages lower the rate as they should.
RATE_NUMERATOR = frozenset({OutcomeClass.SETTLED_AUTOMATICALLY})
RATE_DENOMINATOR = frozenset({OutcomeClass.SETTLED_AUTOMATICALLY, OutcomeClass.HANDED_TO_PERSON})
TARGET_AUTOMATION_RATE = Decimal("0.80")

#: What a reason code looks like: upper-case Danish words with underscores, never data (so never a CPR).
REASON_CODE_PATTERN = r"^[A-Z][A-Z0-9_]{2,49}$"

#: Reason code of an item handed off after its last technical attempt.
TECHNICAL_FAILURE = "TEKNISK_FEJL"
TECHNICAL_FAILURE_TEXT = (
    "Automatikken kunne ikke gennemføre sagen efter flere forsøg på grund af en teknisk fejl. "
    "Sagen skal behandles manuelt; driften er underrettet."
)


def classify(counts: Mapping[ItemStatus, int]) -> dict[OutcomeClass, int]:
    """Terminal item counts per business-case class."""
    classes = dict.fromkeys(OutcomeClass, 0)
    for status, count in counts.items():
        if status in OUTCOME_CLASS:
            classes[OUTCOME_CLASS[status]] += count
    return classes


def automation_rate(counts: Mapping[ItemStatus, int]) -> Decimal | None:
    """Share of cases settled without a person, or None when no case was decided."""
    classes = classify(counts)
    denominator = sum(classes[c] for c in RATE_DENOMINATOR)
    if denominator == 0:
        return None
    return Decimal(sum(classes[c] for c in RATE_NUMERATOR)) / Decimal(denominator)


def minutes_saved(counts: Mapping[ItemStatus, int], minutes_per_case: Decimal) -> Decimal:
    """Person-minutes the automation saved: settled cases times today's minutes per case."""
    return classify(counts)[OutcomeClass.SETTLED_AUTOMATICALLY] * minutes_per_case
