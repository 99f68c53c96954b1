from __future__ import annotations

import shutil
from collections.abc import Iterator
from typing import Any

import asyncpg
import pytest
from loguru import logger
from redis.asyncio import Redis

from gochat_py.devstack.services import RedisServer, free_port
from gochat_py.ids import ConversationId, UserId, uuid7
from gochat_py.messages import Message, encode
from gochat_py.postgres.conversations import message_columns, message_from_row
from gochat_py.redis import keys
from gochat_py.redis.publish import Publisher
from tests.harness import poll_until
from tests.stream_traffic import (
    Traffic,
    create_chats,
    dead_letters,
    pending,
    running_consumer,
    stored_ids,
    xadd_messages,
)
from worker.persist import persist_batch, to_row

STREAM = keys.stream(0)
GROUP = keys.CONSUMER_GROUP


@pytest.fixture
def events() -> Iterator[list[dict[str, Any]]]:
    """Every log record the code under test writes, as loguru records."""
    records: list[dict[str, Any]] = []
    sink = logger.add(lambda message: records.append(message.record), level="DEBUG")
    yield records
    logger.remove(sink)


def named(events: list[dict[str, Any]], name: str, **extra: Any) -> list[dict[str, Any]]:
    return [
        e
        for e in events
        if e["message"] == name and all(e["extra"].get(k) == v for k, v in extra.items())
    ]


def count_of(db: asyncpg.Connection, expected: int) -> Any:
    async def check() -> bool:
        return len(await stored_ids(db)) >= expected

    return check


async def test_every_entry_of_every_partition_is_stored_once_and_acknowledged(
    db: asyncpg.Connection, redis: Redis, database_url: str, redis_url: str
) -> None:
    traffic = Traffic(await create_chats(db, 5))
    await xadd_messages(redis, traffic.burst(300), partitions=2)

    async with running_consumer(
        redis_url, database_url, partitions=2, batch_size=40, trim_every=0.1
    ) as run:
        await poll_until(count_of(db, 300), what="300 rows")
        await poll_until(lambda: _no_pending(redis, 2), what="every entry acknowledged")
        await poll_until(lambda: _trimmed(redis, 2), what="the acknowledged entries trimmed")

        assert sorted(await stored_ids(db)) == sorted(m.id for m in traffic.sent)
        last_seqs = dict(await db.fetch("SELECT id, last_seq FROM conversations"))
        assert last_seqs == traffic.seqs
        batches = run.metrics.registry.get_sample_value("gochat_worker_batch_size_count")
        assert batches is not None and batches >= 300 / (40 * 2)  # count= caps each read
        assert run.metrics.registry.get_sample_value("gochat_worker_batch_size_sum") == 300
    assert await dead_letters(redis, 0) == await dead_letters(redis, 1) == []


async def _trimmed(redis: Redis, partitions: int) -> bool:
    return all([await redis.xlen(keys.stream(p)) == 0 for p in range(partitions)])


async def _no_pending(redis: Redis, partitions: int) -> bool:
    return all([await pending(redis, p) == 0 for p in range(partitions)])


async def test_a_large_batch_is_gathered_from_reads_of_at_most_500_entries(
    db: asyncpg.Connection, redis: Redis, database_url: str, redis_url: str
) -> None:
    traffic = Traffic(await create_chats(db, 3))
    await xadd_messages(redis, traffic.burst(1200))
    threshold = (await redis.config_get("slowlog-log-slower-than"))["slowlog-log-slower-than"]
    await redis.config_set("slowlog-log-slower-than", 0)  # log every command, arguments too
    await redis.slowlog_reset()
    try:
        async with running_consumer(redis_url, database_url, batch_size=1200) as run:
            await poll_until(count_of(db, 1200), what="the rows")
            await poll_until(lambda: _no_pending(redis, 1), what="every entry acknowledged")
        log = await redis.slowlog_get(128)
    finally:
        await redis.config_set("slowlog-log-slower-than", threshold)

    sample = run.metrics.registry.get_sample_value
    assert sample("gochat_worker_batch_size_count") == 1  # one transaction for all of them
    assert sample("gochat_worker_batch_size_sum") == 1200
    reads = [e["command"].split() for e in log if e["command"].startswith(b"XREADGROUP")]
    counts = [int(read[read.index(b"COUNT") + 1]) for read in reads]
    assert len(counts) >= 3 and max(counts) == 500, counts


