"""The consumer group on the message streams: join, read, claim, settle, trim, leave.

Replies are bytes (the client is made with decode_responses=False): a payload that is not
UTF-8 must reach the dead-letter stream, not break the read of the whole batch.
"""

from __future__ import annotations

import os
import secrets
import socket
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from loguru import logger
from redis.asyncio import Redis
from redis.exceptions import ResponseError
from redis.typing import EncodableT, FieldT, KeyT, StreamIdT

from gochat_py.redis import keys, stream_entries

READ_BLOCK_MS = 1000  # wake at least once a second to notice a stop and run periodic work


@dataclass(frozen=True, slots=True)
class Entry:
    """One stream entry as delivered to this consumer."""

    partition: int
    id: bytes
    fields: Mapping[bytes, bytes]
    deliveries: int  # times the group has delivered it, this delivery included

    @property
    def stream(self) -> str:
        return keys.stream(self.partition)


@dataclass(frozen=True, slots=True)
class DeadLetter:
    entry: Entry
    reason: str  # for people: what was wrong, enough to repair and replay the entry
    kind: str  # for metrics: undecodable, rejected, seq_taken, max_deliveries


def consumer_name() -> str:
    """Unique per process: a restarted worker must not inherit a dead one's pending entries."""
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(4)}"


async def join(redis: Redis, partitions: int) -> None:
    """Create the group on every partition stream (and the stream itself) unless it exists."""
    for partition in range(partitions):
        try:
            # From 0, not $: entries written before the first worker ever started are kept.
            await redis.xgroup_create(
                keys.stream(partition), keys.CONSUMER_GROUP, id="0", mkstream=True
            )
        except ResponseError as exc:
            if not str(exc).startswith("BUSYGROUP"):
                raise
        else:
            logger.bind(stream=keys.stream(partition)).info("consumer_group_created")


def is_missing_group(error: ResponseError) -> bool:
    """The group or its stream is gone (Redis restarted without its data): join again."""
    text = str(error)
    return text.startswith("NOGROUP") or "no such key" in text


async def read_new(
    redis: Redis, consumer: str, partitions: int, count: int, wait: bool = True
) -> list[Entry]:
    """Up to `count` new entries per partition; if `wait`, up to READ_BLOCK_MS for the first."""
    streams: dict[KeyT, StreamIdT] = {keys.stream(p): ">" for p in range(partitions)}
    reply = await redis.xreadgroup(
        keys.CONSUMER_GROUP, consumer, streams, count=count, block=READ_BLOCK_MS if wait else None
    )
    if not reply:
        return []
    by_name = {keys.stream(p).encode(): p for p in range(partitions)}
    pairs: Iterable[Any] = reply.items() if isinstance(reply, dict) else reply
    return [
        Entry(by_name[_as_bytes(name)], entry_id, fields, deliveries=1)
        for name, items in pairs
        for entry_id, fields in items
    ]


@dataclass(frozen=True, slots=True)
class Claimed:
    entries: list[Entry]
    cursor: bytes  # where the next claim continues; b"0-0" once the whole PEL was scanned
    vanished: list[bytes]  # pending ids whose entry was gone from the stream


async def claim_idle(
    redis: Redis, partition: int, consumer: str, min_idle_ms: int, count: int, cursor: bytes
) -> Claimed:
    """Take over entries another consumer left pending for longer than `min_idle_ms`."""
    stream = keys.stream(partition)
    reply = await redis.xautoclaim(
        stream, keys.CONSUMER_GROUP, consumer, min_idle_ms, start_id=cursor, count=count
    )
    next_cursor, items = reply[0], reply[1]
    vanished = list(reply[2]) if len(reply) > 2 else []
    items = [(entry_id, fields) for entry_id, fields in items if entry_id is not None]
    if not items:
        return Claimed([], next_cursor, vanished)
    # XAUTOCLAIM does not report delivery counts. This consumer holds nothing else while it
    # reclaims, so its pending entries between the first and last id are exactly these.
    details = await redis.xpending_range(
        stream, keys.CONSUMER_GROUP, items[0][0], items[-1][0], len(items), consumername=consumer
    )
    deliveries = {d["message_id"]: int(d["times_delivered"]) for d in details}
    entries = [
        Entry(partition, entry_id, fields, deliveries.get(entry_id, 1))
        for entry_id, fields in items
    ]
    return Claimed(entries, next_cursor, vanished)


async def keep_claimed(redis: Redis, consumer: str, entries: Sequence[Entry]) -> None:
    """Reset the idle time of entries still in hand so no other worker reclaims them.

    JUSTID leaves the delivery count alone: a long PostgreSQL outage must not push good
    entries past WORKER_MAX_DELIVERIES.
    """
    async with redis.pipeline(transaction=False) as pipe:
        for partition, ids in _ids_by_partition(entries).items():
            pipe.xclaim(keys.stream(partition), keys.CONSUMER_GROUP, consumer, 0, ids, justid=True)
        await pipe.execute()


