"""The deliverers' consumer group on the webhook stream: join, read, find what is due for
another attempt, and settle each event (delivered, postponed, or given up on).

The group's pending list is the only state: an event stays pending from its first read
until it is delivered or dead-lettered, whoever holds it and whatever restarts between, so
a deliverer that dies leaves nothing behind that another cannot pick up.
"""

from __future__ import annotations

from collections.abc import Callable, Container, Mapping
from dataclasses import dataclass
from typing import Any

from loguru import logger
from redis.asyncio import Redis
from redis.exceptions import ResponseError
from redis.typing import EncodableT, FieldT, KeyT, StreamIdT

from gochat_py.redis import keys, webhook_queue
from worker.group import READ_BLOCK_MS, parse_id

STREAM, GROUP = keys.WEBHOOK_STREAM, keys.WEBHOOK_GROUP


@dataclass(frozen=True, slots=True)
class Held:
    """One event in this deliverer's hands."""

    id: bytes  # the stream entry's id
    fields: Mapping[bytes, bytes]
    attempts: int  # deliveries by the group, this one included

    @property
    def queued_at(self) -> int:
        """Unix ms when it was queued: the stream id's time part."""
        return parse_id(self.id)[0]

    @property
    def event_id(self) -> str:
        raw = webhook_queue.field(self.fields, webhook_queue.ID_FIELD)
        return raw.decode(errors="replace") if raw else ""

    @property
    def body(self) -> bytes | None:
        return webhook_queue.field(self.fields, webhook_queue.BODY_FIELD)


async def join(redis: Redis) -> None:
    """Create the group (and the stream) unless it exists; from 0, keeping what was queued
    before any deliverer ever ran."""
    try:
        await redis.xgroup_create(STREAM, GROUP, id="0", mkstream=True)
    except ResponseError as exc:
        if not str(exc).startswith("BUSYGROUP"):
            raise
    else:
        logger.bind(stream=STREAM).info("consumer_group_created")


async def read_new(redis: Redis, consumer: str, count: int) -> list[Held]:
    """Up to `count` events never delivered yet, waiting up to READ_BLOCK_MS for the first."""
    streams: dict[KeyT, StreamIdT] = {STREAM: ">"}
    reply = await redis.xreadgroup(GROUP, consumer, streams, count=count, block=READ_BLOCK_MS)
    pairs: Any = reply.items() if isinstance(reply, dict) else (reply or [])
    return [Held(entry_id, fields, 1) for _, items in pairs for entry_id, fields in items]


@dataclass(frozen=True, slots=True)
class Due:
    held: list[Held]
    cursor: str  # where the next scan continues; "-" once the whole pending list was seen


async def claim_due(
    redis: Redis,
    consumer: str,
    cursor: str,
    count: int,
    floor_ms: int,
    delay_ms: Callable[[int], int],
    skip: Container[bytes],
) -> Due:
    """Take over pending events whose next attempt is due: idle (since their last attempt
    ended, or since a dead deliverer took them) for at least `delay_ms(attempts)`.

    Scans `count` entries of the pending list from `cursor`; `floor_ms`, the shortest delay
    there is, keeps events another deliverer is posting right now out of reach, and makes
    the claim atomic: once one deliverer claims an event its idle time is 0 again, so a
    second claim of it fails."""
    pending: Any = await redis.xpending_range(STREAM, GROUP, cursor, "+", count, idle=floor_ms)
    next_cursor = f"({pending[-1]['message_id'].decode()}" if len(pending) == count else "-"
    attempts = {
        row["message_id"]: int(row["times_delivered"])
        for row in pending
        if row["message_id"] not in skip
        and int(row["time_since_delivered"]) >= delay_ms(int(row["times_delivered"]))
    }
    if not attempts:
        return Due([], next_cursor)
    claimed: Any = await redis.xclaim(STREAM, GROUP, consumer, floor_ms, list(attempts))
    held = [
        Held(entry_id, fields, attempts[entry_id] + 1)
        for entry_id, fields in claimed
        if fields is not None and entry_id in attempts
    ]
    return Due(held, next_cursor)


async def delivered(redis: Redis, held: Held) -> None:
    """Acknowledge and drop it: nobody reads a delivered event again."""
    async with redis.pipeline(transaction=True) as pipe:
        pipe.xack(STREAM, GROUP, held.id)
        pipe.xdel(STREAM, held.id)
        await pipe.execute()


async def postpone(redis: Redis, consumer: str, held: Held) -> None:
    """Restart its idle time, so the retry delay counts from the end of this attempt.

    JUSTID leaves the delivery count, which counts attempts, alone."""
    await redis.xclaim(STREAM, GROUP, consumer, 0, [held.id], justid=True)


async def give_up(redis: Redis, held: Held, error: str) -> None:
    """Move it to the dead-letter stream with the last error, in one MULTI (one hash tag):
    it is dead-lettered if and only if it leaves the pending list."""
    fields: dict[FieldT, EncodableT] = {
        **dict[FieldT, EncodableT](held.fields.items()),
        webhook_queue.DEAD_ERROR: error,
        webhook_queue.DEAD_ATTEMPTS: held.attempts,
        webhook_queue.DEAD_SOURCE_ID: held.id,
    }
    async with redis.pipeline(transaction=True) as pipe:
        pipe.xadd(keys.WEBHOOK_DEAD, fields, maxlen=webhook_queue.DEAD_MAX, approximate=True)
        pipe.xack(STREAM, GROUP, held.id)
        pipe.xdel(STREAM, held.id)
        await pipe.execute()


async def pending_count(redis: Redis) -> int:
    summary = await redis.xpending(STREAM, GROUP)
    return int(summary["pending"])


async def leave(redis: Redis, consumer: str) -> None:
    """Leave the group if holding nothing: DELCONSUMER would drop what it still holds."""
    held = await redis.xpending_range(STREAM, GROUP, "-", "+", 1, consumername=consumer)
    if not held:
        await redis.xgroup_delconsumer(STREAM, GROUP, consumer)