async def test_undecodable_entries_are_dead_lettered_without_blocking_the_batch(
    db: asyncpg.Connection, redis: Redis, database_url: str, redis_url: str
) -> None:
    traffic = Traffic(await create_chats(db, 1))
    before, after = traffic.burst(2)
    await xadd_messages(redis, [before])
    bad = {
        "not json": {"m": b"hello"},
        "wrong schema": {"m": b'{"id": 1}'},
        "no m": {"x": b"1"},
        "not utf-8": {"m": b'{"id": "\xff"}'},
    }
    bad_ids = {name: await redis.xadd(STREAM, fields) for name, fields in bad.items()}
    await xadd_messages(redis, [after])

    async with running_consumer(redis_url, database_url) as run:
        await poll_until(count_of(db, 2), what="the good rows")
        await poll_until(lambda: _no_pending(redis, 1), what="every entry acknowledged")

        letters = {d[b"source_id"]: d for d in await dead_letters(redis)}
        assert set(letters) == set(bad_ids.values())
        for name, entry_id in bad_ids.items():
            reason = letters[entry_id][b"reason"].decode()
            assert reason.startswith("undecodable: "), (name, reason)
            assert letters[entry_id][b"m"] == bad[name].get("m", b"")
        assert b"no field m (has: x)" in letters[bad_ids["no m"]][b"reason"]
        assert b"at `$.id`" in letters[bad_ids["wrong schema"]][b"reason"]

    # Counted just after the XACK that the poll saw: read once the consumer has stopped.
    dead = run.metrics.registry.get_sample_value(
        "gochat_worker_dead_letters_total", {"reason": "undecodable"}
    )
    assert dead == 4
    assert sorted(await stored_ids(db)) == sorted([before.id, after.id])


async def test_a_poison_entry_is_set_apart_while_the_good_ones_around_it_persist(
    db: asyncpg.Connection, redis: Redis, database_url: str, redis_url: str
) -> None:
    chat = (await create_chats(db, 1))[0]
    traffic = Traffic([chat])
    good = traffic.burst(3)
    poison = traffic.message(chat, sender_id=uuid7())  # no such user
    good += traffic.burst(3)
    ids = await xadd_messages(redis, [*good[:3], poison, *good[3:]])

    async with running_consumer(redis_url, database_url) as run:
        await poll_until(count_of(db, 6), what="the good rows")
        await poll_until(lambda: _no_pending(redis, 1), what="every entry acknowledged")

    # Counted just after the XACK that the poll saw: read once the consumer has stopped.
    dead = run.metrics.registry.get_sample_value(
        "gochat_worker_dead_letters_total", {"reason": "rejected"}
    )
    assert sorted(await stored_ids(db)) == sorted(m.id for m in good)
    (letter,) = await dead_letters(redis)
    assert letter[b"m"] == encode(poison)
    assert letter[b"reason"].startswith(b"rejected by PostgreSQL: 23503 ")
    assert letter[b"source_stream"] == STREAM.encode()
    assert letter[b"source_id"] == ids[3]
    assert letter[b"deliveries"] == b"1"
    assert dead == 1


async def test_a_message_whose_seq_another_message_holds_is_dead_lettered_not_dropped(
    db: asyncpg.Connection, redis: Redis, database_url: str, redis_url: str, stack: Any
) -> None:
    chat = (await create_chats(db, 1))[0]
    original = Traffic([chat]).message(chat)
    imposter = Traffic([chat]).message(chat)  # seq 1 again, another id
    pool = await asyncpg.create_pool(database_url, min_size=0, max_size=1)
    await persist_batch(pool, [to_row(original)])
    await pool.close()
    await xadd_messages(redis, [imposter])

    async with running_consumer(redis_url, database_url):
        await poll_until(lambda: dead_letters(redis), what="a dead letter")

    (letter,) = await dead_letters(redis)
    assert (
        letter[b"reason"]
        == (
            f"seq 1 of conversation {chat.conversation_id} is already taken by another message"
        ).encode()
    )
    assert await stored_ids(db) == [original.id]
    assert await pending(redis) == 0


async def test_entries_a_dead_consumer_left_pending_are_reclaimed_and_stored_once(
    db: asyncpg.Connection, redis: Redis, database_url: str, redis_url: str
) -> None:
    traffic = Traffic(await create_chats(db, 2))
    burst = traffic.burst(20)
    await redis.xgroup_create(STREAM, GROUP, id="0", mkstream=True)
    await xadd_messages(redis, burst)
    await redis.xreadgroup(GROUP, "crashed-worker", {STREAM: ">"}, count=20)
    # It died between COMMIT and XACK for the first half, before COMMIT for the rest.
    pool = await asyncpg.create_pool(database_url, min_size=0, max_size=1)
    await persist_batch(pool, [to_row(m) for m in burst[:10]])
    await pool.close()

    async with running_consumer(redis_url, database_url, claim_idle=0.3) as run:
        await poll_until(count_of(db, 20), what="the reclaimed rows")
        await poll_until(lambda: _no_pending(redis, 1), what="every entry acknowledged")
        inserted = run.metrics.registry.get_sample_value("gochat_worker_rows_persisted_total")

    assert sorted(await stored_ids(db)) == sorted(m.id for m in burst)
    assert inserted == 10  # the committed half was absorbed by ON CONFLICT, not repeated
    assert await dead_letters(redis) == []
    (crashed,) = [
        c for c in await redis.xinfo_consumers(STREAM, GROUP) if c["name"] == b"crashed-worker"
    ]
    assert crashed["pending"] == 0


