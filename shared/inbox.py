"""Inboxes: containers whose new blobs start runs, and the pick-up of a blob whose event never came.

Event Grid delivers at least once, but an event can still be lost (a subscription created after the upload, a
dead-lettered delivery). A blob that has sat in an inbox for longer than a grace period without a run is handed
by the sweeper to the `inbox_pickup` function, which opens it exactly as the blob trigger would have: the run
key is the blob's name and ETag, so a late original event and the pick-up open one run between them.
"""

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import ClassVar

from azure.storage.blob import BlobClient

from shared import ledger, storage
from shared.models import BoundaryModel

PICKUP_QUEUE = "inbox-pickup"


def bare_etag(etag: str) -> str:
    """An ETag without its quotes: blob listings give it bare, blob properties quoted."""
    return etag.strip('"')


def run_key(name: str, etag: str) -> str:
    """The run key of a blob at one version: the same file delivered twice is one run."""
    return f"{name}@{bare_etag(etag)}"


class PickupMessage(BoundaryModel):
    """A blob the sweeper found without a run."""

    automation: str
    container: str
    name: str
    etag: str


@dataclass(frozen=True)
class Inbox:
    """An automation's inbox container and the function that opens a run from one of its blobs."""

    registry: ClassVar[dict[str, "Inbox"]] = {}  # by container: an automation may have several inboxes

    automation: str
    container: str
    open_blob: Callable[[BlobClient], object]

    def __post_init__(self) -> None:
        Inbox.registry[self.container] = self

    def orphans(self, now: datetime, grace: timedelta, lookback: timedelta) -> Iterator[PickupMessage]:
        """Blobs modified between `lookback` and `grace` ago that no run has claimed."""
        for blob in storage.container(self.container).list_blobs():
            modified = blob.last_modified
            if not now - lookback <= modified <= now - grace:
                continue
            owner = ledger.source_run_id(self.automation, run_key(blob.name, blob.etag))
            # Claimed by an intake that died before creating its run counts as no run: opening it finishes it.
            if owner is None or ledger.get_run(owner) is None:
                yield PickupMessage(
                    automation=self.automation, container=self.container, name=blob.name, etag=blob.etag
                )


def inbox(
    automation: str, container: str
) -> Callable[[Callable[[BlobClient], object]], Callable[[BlobClient], object]]:
    """Registers a function as the opener of an automation's inbox blobs (used by its trigger and the pick-up)."""

    def register(open_blob: Callable[[BlobClient], object]) -> Callable[[BlobClient], object]:
        Inbox(automation, container, open_blob)
        return open_blob

    return register
