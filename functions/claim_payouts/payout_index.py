"""The payout index: every claim let through in the duplicate window, for the checks that span files.

Two checks need earlier claims, from this file and from every file before it: the payee's total for the day
must stay under the auto-payout limit (so a claim cannot be split across files to slip under it), and a claim
with the payee, amount and reference of an earlier one within the window is a likely duplicate payment.

The index is sharded by payee: `SHARDS` blobs in the `payout-index` container, each a compact list of the
entries of the payees that hash to it. The intake puts only claims of one shard in a chunk, so validating a
chunk reads one shard and writes it back once, with the blob's ETag as the lock: two chunks of the same shard
at the same moment cannot both let a payee pass the limit (the second write fails, reads again and decides
again). An entry is keyed by its item, so a chunk validated again finds its own entries and decides the
same. Entries older than the window are dropped when a shard is written. Payees are pseudonyms (keyed hash),
references and claim ids are hashed: the index holds no personal data.

Claims that pass here and later go to a person (debt, a rejected posting) keep their entry: the payee may
still be paid by hand that day, so the limit counts them (the safe side).
"""

import hashlib
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError

from shared import storage
from shared.personal_data import digest

CONTAINER = storage.required_container("payout-index")
SHARDS = 16
_WRITE_ATTEMPTS = 8
#: Shards read and rewritten at once in this process. A shard grows with the claims of its 90 days and a
#: reservation holds about three copies of it, so the worker's memory would otherwise grow with the volume
#: times its thread count; one reservation is two requests, so two at a time keep up with the steps (at 650
#: claims/s a slot is busy a tenth of the time).
_CONCURRENT_RESERVATIONS = threading.BoundedSemaphore(2)


def shard_of(payee: str) -> int:
    """The shard of a payee's pseudonym."""
    return hashlib.sha256(payee.encode("ascii")).digest()[0] % SHARDS


def fingerprint(text: str) -> str:
    """A short hash of a reference or claim id: enough to compare, nothing to read (spelt in letters, so it
    is never CPR-shaped where it is stored or shown)."""
    return digest(text.strip().upper(), 16)


@dataclass(frozen=True)
class Entry:
    """One claim let through: whose, when, how much, and under which reference."""

    key: str  # run id / item id: the item that owns the entry
    payee: str  # pseudonym
    day: date  # the Danish date of the run that took the claim in
    amount: Decimal
    reference: str  # fingerprint of the claim's reference
    claim: str  # fingerprint of the claim id

    def to_list(self) -> list[str]:
        """The entry as the shard blob stores it."""
        return [self.key, self.payee, self.day.isoformat(), str(self.amount), self.reference, self.claim]

    @classmethod
    def from_list(cls, values: list[str]) -> "Entry":
        """An entry read back from a shard blob."""
        key, payee, day, amount, reference, claim = values
        return cls(key, payee, date.fromisoformat(day), Decimal(amount), reference, claim)


@dataclass(frozen=True)
class Refusal:
    """Why the index holds a claim back: reason code and the Danish text a clerk reads."""

    code: str
    text: str


