from __future__ import annotations

import asyncio
import os
import socket

from redis.asyncio import Redis

from gochat_py.redis import keys
from tests.harness import poll_until
from worker.group import (
    DeadLetter,
    Entry,
    claim_idle,
    consumer_name,
    join,
    keep_claimed,
    leave,
    read_new,
    settle,
    trim_acknowledged,
)

STREAM = keys.stream(0)
GROUP = keys.CONSUMER_GROUP


async def add(redis: Redis, count: int, partition: int = 0) -> list[bytes]:
    return [await redis.xadd(keys.stream(partition), {"m": f"entry {i}"}) for i in range(count)]


async def remaining(redis: Redis) -> list[bytes]:
    return [entry_id for entry_id, _ in await redis.xrange(STREAM)]


async def ack_after_yielding(redis: Redis, yields: int, *ids: bytes) -> None:
    for _ in range(yields):
        await asyncio.sleep(0)
    await redis.xack(STREAM, GROUP, *ids)


async def idle_for(redis: Redis, consumer: str, millis: int) -> bool:
    held = await redis.xpending_range(STREAM, GROUP, "-", "+", 100, consumername=consumer)
    return bool(held) and all(h["time_since_delivered"] >= millis for h in held)


async def test_joining_twice_makes_one_group_per_partition_that_reads_from_the_start(
    redis: Redis,
) -> None:
    (early,) = await add(redis, 1, partition=1)  # written before any worker ran

    await join(redis, 3)
    await join(redis, 3)

    for partition in range(3):
        groups = await redis.xinfo_groups(keys.stream(partition))
        assert [g["name"] for g in groups] == [GROUP.encode()]
    entries = await read_new(redis, "c1", 3, 10)
    assert [(e.partition, e.id, e.deliveries) for e in entries] == [(1, early, 1)]


def test_consumer_names_are_unique_per_process_and_say_where_it_runs() -> None:
    first, second = consumer_name(), consumer_name()

    assert first != second
    assert first.startswith(f"{socket.gethostname()}-{os.getpid()}-")


async def test_a_read_takes_new_entries_from_every_partition(redis: Redis) -> None:
    await join(redis, 2)
    zero = await add(redis, 2, partition=0)
    one = await add(redis, 3, partition=1)

    entries = await read_new(redis, "c1", 2, 10)

    assert sorted((e.partition, e.id) for e in entries) == sorted(
        [(0, i) for i in zero] + [(1, i) for i in one]
    )
    assert {e.stream for e in entries} == {keys.stream(0), keys.stream(1)}
    assert entries[0].fields == {b"m": b"entry 0"}


async def test_trim_keeps_everything_from_the_oldest_unacknowledged_entry(redis: Redis) -> None:
    await join(redis, 1)
    ids = await add(redis, 10)
    await read_new(redis, "c1", 1, 6)  # entries 0-5 delivered, 6-9 unread
    await redis.xack(STREAM, GROUP, ids[0], ids[1], ids[3], ids[4])  # 2 and 5 still pending

    removed = await trim_acknowledged(redis, 0)

    assert removed == 2
    assert await remaining(redis) == ids[2:]


async def test_trim_with_nothing_pending_stops_at_the_last_delivered_entry(redis: Redis) -> None:
    await join(redis, 1)
    ids = await add(redis, 10)
    await read_new(redis, "c1", 1, 6)
    await redis.xack(STREAM, GROUP, *ids[:6])

    removed = await trim_acknowledged(redis, 0)

    assert removed == 6
    assert await remaining(redis) == ids[6:]  # never read: kept


async def test_trim_removes_nothing_before_the_group_has_read_anything(redis: Redis) -> None:
    ids = await add(redis, 5)
    assert await trim_acknowledged(redis, 0) == 0  # no group at all yet
    await join(redis, 1)

    assert await trim_acknowledged(redis, 0) == 0
    assert await remaining(redis) == ids


