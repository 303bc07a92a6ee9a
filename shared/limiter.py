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
from azure.storage.blob import BlobLeaseClient

from shared import storage
from shared.logs import get_logger

LIMITS_CONTAINER = storage.required_container("limits")
LEASE_SECONDS = 60
RENEW_EVERY_SECONDS = 20
_log = get_logger("ks.limiter")


class LimiterBusyError(RuntimeError):
    """Every slot stayed taken for as long as the caller would wait."""


def _take(name: str, slot: int) -> BlobLeaseClient | None:
    blob = storage.container(LIMITS_CONTAINER).get_blob_client(f"{name}/{slot}")
    try:
        return blob.acquire_lease(lease_duration=LEASE_SECONDS)
    except ResourceNotFoundError:
        with suppress(ResourceExistsError):  # another caller made it a moment ago
            blob.upload_blob(b"", overwrite=False)
        return _take(name, slot)
    except HttpResponseError as error:
        if error.status_code == 409:  # leased by someone else
            return None
        raise


def _renew(lease: BlobLeaseClient, name: str, done: threading.Event) -> None:
    """Keeps a slot's lease alive until the call ends."""
    while not done.wait(RENEW_EVERY_SECONDS):
        try:
            lease.renew()
        except HttpResponseError:
            _log.warning("could not renew a %s slot's lease; the limit may be exceeded briefly", name)
            return


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
                done = threading.Event()
                renewer = threading.Thread(target=_renew, args=(lease, name, done), daemon=True)
                renewer.start()
                try:
                    yield
                finally:
                    done.set()
                    renewer.join()
                    try:
                        lease.release()
                    except HttpResponseError:  # expired and taken by another: nothing left to release
                        _log.warning("a %s slot's lease ran out before the call ended", name)
                return
        if time.monotonic() >= deadline:
            raise LimiterBusyError(f"all {slots} {name} slots stayed busy for {max_wait_seconds:.0f} s")
        sleep(delay + random.uniform(0, delay))
        delay = min(delay * 2, 2.0)