async def test_an_entry_delivered_too_often_is_dead_lettered_instead_of_retried(
    db: asyncpg.Connection, redis: Redis, database_url: str, redis_url: str
) -> None:
    traffic = Traffic(await create_chats(db, 1))
    worn, fresh = traffic.burst(2)
    await redis.xgroup_create(STREAM, GROUP, id="0", mkstream=True)
    worn_id, _ = await xadd_messages(redis, [worn, fresh])
    await redis.xreadgroup(GROUP, "crashed-1", {STREAM: ">"}, count=2)  # delivery 1 of both
    await redis.xclaim(STREAM, GROUP, "crashed-2", 0, [worn_id])  # delivery 2 of `worn`

    async with running_consumer(redis_url, database_url, claim_idle=0.2, max_deliveries=2):
        await poll_until(count_of(db, 1), what="the fresh row")
        await poll_until(lambda: dead_letters(redis), what="a dead letter")

    (letter,) = await dead_letters(redis)
    assert letter[b"source_id"] == worn_id
    assert letter[b"deliveries"] == b"3"
    assert letter[b"reason"] == b"delivered 3 times, more than WORKER_MAX_DELIVERIES=2"
    assert await stored_ids(db) == [fresh.id]
    assert await pending(redis) == 0


async def test_while_postgres_is_unreachable_the_batch_is_held_not_acked_nor_dead_lettered(
    db: asyncpg.Connection, redis: Redis, redis_url: str, events: list[dict[str, Any]]
) -> None:
    traffic = Traffic(await create_chats(db, 1))
    ids = await xadd_messages(redis, traffic.burst(10))
    unreachable = f"postgresql://gochat@127.0.0.1:{free_port()}/gochat"

    async with running_consumer(
        redis_url, unreachable, claim_idle=0.3, stop_grace=0.5, trim_every=0.1
    ) as run:

        async def retried_a_while() -> bool:
            return len(named(events, "dependency_retry", dependency="postgres")) >= 5

        await poll_until(retried_a_while, what="five attempts at PostgreSQL")

        assert len(named(events, "dependency_down", dependency="postgres")) == 1
        assert run.metrics.registry.get_sample_value("gochat_worker_postgres_down") == 1
        await poll_until(
            lambda: _gauge(
                run.metrics.registry, "gochat_worker_pending_entries", 10, stream=STREAM
            ),
            what="the pending gauge to show the held batch",
        )
        assert await pending(redis) == 10
        assert await dead_letters(redis) == []
        # Held all along: another worker reclaiming idle entries finds none to take.
        taken = await redis.xautoclaim(STREAM, GROUP, "other-worker", 300, count=100)
        assert taken[1] == []
        details = await redis.xpending_range(STREAM, GROUP, "-", "+", 100)
        assert {(d["consumer"], d["times_delivered"]) for d in details} == {
            (run.consumer.name.encode(), 1)
        }

    # Stopped during the outage: the batch stays pending for another worker, none lost.
    assert named(events, "batch_left_pending", entries=10)
    assert sorted(
        d["message_id"] for d in await redis.xpending_range(STREAM, GROUP, "-", "+", 100)
    ) == sorted(ids)
    consumers = [c["name"] for c in await redis.xinfo_consumers(STREAM, GROUP)]
    assert run.consumer.name.encode() in consumers  # not removed while it holds entries


async def test_a_batch_read_ahead_during_an_outage_is_kept_claimed_then_left_pending(
    db: asyncpg.Connection, redis: Redis, redis_url: str, events: list[dict[str, Any]]
) -> None:
    traffic = Traffic(await create_chats(db, 1))
    await redis.xgroup_create(STREAM, GROUP, id="0", mkstream=True)
    ids = await xadd_messages(redis, traffic.burst(10))
    unreachable = f"postgresql://gochat@127.0.0.1:{free_port()}/gochat"

    async with running_consumer(
        redis_url, unreachable, batch_size=5, claim_idle=0.3, stop_grace=0.5
    ) as run:

        async def read_ahead_past_claim_idle() -> bool:
            # Back-off 0.1 + 0.2 + 0.4 + 0.8 s: well past claim_idle since the read.
            retries = named(events, "dependency_retry", dependency="postgres")
            return await pending(redis) == 10 and len(retries) >= 5

        await poll_until(read_ahead_past_claim_idle, what="both batches held through retries")

        taken = await redis.xautoclaim(STREAM, GROUP, "other-worker", 300, count=100)
        assert taken[1] == []

    assert len(named(events, "batch_left_pending", entries=5)) == 2
    details = await redis.xpending_range(STREAM, GROUP, "-", "+", 100)
    assert sorted(d["message_id"] for d in details) == sorted(ids)
    assert {(d["consumer"], d["times_delivered"]) for d in details} == {
        (run.consumer.name.encode(), 1)
    }
    assert await dead_letters(redis) == []