async def test_trim_respects_every_group_on_the_stream(redis: Redis) -> None:
    await join(redis, 1)
    ids = await add(redis, 4)
    await redis.xgroup_create(STREAM, "audit", id="0")
    await read_new(redis, "c1", 1, 4)
    await redis.xack(STREAM, GROUP, *ids)

    assert await trim_acknowledged(redis, 0) == 0
    assert await remaining(redis) == ids


async def test_trim_racing_the_ack_of_the_last_pending_entry_neither_fails_nor_overtrims(
    redis: Redis,
) -> None:
    await join(redis, 1)
    for attempt in range(20):
        (entry_id,) = await add(redis, 1)
        await read_new(redis, "c1", 1, 1)

        # Some of these XACKs land between the trim's XINFO and its XPENDING.
        await asyncio.gather(
            trim_acknowledged(redis, 0), ack_after_yielding(redis, attempt % 4, entry_id)
        )
        assert await remaining(redis) in ([], [entry_id])

    await trim_acknowledged(redis, 0)
    assert await remaining(redis) == []


async def test_claim_takes_idle_entries_of_a_dead_consumer_and_counts_the_delivery(
    redis: Redis,
) -> None:
    await join(redis, 1)
    ids = await add(redis, 3)
    await read_new(redis, "dead", 1, 3)
    await poll_until(lambda: idle_for(redis, "dead", 50), what="entries to go idle")

    claimed = await claim_idle(redis, 0, "alive", 50, 10, b"0-0")

    assert [(e.id, e.deliveries) for e in claimed.entries] == [(i, 2) for i in ids]
    assert claimed.cursor == b"0-0"
    owners = await redis.xpending_range(STREAM, GROUP, "-", "+", 10)
    assert {o["consumer"] for o in owners} == {b"alive"}


async def test_claim_leaves_entries_that_are_not_idle_long_enough(redis: Redis) -> None:
    await join(redis, 1)
    await add(redis, 2)
    await read_new(redis, "busy", 1, 2)

    claimed = await claim_idle(redis, 0, "alive", 60_000, 10, b"0-0")

    assert claimed.entries == []


async def test_keeping_entries_claimed_resets_their_idle_time_without_a_delivery(
    redis: Redis,
) -> None:
    await join(redis, 1)
    await add(redis, 2)
    held = await read_new(redis, "slow", 1, 2)
    await poll_until(lambda: idle_for(redis, "slow", 200), what="entries to go idle")

    await keep_claimed(redis, "slow", held)

    assert (await claim_idle(redis, 0, "other", 200, 10, b"0-0")).entries == []
    details = await redis.xpending_range(STREAM, GROUP, "-", "+", 10)
    assert [(d["consumer"], d["times_delivered"]) for d in details] == [(b"slow", 1)] * 2


async def test_settle_acks_what_is_done_and_files_dead_letters_with_their_source(
    redis: Redis,
) -> None:
    await join(redis, 1)
    ids = await add(redis, 3)
    first, second, _ = await read_new(redis, "c1", 1, 3)
    poison = Entry(second.partition, second.id, second.fields, deliveries=4)

    await settle(redis, [first], [DeadLetter(poison, "undecodable: nope", "undecodable")])

    still = await redis.xpending_range(STREAM, GROUP, "-", "+", 10)
    assert [s["message_id"] for s in still] == [ids[2]]
    ((_, letter),) = await redis.xrange(keys.dead_letters(0))
    assert letter == {
        b"m": b"entry 1",
        b"reason": b"undecodable: nope",
        b"source_stream": STREAM.encode(),
        b"source_id": ids[1],
        b"deliveries": b"4",
    }


async def test_leaving_removes_the_consumer_only_when_it_holds_nothing(redis: Redis) -> None:
    await join(redis, 1)
    await add(redis, 1)
    await read_new(redis, "holder", 1, 1)
    await redis.xgroup_createconsumer(STREAM, GROUP, "idle")

    await leave(redis, 1, "holder")
    await leave(redis, 1, "idle")

    consumers = await redis.xinfo_consumers(STREAM, GROUP)
    assert [c["name"] for c in consumers] == [b"holder"]
