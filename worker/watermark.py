"""How far each conversation's recent cache may be trimmed once a batch is committed.

The cache must keep every message PostgreSQL does not hold (DESIGN #3), so it is trimmed
only below a contiguous watermark: a seq at and below which every message of the
conversation is stored. conversations.last_seq is not one: it takes the highest seq of
each committed batch (GREATEST), so a batch that a dead worker left pending, reclaimed
and committed later, sits below it unpersisted.

The stream gives one. The send script takes a message's seq and appends its entry in one
step, so within a conversation seq order is stream order; the group delivers a partition
in stream order, and every entry below the lowest pending id was acknowledged, which
happens only after its commit. So the highest seq among a batch's committed rows whose
entries lie below that id (read after the batch's XACK) is such a watermark. Entries
dead-lettered are acknowledged without a row: they leave the cache with the trim and stay,
with their reason, in the dead-letter stream.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence

from redis.asyncio import Redis

from gochat_py.redis.recent import RecentCache
from worker.group import Entry, lowest_pending, parse_id
from worker.persist import Row

# Persisted messages kept per conversation below the watermark: a full history page
# (MAX_PAGE) and the conversation list's last message stay in Redis, and the send script's
# re-seed (the counter lost) still finds the newest seq there.
RECENT_TAIL = 100
# A conversation is trimmed each time its bound passes a multiple of this, not after every
# batch that touches it: a batch of 500 rows over 500 conversations cost 4 µs of worker
# CPU per row trimming each (measured), a fifth of what storing the row costs. The cache
# then holds RECENT_TAIL to RECENT_TAIL + RECENT_TRIM_STEP - 1 stored messages.
RECENT_TRIM_STEP = 50


def watermarks(
    committed: Iterable[tuple[Entry, Row]], lowest: Mapping[int, tuple[int, int] | None]
) -> dict[int, dict[uuid.UUID, int]]:
    """Per partition and conversation, the highest committed seq with nothing unstored
    below it; `lowest` is each partition's lowest pending id, read after the XACK."""
    marks: dict[int, dict[uuid.UUID, int]] = defaultdict(dict)
    for entry, row in committed:
        boundary = lowest[entry.partition]
        if boundary is not None and parse_id(entry.id) >= boundary:
            continue  # an older entry of the partition is still pending: maybe this chat's
        mine = marks[entry.partition]
        mine[row.conversation_id] = max(mine.get(row.conversation_id, 0), row.position)
    return dict(marks)


def trim_bounds(
    committed: Sequence[tuple[Entry, Row]],
    lowest: Mapping[int, tuple[int, int] | None],
    tail: int,
    step: int,
) -> dict[int, dict[uuid.UUID, int]]:
    """Per partition and conversation, the seq to trim up to: the watermark less `tail`,
    rounded down to a multiple of `step`, where this batch moved it past one."""
    firsts: dict[uuid.UUID, int] = {}
    for _, row in committed:
        firsts[row.conversation_id] = min(
            firsts.get(row.conversation_id, row.position), row.position
        )
    bounds: dict[int, dict[uuid.UUID, int]] = {}
    for partition, marks in watermarks(committed, lowest).items():
        for conversation, mark in marks.items():
            bound = (mark - tail) // step * step
            # The bound the conversation's previous batch reached, had it been trimmed then.
            before = (firsts[conversation] - 1 - tail) // step * step
            if bound > max(0, before):
                bounds.setdefault(partition, {})[conversation] = bound
    return bounds


async def trim_recent(
    redis: Redis, cache: RecentCache, committed: Iterable[tuple[Entry, Row]], tail: int, step: int
) -> int:
    """After a batch's COMMIT and XACK: trim the caches of the conversations it moved past a
    step, one script per partition (its keys share one slot). Returns the messages dropped."""
    committed = list(committed)
    # As if nothing were pending: a conversation that moves no bound even then needs no
    # XPENDING (most batches, under a trickle). The pending boundary only lowers bounds.
    hoped = trim_bounds(committed, {entry.partition: None for entry, _ in committed}, tail, step)
    if not hoped:
        return 0
    lowest = {p: await lowest_pending(redis, p) for p in sorted(hoped)}
    candidates = [(entry, row) for entry, row in committed if entry.partition in lowest]
    removed = 0
    for partition, bounds in trim_bounds(candidates, lowest, tail, step).items():
        removed += await cache.trim(partition, bounds)
    return removed
