"""Batched commands against a real Redis: each caller gets its own reply or error."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from redis.asyncio import Redis
from redis.exceptions import ConnectionError, ResponseError

from gochat_py.devstack.services import RedisServer
from gochat_py.redis.pipelining import MAX_BATCH, Pipeliner


async def test_concurrent_callers_each_get_their_own_reply(redis: Redis) -> None:
    pipeliner, ns = Pipeliner(redis), uuid.uuid4().hex
    callers = 3 * MAX_BATCH + 7  # more than one batch can hold
    replies = await asyncio.gather(
        *(pipeliner.execute("INCRBY", f"{ns}:{i}", i) for i in range(callers))
    )
    assert replies == list(range(callers))
    assert int(await redis.get(f"{ns}:{callers - 1}") or 0) == callers - 1


async def test_many_commands_of_one_caller_go_in_batches_and_come_back_in_order(
    redis: Redis,
) -> None:
    pipeliner, ns = Pipeliner(redis), uuid.uuid4().hex
    count = 2 * MAX_BATCH + 3
    beside = pipeliner.execute("INCRBY", f"{ns}:beside", 5)
    many = pipeliner.execute_many(("INCRBY", f"{ns}:{i}", i) for i in range(count))
    assert await asyncio.gather(beside, many) == [5, list(range(count))]
    assert await pipeliner.execute_many([]) == []
    await redis.set(f"{ns}:text", "not a number")
    with pytest.raises(ResponseError):
        await pipeliner.execute_many([("INCR", f"{ns}:0"), ("INCR", f"{ns}:text")])
    assert int(await redis.get(f"{ns}:0") or 0) == 1  # the rest of the batch still ran


async def test_an_error_reply_fails_only_its_own_caller(redis: Redis) -> None:
    pipeliner, ns = Pipeliner(redis), uuid.uuid4().hex
    await redis.set(f"{ns}:text", "not a number")
    results = await asyncio.gather(
        pipeliner.execute("INCR", f"{ns}:a"),
        pipeliner.execute("INCR", f"{ns}:text"),
        pipeliner.execute("INCR", f"{ns}:b"),
        return_exceptions=True,
    )
    assert results[0] == 1 and results[2] == 1
    assert isinstance(results[1], ResponseError)


async def test_callers_get_an_error_not_a_hang_when_redis_is_gone(
    own_redis: RedisServer,
) -> None:
    client = Redis.from_url(own_redis.url, socket_connect_timeout=1)
    pipeliner = Pipeliner(client)
    assert await pipeliner.execute("PING") == b"PONG"
    own_redis.stop()
    async with asyncio.timeout(10):
        results = await asyncio.gather(
            *(pipeliner.execute("PING") for _ in range(5)), return_exceptions=True
        )
    assert all(isinstance(r, ConnectionError | OSError) for r in results), results
    own_redis.start()
    assert await pipeliner.execute("PING") == b"PONG"
    await client.aclose()


async def test_a_cancelled_caller_does_not_disturb_the_others(redis: Redis) -> None:
    pipeliner, ns = Pipeliner(redis), uuid.uuid4().hex
    doomed = asyncio.create_task(pipeliner.execute("INCR", f"{ns}:doomed"))
    survivor = asyncio.create_task(pipeliner.execute("INCR", f"{ns}:survivor"))
    await asyncio.sleep(0)
    doomed.cancel()
    assert await survivor == 1
    with pytest.raises(asyncio.CancelledError):
        await doomed
    assert await pipeliner.execute("INCR", f"{ns}:survivor") == 2
