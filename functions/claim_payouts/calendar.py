"""Danish banking days, computed from the rules in the brief (never a hand-kept list), and payment dates.

Closing days: New Year's Day, Maundy Thursday, Good Friday, Easter Monday, Ascension Day, the Friday after
Ascension, Whit Monday, 5 June, 24, 25, 26 and 31 December, and Great Prayer Day (the 4th Friday after
Easter) until it was abolished from 2024; Saturdays and Sundays are closed too. Easter is the Gregorian
computus, so any year works without anyone updating a table.
"""

from datetime import date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

#: Payment runs and their cut-offs are Copenhagen wall-clock times, CET in winter and CEST in summer.
COPENHAGEN = ZoneInfo("Europe/Copenhagen")

#: Great Prayer Day (store bededag) was abolished by law from 2024.
LAST_GREAT_PRAYER_DAY_YEAR = 2023

_ONE_DAY = timedelta(days=1)


def easter_sunday(year: int) -> date:
    """Easter Sunday by the Gregorian computus (the anonymous algorithm of Meeus, Jones and Butcher)."""
    a = year % 19
    b, c = divmod(year, 100)
    d, e = divmod(b, 4)
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    ell = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * ell) // 451
    month, day = divmod(h + ell - 7 * m + 114, 31)
    return date(year, month, day + 1)


@lru_cache(maxsize=64)
def _closing_days(year: int) -> frozenset[date]:
    """The named closing days of a year, cached: every banking-day question in a run asks about few years."""
    easter = easter_sunday(year)
    days = {
        date(year, 1, 1),  # New Year's Day
        easter - timedelta(days=3),  # Maundy Thursday
        easter - timedelta(days=2),  # Good Friday
        easter + timedelta(days=1),  # Easter Monday
        easter + timedelta(days=39),  # Ascension Day
        easter + timedelta(days=40),  # the Friday after Ascension (banks close, though it is no public holiday)
        easter + timedelta(days=50),  # Whit Monday
        date(year, 6, 5),  # Constitution Day
        date(year, 12, 24),
        date(year, 12, 25),
        date(year, 12, 26),
        date(year, 12, 31),
    }
    if year <= LAST_GREAT_PRAYER_DAY_YEAR:
        days.add(easter + timedelta(days=26))  # Great Prayer Day: Easter Sunday + 5 + 3 weeks
    return frozenset(days)


def closing_days(year: int) -> set[date]:
    """The named closing days of a year, whatever weekday they fall on (weekends are closed anyway)."""
    return set(_closing_days(year))


def is_banking_day(d: date) -> bool:
    """Whether banks are open on d: Monday to Friday and not a closing day."""
    return d.weekday() < 5 and d not in _closing_days(d.year)


def next_banking_day(d: date) -> date:
    """D itself if it is a banking day, else the first banking day after it."""
    while not is_banking_day(d):
        d += _ONE_DAY
    return d


def add_banking_days(d: date, n: int) -> date:
    """The n-th banking day after d, d first moved forward to a banking day (n = 0: next_banking_day(d))."""
    if n < 0:
        # Counting backwards has no use in a payment run yet; refusing it keeps the semantics single.
        raise ValueError("n must be zero or more")
    d = next_banking_day(d)
    for _ in range(n):
        d = next_banking_day(d + _ONE_DAY)
    return d


def last_banking_day_of_month(year: int, month: int) -> date:
    """The last banking day of a month (when salaries are paid)."""
    first_of_next = date(year + month // 12, month % 12 + 1, 1)
    d = first_of_next - _ONE_DAY
    while not is_banking_day(d):
        d -= _ONE_DAY
    return d


def payment_date(now_utc: datetime, cutoff_local: time, lead_banking_days: int) -> date:
    """The earliest banking day on which a payment posted at now_utc can be paid, in Copenhagen time.

    cutoff_local is a naive wall-clock time in Copenhagen. Today counts only if it is a banking day and the
    local time is before the cut-off; the lead days are then added from the first day that counts. The brief's
    default, "12:00 the banking day before", is `payment_date(now, time(12), 1)`. At the cut-off exactly the
    run has closed: a payment promised for a run that has already gone would be paid a day late unnoticed.
    """
    if now_utc.tzinfo is None or now_utc.utcoffset() is None:
        # A naive time could be UTC or local; guessing wrong moves payments by a day around the cut-off.
        raise ValueError("now_utc must be timezone-aware")
    local = now_utc.astimezone(COPENHAGEN)
    today = local.date()
    counts = is_banking_day(today) and local.time() < cutoff_local
    return add_banking_days(today if counts else today + _ONE_DAY, lead_banking_days)
