"""The banking-day calendar and payment dates, table-driven, against the closing days stated for 2026 and 2027."""

from datetime import UTC, date, datetime, time, timedelta

import pytest

from functions.claim_payouts import calendar as cal

NOON = time(12, 0)

#: The brief's list of 2026 closing days, verbatim: 1 Jan, 2, 3, 6 Apr, 14, 15, 25 May, 5 Jun, 24, 25, 26, 31 Dec.
CLOSING_2026 = {
    date(2026, 1, 1),
    date(2026, 4, 2),
    date(2026, 4, 3),
    date(2026, 4, 6),
    date(2026, 5, 14),
    date(2026, 5, 15),
    date(2026, 5, 25),
    date(2026, 6, 5),
    date(2026, 12, 24),
    date(2026, 12, 25),
    date(2026, 12, 26),
    date(2026, 12, 31),
}

#: The 2027 closing days, written out by hand from Easter Sunday 28 March 2027: New Year's Day (Fri),
#: Maundy Thursday 25 Mar, Good Friday 26 Mar, Easter Monday 29 Mar, Ascension 6 May and the Friday after,
#: 7 May, Whit Monday 17 May, 5 June (a Saturday), 24 (Fri), 25 (Sat), 26 (Sun) and 31 December (Fri).
CLOSING_2027 = {
    date(2027, 1, 1),
    date(2027, 3, 25),
    date(2027, 3, 26),
    date(2027, 3, 29),
    date(2027, 5, 6),
    date(2027, 5, 7),
    date(2027, 5, 17),
    date(2027, 6, 5),
    date(2027, 12, 24),
    date(2027, 12, 25),
    date(2027, 12, 26),
    date(2027, 12, 31),
}


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_closing_days_2026_are_the_briefs_list():
    assert cal.closing_days(2026) == CLOSING_2026


def test_closing_days_2027():
    assert cal.easter_sunday(2027) == date(2027, 3, 28)
    assert cal.closing_days(2027) == CLOSING_2027


@pytest.mark.parametrize(
    ("year", "easter"),
    [
        (1818, date(1818, 3, 22)),  # the earliest possible date
        (1943, date(1943, 4, 25)),  # the latest possible date
        (2000, date(2000, 4, 23)),
        (2019, date(2019, 4, 21)),
        (2023, date(2023, 4, 9)),
        (2024, date(2024, 3, 31)),
        (2025, date(2025, 4, 20)),
        (2026, date(2026, 4, 5)),
        (2027, date(2027, 3, 28)),
        (2038, date(2038, 4, 25)),
        (2285, date(2285, 3, 22)),
    ],
)
def test_easter_sunday(year, easter):
    assert cal.easter_sunday(year) == easter


def test_easter_agrees_with_dateutil_over_five_centuries():
    easter = pytest.importorskip("dateutil.easter")  # installed with croniter; only a cross-check here
    for year in range(1700, 2200):
        assert cal.easter_sunday(year) == easter.easter(year), year


def test_great_prayer_day_until_2023_only():
    assert date(2023, 5, 5) in cal.closing_days(2023)  # Easter 9 April 2023 + 26 days
    assert date(2022, 5, 13) in cal.closing_days(2022)
    assert date(2024, 4, 26) not in cal.closing_days(2024)  # abolished: Easter 31 March 2024 + 26 days
    assert cal.is_banking_day(date(2024, 4, 26))
    assert len(cal.closing_days(2023)) == 13
    assert len(cal.closing_days(2024)) == 12


def test_closing_days_returns_a_copy():
    cal.closing_days(2026).add(date(2026, 7, 1))
    assert cal.is_banking_day(date(2026, 7, 1))


