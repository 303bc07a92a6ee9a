"""The step message: one queue message carries a chunk of items of one run to one step."""

from collections.abc import Iterator, Sequence
from typing import Any

import orjson
from pydantic import Field

from shared.models import BoundaryModel

#: A queue message may be 64 KiB after base64, which leaves 48 KiB of payload.
MAX_PAYLOAD_BYTES = 48 * 1024


class ItemRef(BoundaryModel):
    """An item of a run and where its data is: line `line` of the chunk's data blob."""

    id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._~-]+$")
    line: int = Field(ge=0)


class StepMessage(BoundaryModel):
    """Work for one step: a chunk of items (one item is a chunk of one) and a reference to their data."""

    automation: str
    run_id: str
    step: str
    attempt: int = Field(default=1, ge=1)
    retries: int = Field(default=0, ge=0, description="Retries the items needed at earlier steps.")
    config_version: str = Field(default="", description="The rules version the run is decided under.")
    chunk_id: str
    bucket: int = Field(ge=0)
    data: str = Field(description="Blob (in the work container) holding the chunk's items as JSON lines.")
    items: tuple[ItemRef, ...] = Field(min_length=1)

    def encode(self) -> str:
        """Compact JSON for the queue (the queue client adds the base64 the host expects)."""
        return self.model_dump_json()

    @classmethod
    def decode(cls, body: bytes | str) -> "StepMessage":
        """Parses a message body; a body that is not a step message raises a ValidationError."""
        return cls.model_validate_json(body)


def payload_size(message: StepMessage) -> int:
    """Size of the message's payload in bytes, before base64."""
    return len(message.encode().encode("utf-8"))


def fit_to_queue(message: StepMessage) -> Iterator[StepMessage]:
    """The message, split in halves until each part's payload fits under the queue's limit."""
    if payload_size(message) <= MAX_PAYLOAD_BYTES:
        yield message
        return
    if len(message.items) == 1:
        raise ValueError(f"one item's message exceeds {MAX_PAYLOAD_BYTES} bytes: {message.items[0].id}")
    half = len(message.items) // 2
    for suffix, part in (("a", message.items[:half]), ("b", message.items[half:])):
        yield from fit_to_queue(message.model_copy(update={"chunk_id": f"{message.chunk_id}{suffix}", "items": part}))


def single(message: StepMessage, item: ItemRef, attempt: int) -> StepMessage:
    """A chunk of one: how a failing item leaves its chunk to be retried on its own."""
    chunk_id = message.chunk_id if len(message.items) == 1 else f"{message.chunk_id}~{item.id}"
    return message.model_copy(update={"chunk_id": chunk_id, "items": (item,), "attempt": attempt})


def chunked(items: Sequence[ItemRef], size: int) -> Iterator[tuple[int, Sequence[ItemRef]]]:
    """Consecutive chunks of at most `size` items, numbered from 0."""
    for number, start in enumerate(range(0, len(items), size)):
        yield number, items[start : start + size]


# Anything JSON has no type for (Decimal, datetime, date) is written as str() writes it.
_LINE_OPTIONS = (
    orjson.OPT_APPEND_NEWLINE
    | orjson.OPT_NON_STR_KEYS
    | orjson.OPT_PASSTHROUGH_DATETIME
    | orjson.OPT_PASSTHROUGH_DATACLASS
)


def json_lines(records: Iterator[dict[str, Any]] | Sequence[dict[str, Any]]) -> bytes:
    """Items' data as JSON lines in UTF-8 (the format of chunk data blobs), one record per line. Records hold
    strings, numbers, Decimals and dates; an integer beyond 64 bits is refused (TypeError) and a float NaN is
    written as null, where `json` wrote both."""
    return b"".join(orjson.dumps(record, default=str, option=_LINE_OPTIONS) for record in records)


def read_json_lines(body: bytes) -> list[dict[str, Any]]:
    """The records of a chunk data blob. Lines end at a newline only: a value may hold U+2028 or U+0085, which
    JSON leaves unescaped and `str.splitlines` would take for line ends."""
    return [orjson.loads(line) for line in body.split(b"\n") if line]
