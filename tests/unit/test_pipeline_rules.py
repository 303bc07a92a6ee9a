import json
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from pydantic import ValidationError

from shared.messages import (
    MAX_PAYLOAD_BYTES,
    ItemRef,
    StepMessage,
    chunked,
    fit_to_queue,
    json_lines,
    payload_size,
    read_json_lines,
    single,
)
from shared.pipeline import Chain, NewItem, _chunked, backoff_seconds


def message(items: int, *, chunk_id: str = "c00000", id_width: int = 6) -> StepMessage:
    return StepMessage(
        automation="sample",
        run_id="sample.20261124T051438-267Z.2d7116",
        step="validate",
        chunk_id=chunk_id,
        bucket=0,
        data="sample/run/intake/c00000.jsonl",
        items=tuple(ItemRef(id=f"{n:0{id_width}d}", line=n) for n in range(items)),
    )


def test_backoff_doubles_from_base_and_is_capped():
    assert [backoff_seconds(a, 30, 3600) for a in range(1, 9)] == [30, 60, 120, 240, 480, 960, 1920, 3600]
    assert backoff_seconds(1, 1, 2) == 1 and backoff_seconds(5, 1, 2) == 2


def test_a_chunk_of_a_few_hundred_fits_in_one_message():
    msg = message(500)
    assert list(fit_to_queue(msg)) == [msg]
    assert payload_size(msg) < MAX_PAYLOAD_BYTES


def test_an_oversized_chunk_is_split_until_every_part_fits_and_nothing_is_lost():
    msg = message(3000, id_width=40)
    assert payload_size(msg) > MAX_PAYLOAD_BYTES
    parts = list(fit_to_queue(msg))
    assert len(parts) > 1
    assert all(payload_size(p) <= MAX_PAYLOAD_BYTES for p in parts)
    # base64 of the largest part stays under the queue's 64 KiB
    assert all(len(p.encode().encode()) * 4 / 3 <= 64 * 1024 for p in parts)
    assert [i for p in parts for i in p.items] == list(msg.items)
    assert len({p.chunk_id for p in parts}) == len(parts)


def test_a_failing_item_leaves_its_chunk_as_a_chunk_of_one():
    msg = message(5)
    retry = single(msg, msg.items[2], attempt=2)
    assert retry.items == (msg.items[2],)
    assert retry.attempt == 2
    assert retry.chunk_id == "c00000~000002"
    assert retry.data == msg.data
    # retrying a chunk of one keeps its id, so each attempt has one history row
    assert single(retry, retry.items[0], attempt=3).chunk_id == retry.chunk_id


def test_chunked_numbers_consecutive_chunks():
    refs = [ItemRef(id=str(n), line=0) for n in range(7)]
    assert [(n, len(c)) for n, c in chunked(refs, 3)] == [(0, 3), (1, 3), (2, 1)]


def test_message_round_trips_and_rejects_garbage_without_echoing_it():
    msg = message(3)
    assert StepMessage.decode(msg.encode().encode()) == msg
    with pytest.raises(ValidationError) as error:
        StepMessage.decode(json.dumps({"automation": "2412581234"}))
    assert "2412581234" not in str(error.value)


def test_queue_names_are_valid_storage_queue_names():
    chain = Chain("vendor_onboarding_unit", ["check_cvr", "create"])
    assert chain.queues == ("vendor-onboarding-unit-check-cvr", "vendor-onboarding-unit-create")
    with pytest.raises(ValueError, match="no step"):
        chain.queue_name("missing")
    del Chain.registry["vendor_onboarding_unit"]


def _items(*groups: str) -> list[NewItem]:
    return [NewItem(data={"n": number, "g": group}) for number, group in enumerate(groups)]


def test_grouped_chunks_hold_one_group_each_flushing_full_ones_first_and_losing_nothing():
    items = _items(*"abababaaacb")
    chunks = list(_chunked(items, 3, group_by=lambda item: item.data["g"]))
    assert [[item.data["g"] for item in chunk] for chunk in chunks] == [
        ["a", "a", "a"],
        ["b", "b", "b"],
        ["a", "a", "a"],
        ["b"],
        ["c"],
    ]
    assert sorted(item.data["n"] for chunk in chunks for item in chunk) == list(range(len(items)))
    assert chunks == list(_chunked(items, 3, group_by=lambda item: item.data["g"])), "the same input, the same chunks"


def test_ungrouped_chunks_keep_the_input_order():
    items = _items(*"abcde")
    assert [len(chunk) for chunk in _chunked(items, 2, group_by=None)] == [2, 2, 1]


def test_a_chain_parks_only_after_one_of_its_steps():
    with pytest.raises(ValueError, match="park"):
        Chain("unit_parked", ["a", "b"], parked_after="c")


def test_chunk_data_lines_hold_any_text_and_write_what_str_writes_for_other_values():
    records = [
        {"tekst": "før\u2028efter", "note": "c\x85d\u2029e", "linjer": "a\r\nb"},  # line ends JSON leaves raw
        {"beloeb": Decimal("1234.50"), "dag": date(2026, 11, 24), "tid": datetime(2026, 11, 24, 5, 0, tzinfo=UTC)},
        {},
    ]
    body = json_lines(records)
    assert body.count(b"\n") == 3 and body.endswith(b"\n")
    back = read_json_lines(body)
    assert back[0] == records[0]
    assert back[1] == {"beloeb": "1234.50", "dag": "2026-11-24", "tid": "2026-11-24 05:00:00+00:00"}
    assert read_json_lines(b"") == []