@pytest.mark.parametrize(
    ("day", "open_"),
    [
        (date(2026, 1, 2), True),  # Friday after New Year
        (date(2026, 1, 3), False),  # Saturday
        (date(2026, 1, 4), False),  # Sunday
        (date(2026, 4, 1), True),  # Wednesday before Easter
        (date(2026, 4, 7), True),  # Tuesday after Easter Monday
        (date(2026, 6, 5), False),  # Constitution Day on a Friday
        (date(2026, 12, 23), True),
        (date(2026, 12, 28), True),
        (date(2026, 12, 30), True),
        (date(2026, 12, 31), False),
        (date(2027, 5, 7), False),  # Friday after Ascension
        (date(2027, 6, 4), True),  # 5 June 2027 is a Saturday: the Friday before stays open
    ],
)
def test_is_banking_day(day, open_):
    assert cal.is_banking_day(day) is open_


def test_every_day_of_2026_and_2027():
    closed = CLOSING_2026 | CLOSING_2027
    day = date(2026, 1, 1)
    while day.year < 2028:
        assert cal.is_banking_day(day) is (day.weekday() < 5 and day not in closed), day
        day += timedelta(days=1)


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (date(2026, 4, 1), date(2026, 4, 1)),  # open: itself
        (date(2026, 4, 2), date(2026, 4, 7)),  # Maundy Thursday to the Tuesday after Easter
        (date(2026, 12, 24), date(2026, 12, 28)),
        (date(2026, 12, 31), date(2027, 1, 4)),  # across the year: 1 Jan closed, 2-3 Jan a weekend
        (date(2026, 5, 23), date(2026, 5, 26)),  # Saturday before Whit Monday
    ],
)
def test_next_banking_day(day, expected):
    assert cal.next_banking_day(day) == expected


@pytest.mark.parametrize(
    ("day", "n", "expected"),
    [
        (date(2026, 4, 1), 0, date(2026, 4, 1)),
        (date(2026, 4, 1), 1, date(2026, 4, 7)),  # over the whole of Easter
        (date(2026, 4, 1), 2, date(2026, 4, 8)),
        (date(2026, 1, 3), 0, date(2026, 1, 5)),  # a Saturday moves to Monday first
        (date(2026, 1, 3), 1, date(2026, 1, 6)),
        (date(2026, 5, 13), 1, date(2026, 5, 18)),  # Ascension Thursday and its Friday
        (date(2026, 12, 23), 3, date(2026, 12, 30)),  # 28, 29, 30 Dec are open
        (date(2026, 12, 23), 4, date(2027, 1, 4)),  # then nothing until Monday 4 January
    ],
)
def test_add_banking_days(day, n, expected):
    assert cal.add_banking_days(day, n) == expected


def test_add_banking_days_refuses_negative():
    with pytest.raises(ValueError, match="zero or more"):
        cal.add_banking_days(date(2026, 1, 5), -1)


@pytest.mark.parametrize(
    ("year", "month", "expected"),
    [
        (2026, 12, date(2026, 12, 30)),  # 31 Dec is closed
        (2026, 5, date(2026, 5, 29)),  # 30-31 May 2026 are a weekend
        (2026, 1, date(2026, 1, 30)),  # 31 Jan 2026 is a Saturday
        (2026, 4, date(2026, 4, 30)),
        (2027, 12, date(2027, 12, 30)),  # 31 Dec 2027 is a Friday, closed
        (2027, 3, date(2027, 3, 31)),
        (2027, 2, date(2027, 2, 26)),
    ],
)
def test_last_banking_day_of_month(year, month, expected):
    assert cal.last_banking_day_of_month(year, month) == expected


