"""The resume use case against real PostgreSQL and Redis: what it replays, what it cannot,
and what it reports as delivered."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest
from redis.asyncio import Redis

from gochat_py.ids import ConversationId, UserId
from gochat_py.postgres.conversations import Conversations
from gochat_py.redis import keys
from gochat_py.redis.replay import ReplayReader
from gochat_py.usecases.resumption import Resumption
from tests.harness import create_direct, post_messages, register

Pair = tuple[dict[str, Any], dict[str, Any], str]


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    yield pool
    await pool.close()


def resumption(pool: asyncpg.Pool, redis: Redis, replay_max: int = 100, **kw: Any) -> Resumption:
    return Resumption(Conversations(pool), ReplayReader(redis, 1), replay_max, **kw)


async def send(api: httpx.AsyncClient, user: dict[str, Any], conversation: str, n: int) -> None:
    await post_messages(api, user["tokens"], conversation, n)


def ids(pair: Pair) -> tuple[UserId, ConversationId]:
    return UserId(uuid.UUID(pair[1]["user"]["id"])), ConversationId(uuid.UUID(pair[2]))


async def test_a_conversation_that_does_not_fit_in_what_is_left_replays_nothing(
    api: httpx.AsyncClient, pair: Pair, pool: asyncpg.Pool, redis: Redis
) -> None:
    alice, bob, first = pair
    carol = await register(api)
    second = (await create_direct(api, carol["tokens"], bob["user"]["id"]))["id"]
    await send(api, alice, first, 3)
    await send(api, carol, second, 3)
    user, _ = ids(pair)
    positions = {ConversationId(uuid.UUID(first)): 0, ConversationId(uuid.UUID(second)): 0}
    replay = await resumption(pool, redis, replay_max=4).replay(user, positions)
    [fits, too_many] = replay.missed
    assert (fits.recovered, len(fits.frames), fits.to_seq) == (True, 3, 3)
    assert (too_many.recovered, too_many.frames, too_many.to_seq) == (False, [], 3)


async def test_when_redis_lost_the_conversation_postgresql_says_how_far_its_log_went(
    api: httpx.AsyncClient, pair: Pair, pool: asyncpg.Pool, redis: Redis, db: asyncpg.Connection
) -> None:
    user, conversation = ids(pair)
    await db.execute("UPDATE conversations SET last_seq = 5 WHERE id = $1", conversation)
    behind = await resumption(pool, redis).replay(user, {conversation: 3})
    level = await resumption(pool, redis).replay(user, {conversation: 5})
    assert (behind.missed[0].recovered, behind.missed[0].to_seq) == (False, 5)
    assert (level.missed[0].recovered, level.missed[0].to_seq) == (True, 5)


async def test_the_newest_cached_seq_stands_in_for_a_lost_counter(
    api: httpx.AsyncClient, pair: Pair, pool: asyncpg.Pool, redis: Redis
) -> None:
    alice, _, conversation_text = pair
    await send(api, alice, conversation_text, 4)
    user, conversation = ids(pair)
    await redis.delete(keys.sequence(conversation, 1))
    replay = await resumption(pool, redis).replay(user, {conversation: 2})
    assert (replay.missed[0].recovered, replay.missed[0].to_seq) == (True, 4)
    assert len(replay.missed[0].frames) == 2


async def test_a_resume_reports_each_conversation_it_brought_up_to_date_as_delivered(
    api: httpx.AsyncClient, pair: Pair, pool: asyncpg.Pool, redis: Redis
) -> None:
    alice, bob, conversation_text = pair
    carol = await register(api)
    level_text = (await create_direct(api, carol["tokens"], bob["user"]["id"]))["id"]
    await send(api, alice, conversation_text, 2)
    await send(api, carol, level_text, 1)
    user, conversation = ids(pair)
    level = ConversationId(uuid.UUID(level_text))
    stranger = ConversationId(uuid.uuid4())
    reports: list[tuple[UserId, ConversationId, int]] = []

    async def delivered(who: UserId, conversation_id: ConversationId, seq: int) -> None:
        reports.append((who, conversation_id, seq))

    resume = resumption(pool, redis, delivered=delivered)
    replay = await resume.replay(user, {conversation: 0, level: 1, stranger: 0})
    assert reports == []
    await resume.caught_up(user, replay)
    # Not the conversation the device was level with, nor one it is not in.
    assert reports == [(user, conversation, 2)]
    assert replay.not_found == [stranger]


async def test_a_failed_delivery_report_does_not_fail_the_resume(
    api: httpx.AsyncClient, pair: Pair, pool: asyncpg.Pool, redis: Redis
) -> None:
    alice, _, conversation_text = pair
    await send(api, alice, conversation_text, 1)
    user, conversation = ids(pair)

    async def refused(who: UserId, conversation_id: ConversationId, seq: int) -> None:
        raise RuntimeError("the watermark store is down")

    resume = resumption(pool, redis, delivered=refused)
    await resume.caught_up(user, await resume.replay(user, {conversation: 0}))