def decide(
    existing: Sequence[Entry], claims: Sequence[Entry], limit: Decimal, window_days: int
) -> tuple[list[Entry], dict[str, Refusal]]:
    """Pure: the entries to keep (window-pruned, with the claims let through) and the refusals by claim key.

    Claims are decided in order, each against everything before it, so the second of two claims that
    together pass the limit is the one refused, wherever the first came from.
    """
    newest = max((claim.day for claim in claims), default=None)
    horizon = (newest - timedelta(days=window_days)) if newest else None
    kept = [entry for entry in existing if horizon is None or entry.day >= horizon]
    by_key = {entry.key: entry for entry in kept}
    day_totals: dict[tuple[str, date], Decimal] = {}
    seen: dict[tuple[str, Decimal, str], str] = {}
    claim_ids: dict[tuple[str, str], str] = {}
    for entry in kept:
        day_totals[entry.payee, entry.day] = day_totals.get((entry.payee, entry.day), Decimal(0)) + entry.amount
        seen.setdefault((entry.payee, entry.amount, entry.reference), entry.key)
        claim_ids.setdefault((entry.payee, entry.claim), entry.key)
    refusals: dict[str, Refusal] = {}
    for claim in claims:
        if claim.key in by_key:  # decided and let through by an earlier delivery of this chunk
            continue
        if (claim.payee, claim.claim) in claim_ids:
            refusals[claim.key] = Refusal(
                "KRAV_ALLEREDE_MODTAGET", "Et krav med samme krav_id til samme modtager er modtaget før."
            )
            continue
        if (claim.payee, claim.amount, claim.reference) in seen:
            refusals[claim.key] = Refusal(
                "MULIG_DUBLET",
                f"Samme modtager, beløb og reference er udbetalt inden for de seneste {window_days} dage.",
            )
            continue
        total = day_totals.get((claim.payee, claim.day), Decimal(0)) + claim.amount
        if total > limit:
            refusals[claim.key] = Refusal(
                "DAGSGRAENSE_OVERSKREDET",
                f"Modtagerens samlede udbetalinger i dag ville overstige grænsen for automatisk udbetaling "
                f"({limit} kr.) på tværs af filer.",
            )
            continue
        day_totals[claim.payee, claim.day] = total
        seen.setdefault((claim.payee, claim.amount, claim.reference), claim.key)
        claim_ids.setdefault((claim.payee, claim.claim), claim.key)
        kept.append(claim)
        by_key[claim.key] = claim
    return kept, refusals


def _blob_name(shard: int) -> str:
    return f"claim_payouts/shard-{shard:02d}.csv"


def _relevant(body: bytes, payees: set[bytes], horizon: date) -> tuple[list[Entry], int]:
    """The entries of these payees within the window, and where the lines still in the window begin.

    A shard holds every payee of its sixteenth for 90 days (tens of thousands of lines at volume); only the
    chunk's payees are parsed, so a chunk holds the shard's bytes and a handful of entries, not the shard.
    Lines are appended in time order, so the window starts at the first line that is not older than it.
    """
    relevant: list[Entry] = []
    cut, start, first = 0, 0, True
    limit = horizon.isoformat().encode("ascii")
    while start < len(body):
        end = body.find(b"\n", start)
        end = len(body) if end < 0 else end
        fields = body[start:end].split(b",")
        if first and fields[2] < limit:
            cut = end + 1
        else:
            first = False
            if fields[1] in payees and fields[2] >= limit:
                relevant.append(Entry.from_list([value.decode("ascii") for value in fields]))
        start = end + 1
    return relevant, min(cut, len(body))


def _lines(entries: Sequence[Entry]) -> bytes:
    return b"".join((",".join(entry.to_list()) + "\n").encode("ascii") for entry in entries)


def reserve(shard: int, claims: Sequence[Entry], limit: Decimal, window_days: int) -> dict[str, Refusal]:
    """Decides a shard's claims against the index and records those let through, atomically (ETag)."""
    if not claims:
        return {}
    with _CONCURRENT_RESERVATIONS:
        return _reserve(shard, claims, limit, window_days)


def _reserve(shard: int, claims: Sequence[Entry], limit: Decimal, window_days: int) -> dict[str, Refusal]:
    """`reserve` once a reservation slot is free: read, decide, write under the ETag, again on a conflict."""
    blob = storage.container(CONTAINER).get_blob_client(_blob_name(shard))
    payees = {claim.payee.encode("ascii") for claim in claims}
    horizon = max(claim.day for claim in claims) - timedelta(days=window_days)
    for _ in range(_WRITE_ATTEMPTS):
        try:
            download = blob.download_blob()
            etag: str | None = download.properties.etag
            body = download.readall()
        except ResourceNotFoundError:
            etag, body = None, b""
        existing, cut = _relevant(body, payees, horizon)
        kept, refusals = decide(existing, claims, limit, window_days)
        known = {entry.key for entry in existing}
        added = [entry for entry in kept if entry.key not in known]
        if not added and not cut:
            return refusals  # nothing new let through, nothing aged out: no write
        try:
            if etag is None:
                blob.upload_blob(_lines(added), overwrite=False)
            else:
                blob.upload_blob(
                    body[cut:] + _lines(added), overwrite=True, etag=etag, match_condition=MatchConditions.IfNotModified
                )
        except (ResourceModifiedError, ResourceExistsError):
            continue  # another chunk of this shard wrote first: read again and decide again
        return refusals
    raise RuntimeError(f"payout index shard {shard} kept changing; the chunk will be retried")
