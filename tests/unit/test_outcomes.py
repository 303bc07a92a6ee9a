from decimal import Decimal

from shared.outcomes import (
    OUTCOME_CLASS,
    RATE_DENOMINATOR,
    RATE_NUMERATOR,
    TERMINAL,
    ItemStatus,
    OutcomeClass,
    automation_rate,
    classify,
    minutes_saved,
)


def test_every_terminal_status_has_exactly_one_class():
    assert set(OUTCOME_CLASS) == set(TERMINAL)
    assert ItemStatus.PENDING not in TERMINAL
    assert set(OUTCOME_CLASS.values()) == set(OutcomeClass)


def test_rate_is_settled_over_settled_and_handed_off_excluding_rejected_input():
    counts = {ItemStatus.DONE: 80, ItemStatus.HANDED_OFF: 20, ItemStatus.REJECTED: 50, ItemStatus.PENDING: 7}
    assert automation_rate(counts) == Decimal("0.8")
    assert RATE_NUMERATOR < RATE_DENOMINATOR
    assert OutcomeClass.REJECTED_INPUT not in RATE_DENOMINATOR


def test_rate_is_undefined_without_decided_cases():
    assert automation_rate({ItemStatus.REJECTED: 3}) is None
    assert automation_rate({}) is None


def test_classify_ignores_pending_and_counts_classes():
    counts = {ItemStatus.DONE: 3, ItemStatus.HANDED_OFF: 2, ItemStatus.REJECTED: 1, ItemStatus.PENDING: 9}
    assert classify(counts) == {
        OutcomeClass.SETTLED_AUTOMATICALLY: 3,
        OutcomeClass.HANDED_TO_PERSON: 2,
        OutcomeClass.REJECTED_INPUT: 1,
    }


def test_minutes_saved_counts_only_settled_cases():
    counts = {ItemStatus.DONE: 10, ItemStatus.HANDED_OFF: 5}
    assert minutes_saved(counts, Decimal("4.5")) == Decimal("45.0")
