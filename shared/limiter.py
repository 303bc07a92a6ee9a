"""A concurrency limit that holds across every instance of the app: blob leases as slots.

The Flex Consumption plan runs as many instances as the queues ask for, and each runs several invocations at
once, so a per-process semaphore limits nothing. A call to a fragile external system (CVR, Kvantum) first
takes one of `slots` leases on blobs `limits/<name>/<n>`, holds it for the call and releases it after. A lease
lasts 60 s and is renewed every 20 s while the call runs (a call with retries can take minutes); a crashed
holder stops renewing, and its lease simply runs out. When every slot is taken the caller waits, briefly and
with jitter, then gives up with `LimiterBusyError`, which the pipeline treats as a technical failure: the item
is retried later, not lost.
"""

import random
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress

from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.storage.blob import BlobClient, BlobLeaseClient

from shared import storage
from shared.logs import get_logger

LIMITS_CONTAINER = storage.required_container("limits")
LEASE_SECONDS = 60
RENEW_EVERY_SECONDS = 20
_log = get_logger("ks.limiter")


class LimiterBusyError(RuntimeError):
    """Every slot stayed taken for as long as the caller would wait."""


def try_lease(blob: BlobClient, seconds: int) -> BlobLeaseClient | None:
    """A lease on the blob, or None while someone else holds one (409); other errors are raised."""
    try:
        return blob.acquire_lease(lease_duration=seconds)
    except HttpResponseError as error:
        if error.status_code == 409:
            return None
        raise


def _take(name: str, slot: int) -> BlobLeaseClient | None:
    blob = storage.container(LIMITS_CONTAINER).get_blob_client(f"{name}/{slot}")
    try:
        return try_lease(blob, LEASE_SECONDS)
    except ResourceNotFoundError:
        with suppress(ResourceExistsError):  # another caller made it a moment ago
            blob.upload_blob(b"", overwrite=False)
        return _take(name, slot)


def _renew(lease: BlobLeaseClient, what: str, every: float, done: threading.Event) -> None:
    """Keeps a lease alive until the block that holds it ends."""
    while not done.wait(every):
        try:
            lease.renew()
        except HttpResponseError:
            _log.warning("could not renew the lease of %s; another may take it", what)
            return


@contextmanager
def held(lease: BlobLeaseClient, what: str, *, every: float | None = None) -> Iterator[BlobLeaseClient]:
    """Holds an acquired lease for the block: renewed every `every` seconds (`RENEW_EVERY_SECONDS` as it is at
    the call), released after. A lease that ran out and was taken meanwhile is only logged, so the block's own
    outcome (or exception) stands."""
    done = threading.Event()
    every = RENEW_EVERY_SECONDS if every is None else every
    renewer = threading.Thread(target=_renew, args=(lease, what, every, done), daemon=True)
    renewer.start()
    try:
        yield lease
    finally:
        done.set()
        renewer.join()
        try:
            lease.release()
        except HttpResponseError:  # expired and taken by another: nothing left to release
            _log.warning("the lease of %s ran out before the work ended", what)


@contextmanager
def limited(
    name: str, slots: int, *, max_wait_seconds: float = 20.0, sleep: Callable[[float], None] = time.sleep
) -> Iterator[None]:
    """Runs the block holding one of `slots` app-wide slots for `name`."""
    deadline = time.monotonic() + max_wait_seconds
    delay = 0.05
    while True:
        order = list(range(slots))
        random.shuffle(order)
        for slot in order:
            lease = _take(name, slot)
            if lease is not None:
                with held(lease, f"a {name} slot"):
                    yield
                return
        if time.monotonic() >= deadline:
            raise LimiterBusyError(f"all {slots} {name} slots stayed busy for {max_wait_seconds:.0f} s")
        sleep(delay + random.uniform(0, delay))
        delay = min(delay * 2, 2.0)