@pytest.mark.parametrize(
    ("now", "lead", "expected"),
    [
        # Winter time (CET, UTC+1): the cut-off 12:00 local is 11:00 UTC.
        (utc(2026, 1, 14, 10, 59), 0, date(2026, 1, 14)),  # Wednesday 11:59 local: today
        (utc(2026, 1, 14, 10, 59), 1, date(2026, 1, 15)),
        (utc(2026, 1, 14, 11, 0), 0, date(2026, 1, 15)),  # 12:00 exactly: the run has closed
        (utc(2026, 1, 14, 11, 0), 1, date(2026, 1, 16)),
        # Summer time (CEST, UTC+2): the cut-off is 10:00 UTC.
        (utc(2026, 6, 10, 9, 59), 1, date(2026, 6, 11)),
        (utc(2026, 6, 10, 10, 0), 1, date(2026, 6, 12)),
        (utc(2026, 6, 10, 10, 30), 0, date(2026, 6, 11)),  # 12:30 local, though 11:30 would be CET
        # Around the switch to summer time on Sunday 29 March 2026.
        (utc(2026, 3, 27, 10, 30), 0, date(2026, 3, 27)),  # Friday, still CET: 11:30 local
        (utc(2026, 3, 30, 10, 30), 0, date(2026, 3, 31)),  # Monday, now CEST: 12:30 local
        (utc(2026, 3, 30, 9, 59), 0, date(2026, 3, 30)),
        # And back to winter time on Sunday 25 October 2026.
        (utc(2026, 10, 23, 10, 30), 0, date(2026, 10, 26)),  # Friday CEST 12:30: Monday
        (utc(2026, 10, 26, 10, 30), 0, date(2026, 10, 26)),  # Monday CET 11:30: today
        # The local date, not the UTC date, is today.
        (utc(2026, 1, 15, 23, 30), 0, date(2026, 1, 16)),  # Friday 00:30 CET
        (utc(2026, 6, 11, 22, 30), 0, date(2026, 6, 12)),  # Friday 00:30 CEST
        (utc(2026, 1, 16, 23, 30), 0, date(2026, 1, 19)),  # Saturday 00:30 CET: closed
        # A Friday after the cut-off: Monday with no lead; with the brief's one day (cut-off the banking day
        # before), Monday's run closed at Friday noon, so Tuesday.
        (utc(2026, 1, 16, 12, 0), 0, date(2026, 1, 19)),
        (utc(2026, 1, 16, 12, 0), 1, date(2026, 1, 20)),
        (utc(2026, 1, 16, 10, 0), 1, date(2026, 1, 19)),  # Friday before the cut-off: Monday
        (utc(2026, 1, 17, 9, 0), 1, date(2026, 1, 20)),  # Saturday morning: Monday does not count
        # Before Easter 2026 (2, 3 and 6 April closed).
        (utc(2026, 4, 1, 9, 0), 0, date(2026, 4, 1)),
        (utc(2026, 4, 1, 9, 0), 1, date(2026, 4, 7)),
        (utc(2026, 4, 1, 11, 0), 0, date(2026, 4, 7)),  # 13:00 CEST
        (utc(2026, 4, 1, 11, 0), 1, date(2026, 4, 8)),
        (utc(2026, 4, 2, 8, 0), 1, date(2026, 4, 8)),  # Maundy Thursday morning
        # Before Christmas and New Year (24-26 Dec, 31 Dec and 1 Jan closed; 2-3 Jan 2027 a weekend).
        (utc(2026, 12, 23, 10, 0), 1, date(2026, 12, 28)),
        (utc(2026, 12, 23, 12, 0), 1, date(2026, 12, 29)),
        (utc(2026, 12, 30, 10, 0), 0, date(2026, 12, 30)),
        (utc(2026, 12, 30, 10, 0), 1, date(2027, 1, 4)),
        (utc(2026, 12, 30, 12, 0), 1, date(2027, 1, 5)),
        (utc(2026, 12, 31, 22, 30), 0, date(2027, 1, 4)),  # 23:30 CET on 31 December
        (utc(2026, 12, 31, 23, 30), 1, date(2027, 1, 5)),  # 00:30 CET: already 1 January locally
    ],
)
def test_payment_date(now, lead, expected):
    assert cal.payment_date(now, NOON, lead) == expected


def test_payment_date_accepts_any_aware_time():
    copenhagen = datetime(2026, 1, 14, 11, 59, tzinfo=cal.COPENHAGEN)
    assert cal.payment_date(copenhagen, NOON, 1) == date(2026, 1, 15)


def test_payment_date_refuses_a_naive_time():
    with pytest.raises(ValueError, match="timezone-aware"):
        cal.payment_date(datetime(2026, 1, 14, 10, 0), NOON, 1)
