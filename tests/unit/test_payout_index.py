"""The payout index's decisions, pure: the daily limit across files, likely duplicates, repeated claim ids."""

from datetime import date, timedelta
from decimal import Decimal

import pytest

from functions.claim_payouts.payout_index import SHARDS, Entry, _lines, _relevant, decide, fingerprint, shard_of

LIMIT, WINDOW = Decimal(50000), 90
TODAY = date(2026, 11, 24)


def entry(key: str, amount: str, *, payee: str = "p1:aaa", day: date = TODAY, ref: str = "R", claim: str = "") -> Entry:
    return Entry(key, payee, day, Decimal(amount), fingerprint(ref), fingerprint(claim or key))


def refused(existing: list[Entry], claims: list[Entry]) -> dict[str, str]:
    _, refusals = decide(existing, claims, LIMIT, WINDOW)
    return {key: refusal.code for key, refusal in refusals.items()}


@pytest.mark.parametrize(
    ("earlier", "claims", "expected"),
    [
        ([], [("a", "30000", "R1"), ("b", "20000", "R2")], {}),  # exactly the limit: allowed
        ([], [("a", "30000", "R1"), ("b", "20000.01", "R2")], {"b": "DAGSGRAENSE_OVERSKREDET"}),
        ([("x", "45000", "R0")], [("a", "5000.01", "R1")], {"a": "DAGSGRAENSE_OVERSKREDET"}),  # split over files
        ([("x", "45000", "R0")], [("a", "5000", "R1")], {}),
        ([("x", "100", "R1")], [("a", "100", "R1")], {"a": "MULIG_DUBLET"}),
        ([("x", "100", "R1")], [("a", "100.01", "R1")], {}),  # another amount: no duplicate
        ([], [("a", "100", "R1"), ("b", "100", "r1 ")], {"b": "MULIG_DUBLET"}),  # reference compared normalised
    ],
)
def test_decisions(earlier, claims, expected):
    existing = [entry(key, amount, ref=ref) for key, amount, ref in earlier]
    assert refused(existing, [entry(key, amount, ref=ref) for key, amount, ref in claims]) == expected


def test_a_refused_claim_does_not_count_toward_the_day_and_the_next_one_may_pass():
    claims = [entry("a", "40000", ref="1"), entry("b", "20000", ref="2"), entry("c", "10000", ref="3")]
    assert refused([], claims) == {"b": "DAGSGRAENSE_OVERSKREDET"}


def test_another_payee_or_another_day_has_its_own_total():
    existing = [entry("x", "50000", ref="0")]
    claims = [entry("a", "50000", payee="p1:bbb", ref="1"), entry("b", "50000", day=TODAY + timedelta(days=1), ref="2")]
    assert refused(existing, claims) == {}


def test_the_same_claim_id_for_the_same_payee_is_refused_even_with_another_reference():
    existing = [entry("x", "100", ref="A", claim="K-1")]
    assert refused(existing, [entry("a", "250", ref="B", claim="k-1")]) == {"a": "KRAV_ALLEREDE_MODTAGET"}


def test_a_chunk_decided_again_finds_its_own_entries_and_decides_the_same():
    claims = [entry("a", "30000", ref="1"), entry("b", "30000", ref="2")]
    kept, first = decide([], claims, LIMIT, WINDOW)
    again_kept, again = decide(kept, claims, LIMIT, WINDOW)
    assert (
        {k: r.code for k, r in first.items()}
        == {k: r.code for k, r in again.items()}
        == {"b": "DAGSGRAENSE_OVERSKREDET"}
    )
    assert again_kept == kept, "nothing recorded twice"


def test_entries_older_than_the_window_are_dropped_and_no_longer_count():
    old = entry("x", "100", ref="R", day=TODAY - timedelta(days=WINDOW + 1))
    edge = entry("y", "200", ref="S", day=TODAY - timedelta(days=WINDOW))
    kept, refusals = decide([old, edge], [entry("a", "100", ref="R"), entry("b", "200", ref="S")], LIMIT, WINDOW)
    assert old not in kept and edge in kept
    assert {k: r.code for k, r in refusals.items()} == {"b": "MULIG_DUBLET"}


def test_entries_round_trip_and_hold_no_personal_data():
    item = Entry("run/i00001", "p1:abc", TODAY, Decimal("12.50"), fingerprint("0101701234"), fingerprint("K1"))
    assert Entry.from_list(item.to_list()) == item
    assert "0101701234" not in "".join(item.to_list())


def test_shards_spread_payees():
    shards = {shard_of(f"p1:{n}") for n in range(1000)}
    assert shards == set(range(SHARDS))


def test_a_shard_is_read_only_for_the_chunks_payees_and_cut_where_the_window_begins():
    old = entry("x", "100", payee="p1:aaa", day=TODAY - timedelta(days=WINDOW + 5))
    kept = [entry("y", "200", payee="p1:aaa"), entry("z", "300", payee="p1:bbb")]
    body = _lines([old, *kept])
    relevant, cut = _relevant(body, {b"p1:aaa"}, TODAY - timedelta(days=WINDOW))
    assert relevant == [kept[0]], "only this chunk's payee, only within the window"
    assert body[cut:] == _lines(kept), "the aged-out line is dropped from the front"
    assert _relevant(b"", {b"p1:aaa"}, TODAY) == ([], 0)
