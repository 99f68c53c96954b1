"""How far the persist worker is behind, read from the streams themselves.

Every API process can answer this without asking a worker: the consumer group's
counters live in Redis. One pipeline per partition (its keys share a hash tag, so the
pipeline stays in one slot), the partitions read concurrently.
"""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from gochat_py import times
from gochat_py.redis import keys


class Backlog(msgspec.Struct, frozen=True, kw_only=True):
    """The streams of every partition, summed."""

    messages_total: int  # entries ever added to the streams: every message sent, by any process
    undelivered: int | None  # added, not yet read by the group; None when Redis cannot tell
    pending: int  # read by a worker, not yet acknowledged (not yet committed)
    # Read and acknowledged: persisted or dead-lettered, ever; None when Redis cannot tell.
    finished: int | None
    oldest_age_s: float | None  # age of the oldest message not yet persisted; None: none
    dead_letters: int  # entries the worker gave up on, waiting in the dead-letter streams
    consumers: int  # workers in the group, across partitions (one worker counts per partition)


class _Partition(msgspec.Struct, frozen=True):
    added: int
    undelivered: int | None
    pending: int
    finished: int | None
    oldest_ms: int | None
    dead: int
    consumers: int


async def read_backlog(redis: Redis, partitions: int) -> Backlog:
    parts = await asyncio.gather(*(_partition(redis, p) for p in range(partitions)))
    undelivered = [p.undelivered for p in parts]
    finished = [p.finished for p in parts]
    oldest = [p.oldest_ms for p in parts if p.oldest_ms is not None]
    return Backlog(
        messages_total=sum(p.added for p in parts),
        undelivered=None if None in undelivered else sum(u or 0 for u in undelivered),
        pending=sum(p.pending for p in parts),
        finished=None if None in finished else sum(f or 0 for f in finished),
        oldest_age_s=max(0.0, (times.now_ms() - min(oldest)) / 1000) if oldest else None,
        dead_letters=sum(p.dead for p in parts),
        consumers=sum(p.consumers for p in parts),
    )


async def _partition(redis: Redis, partition: int) -> _Partition:
    stream = keys.stream(partition)
    async with redis.pipeline(transaction=False) as pipe:
        pipe.xinfo_stream(stream)
        pipe.xinfo_groups(stream)
        pipe.xpending(stream, keys.CONSUMER_GROUP)
        pipe.xlen(keys.dead_letters(partition))
        info, groups, summary, dead = await pipe.execute(raise_on_error=False)
    if isinstance(dead, Exception):
        raise dead
    if isinstance(info, ResponseError):
        # No stream yet: nothing was ever sent on this partition.
        return _Partition(0, 0, 0, 0, None, int(dead), 0)
    if isinstance(info, Exception):
        raise info
    group = _our_group(groups)
    if group is None:
        # No worker ever joined: everything in the stream waits.
        first = info.get("first-entry")
        oldest = _ms(first[0]) if first else None
        added = int(info["entries-added"])
        return _Partition(added, int(info["length"]), 0, 0, oldest, int(dead), 0)
    pending = 0 if isinstance(summary, Exception) else int(summary["pending"])
    lag = group.get("lag")
    undelivered = None if lag is None else int(lag)
    read = group.get("entries-read")
    finished = None if read is None else int(read) - pending
    lowest = summary["min"] if pending else None
    oldest = None if lowest is None else _ms(lowest)
    if oldest is None and undelivered:
        # Nothing pending: the oldest unpersisted is the first entry the group has not read.
        after = await redis.xrange(stream, f"({_text(group['last-delivered-id'])}", "+", count=1)
        first = after[0][0] if after else None
        oldest = None if first is None else _ms(first)
    return _Partition(
        int(info["entries-added"]),
        undelivered,
        pending,
        finished,
        oldest,
        int(dead),
        int(group["consumers"]),
    )


def _our_group(groups: Any) -> dict[str, Any] | None:
    if isinstance(groups, Exception):
        return None
    for group in groups:
        if _text(group["name"]) == keys.CONSUMER_GROUP:
            return dict(group)
    return None


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _ms(entry_id: bytes | str) -> int:
    """The unix-ms part of a stream id: when the entry was added."""
    return int(_text(entry_id).partition("-")[0])
