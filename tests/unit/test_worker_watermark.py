"""The trim watermark: committed rows count only below the lowest pending stream id."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from gochat_py.settings import load_settings
from worker.consumer import ConsumerConfig
from worker.group import Entry
from worker.persist import Row
from worker.watermark import trim_bounds, watermarks

CHAT_A, CHAT_B = uuid.uuid4(), uuid.uuid4()


def committed(
    partition: int, entry_id: bytes, conversation: uuid.UUID, seq: int
) -> tuple[Entry, Row]:
    row = Row(uuid.uuid4(), conversation, seq, uuid.uuid4(), "text", "x", None, datetime.now(UTC))
    return Entry(partition, entry_id, {}, 1), row


def test_with_nothing_pending_each_conversation_is_stored_up_to_its_highest_committed_seq() -> None:
    batch = [
        committed(0, b"1-0", CHAT_A, 1),
        committed(0, b"2-0", CHAT_B, 7),
        committed(0, b"3-0", CHAT_A, 2),
    ]
    assert watermarks(batch, {0: None}) == {0: {CHAT_A: 2, CHAT_B: 7}}


def test_rows_at_or_above_the_lowest_pending_id_do_not_count() -> None:
    # Entry 2-0 (maybe CHAT_A's seq 2) is pending with another worker: CHAT_A is known
    # stored up to seq 1 only, whatever this batch committed above it.
    batch = [
        committed(0, b"1-0", CHAT_A, 1),
        committed(0, b"3-0", CHAT_A, 3),
        committed(0, b"4-0", CHAT_B, 9),
    ]
    assert watermarks(batch, {0: (2, 0)}) == {0: {CHAT_A: 1}}


def test_stream_ids_compare_as_numbers_not_text() -> None:
    batch = [committed(0, b"10-0", CHAT_A, 5)]
    assert watermarks(batch, {0: (9, 5)}) == {}
    assert watermarks(batch, {0: (10, 1)}) == {0: {CHAT_A: 5}}


def test_each_partition_has_its_own_boundary() -> None:
    batch = [committed(0, b"5-0", CHAT_A, 4), committed(1, b"5-0", CHAT_B, 6)]
    assert watermarks(batch, {0: (1, 0), 1: None}) == {1: {CHAT_B: 6}}


def test_a_conversation_is_trimmed_when_its_bound_passes_a_step() -> None:
    # tail 10, step 50: seq 60 moves the bound from 0 to 50; seq 61..109 do not move it.
    assert trim_bounds([committed(0, b"1-0", CHAT_A, 60)], {0: None}, 10, 50) == {0: {CHAT_A: 50}}
    assert trim_bounds([committed(0, b"1-0", CHAT_A, 61)], {0: None}, 10, 50) == {}
    assert trim_bounds([committed(0, b"1-0", CHAT_A, 109)], {0: None}, 10, 50) == {}
    assert trim_bounds([committed(0, b"1-0", CHAT_A, 110)], {0: None}, 10, 50) == {0: {CHAT_A: 100}}


def test_a_batch_that_spans_a_step_trims_to_the_highest_step_below_its_watermark() -> None:
    batch = [committed(0, f"{s}-0".encode(), CHAT_A, s) for s in range(1, 400)]
    assert trim_bounds(batch, {0: None}, 100, 50) == {0: {CHAT_A: 250}}


def test_no_bound_reaches_a_pending_entry() -> None:
    batch = [committed(0, b"1-0", CHAT_A, 160), committed(0, b"3-0", CHAT_A, 161)]
    assert trim_bounds(batch, {0: (2, 0)}, 10, 50) == {0: {CHAT_A: 150}}
    assert trim_bounds(batch, {0: (1, 0)}, 10, 50) == {}


@pytest.mark.parametrize("cap", ["1", "2", "3", "149", "150", "100000"])
def test_a_caught_up_conversation_always_keeps_fewer_than_recent_cache_max(cap: str) -> None:
    settings = load_settings({"ENV": "test", "RECENT_CACHE_MAX": cap})
    config = ConsumerConfig.from_settings(settings)
    assert config.recent_tail + config.recent_trim_step - 1 < settings.recent_cache_max
    assert config.recent_trim_step >= 1