async def settle(redis: Redis, done: Sequence[Entry], dead: Sequence[DeadLetter]) -> None:
    """Acknowledge `done`, and move `dead` to the dead-letter stream, acknowledging them too.

    One MULTI per partition (its keys share a hash tag): a dead letter is written if and
    only if its entry is acknowledged, so a crash here never files it twice or loses it.
    """
    by_partition: dict[int, tuple[list[Entry], list[DeadLetter]]] = defaultdict(lambda: ([], []))
    for entry in done:
        by_partition[entry.partition][0].append(entry)
    for letter in dead:
        by_partition[letter.entry.partition][1].append(letter)
    for partition, (acked, letters) in by_partition.items():
        async with redis.pipeline(transaction=bool(letters)) as pipe:
            for letter in letters:
                pipe.xadd(keys.dead_letters(partition), _dead_letter_fields(letter))
            ids = [e.id for e in acked] + [d.entry.id for d in letters]
            pipe.xack(keys.stream(partition), keys.CONSUMER_GROUP, *ids)
            await pipe.execute()


def _dead_letter_fields(letter: DeadLetter) -> dict[FieldT, EncodableT]:
    entry = letter.entry
    return {
        stream_entries.PAYLOAD_FIELD: stream_entries.payload(entry.fields) or b"",
        stream_entries.DEAD_REASON: letter.reason,
        stream_entries.DEAD_SOURCE_STREAM: entry.stream,
        stream_entries.DEAD_SOURCE_ID: entry.id,
        stream_entries.DEAD_DELIVERIES: entry.deliveries,
    }


async def pending_count(redis: Redis, partition: int) -> int:
    summary = await redis.xpending(keys.stream(partition), keys.CONSUMER_GROUP)
    return int(summary["pending"])


async def lowest_pending(redis: Redis, partition: int) -> tuple[int, int] | None:
    """The lowest id pending in the consumer group, None if nothing is. Every entry below
    it was delivered (the group reads in order) and acknowledged (it is not pending), and
    an acknowledged entry never becomes pending again: the boundary only moves up."""
    summary = await redis.xpending(keys.stream(partition), keys.CONSUMER_GROUP)
    lowest = summary["min"] if int(summary["pending"]) > 0 else None
    return None if lowest is None else parse_id(lowest)


async def trim_acknowledged(redis: Redis, partition: int) -> int:
    """Drop the entries every group on the stream has read and acknowledged.

    The boundary is the lowest id still pending in any group or, where nothing is pending,
    the id after the group's last delivered one: everything below it was acknowledged, and
    nothing unread or unacknowledged is ever below it. Returns the entries removed.
    """
    stream = keys.stream(partition)
    groups = await redis.xinfo_groups(stream)
    if not groups:
        return 0  # no group yet: nobody has persisted anything, keep it all
    boundaries: list[tuple[int, int]] = []
    for group in groups:
        lowest: bytes | None = None
        if int(group["pending"]) > 0:
            # None if the consumer acknowledged the last pending entry since XINFO counted it.
            lowest = (await redis.xpending(stream, group["name"]))["min"]
        if lowest is not None:
            boundaries.append(parse_id(lowest))
        else:
            # Nothing pending now, so all delivered up to XINFO's last id was acknowledged.
            ms, seq = parse_id(group["last-delivered-id"])
            boundaries.append((ms, seq + 1))
    ms, seq = min(boundaries)
    # Exact, not `~`: the test of this rule is that nothing past the boundary goes.
    removed = int(await redis.xtrim(stream, minid=f"{ms}-{seq}", approximate=False))
    return removed


async def leave(redis: Redis, partitions: int, consumer: str) -> None:
    """Remove this consumer from the group where it holds nothing.

    Never with entries pending: XGROUP DELCONSUMER drops them from the group's pending
    list, and nobody could reclaim them.
    """
    for partition in range(partitions):
        stream = keys.stream(partition)
        held = await redis.xpending_range(
            stream, keys.CONSUMER_GROUP, "-", "+", 1, consumername=consumer
        )
        if not held:
            await redis.xgroup_delconsumer(stream, keys.CONSUMER_GROUP, consumer)


def _ids_by_partition(entries: Iterable[Entry]) -> dict[int, list[StreamIdT]]:
    ids: dict[int, list[StreamIdT]] = defaultdict(list)
    for entry in entries:
        ids[entry.partition].append(entry.id)
    return ids


def parse_id(entry_id: bytes | str) -> tuple[int, int]:
    """A stream id as (milliseconds, sequence), which compares in stream order."""
    ms, _, seq = _as_bytes(entry_id).partition(b"-")
    return int(ms), int(seq or 0)


def _as_bytes(value: bytes | str) -> bytes:
    return value if isinstance(value, bytes) else value.encode()