async def test_stopping_leaves_the_group_and_says_so(
    db: asyncpg.Connection, redis: Redis, database_url: str, redis_url: str,
    events: list[dict[str, Any]],
) -> None:  # fmt: skip
    traffic = Traffic(await create_chats(db, 1))
    await xadd_messages(redis, traffic.burst(5))

    async with running_consumer(redis_url, database_url) as run:
        await poll_until(count_of(db, 5), what="the rows")

    assert run.task.done() and run.task.exception() is None
    assert await redis.xinfo_consumers(STREAM, GROUP) == []
    assert named(events, "worker_stopped", consumer=run.consumer.name)


async def test_a_redis_restart_is_waited_out_and_consumption_resumes(
    db: asyncpg.Connection, database_url: str, own_redis: RedisServer,
    events: list[dict[str, Any]],
) -> None:  # fmt: skip
    traffic = Traffic(await create_chats(db, 2))
    producer = Redis.from_url(own_redis.url)
    try:
        async with running_consumer(own_redis.url, database_url) as run:
            await xadd_messages(producer, traffic.burst(20))
            await poll_until(count_of(db, 20), what="rows before the restart")

            own_redis.stop()
            await poll_until(
                lambda: _gauge(run.metrics.registry, "gochat_worker_redis_down", 1),
                what="the worker to notice Redis is down",
            )
            own_redis.start()
            await producer.connection_pool.disconnect()  # the test's own stale connection
            await xadd_messages(producer, traffic.burst(20))
            await poll_until(count_of(db, 40), what="rows after the restart")

            assert not run.task.done()
            assert len(named(events, "dependency_down", dependency="redis")) == 1
            assert len(named(events, "dependency_up", dependency="redis")) == 1
    finally:
        await producer.aclose()
    assert sorted(await stored_ids(db)) == sorted(m.id for m in traffic.sent)


async def test_redis_restarted_without_its_data_gets_the_group_again(
    db: asyncpg.Connection, database_url: str, own_redis: RedisServer,
    events: list[dict[str, Any]],
) -> None:  # fmt: skip
    traffic = Traffic(await create_chats(db, 1))
    producer = Redis.from_url(own_redis.url)
    try:
        async with running_consumer(own_redis.url, database_url) as run:
            await xadd_messages(producer, traffic.burst(5))
            await poll_until(count_of(db, 5), what="rows before the restart")

            own_redis.stop()
            shutil.rmtree(own_redis.data_dir)
            own_redis.start()
            await producer.connection_pool.disconnect()
            await xadd_messages(producer, traffic.burst(5))
            await poll_until(count_of(db, 10), what="rows after the restart")

            assert not run.task.done()
            assert named(events, "consumer_group_missing")
    finally:
        await producer.aclose()


async def _gauge(registry: Any, name: str, value: float, **labels: str) -> bool:
    return bool(registry.get_sample_value(name, labels) == value)


async def test_entries_written_by_the_real_send_script_are_stored_exactly_as_sent(
    db: asyncpg.Connection, redis: Redis, database_url: str, redis_url: str
) -> None:
    chats = await create_chats(db, 3)
    publisher = Publisher(redis, 2, lambda conversation_id: _no_floor(), recent_max=100_000)
    sent: list[Message] = []
    for i in range(30):
        chat = chats[i % len(chats)]
        result = await publisher.send(
            ConversationId(chat.conversation_id),
            frozenset({UserId(chat.sender_id)}),
            UserId(chat.sender_id),
            chat.sender_username,
            f"sent through the script {i} ✓",
            f"c-{i}" if i % 2 else None,
        )
        sent.append(result.message)

    async with running_consumer(redis_url, database_url, partitions=2, batch_size=8):
        await poll_until(count_of(db, len(sent)), what="every sent message stored")
        await poll_until(lambda: _no_pending(redis, 2), what="every entry acknowledged")
    rows = await db.fetch(
        f"SELECT {message_columns('m', 'u')} FROM messages m JOIN users u ON u.id = m.sender_id"
    )
    assert sorted(map(message_from_row, rows), key=lambda m: m.id) == sorted(
        sent, key=lambda m: m.id
    )
    assert await dead_letters(redis, 0) == await dead_letters(redis, 1) == []


async def _no_floor() -> int:
    return 0
