"""History keeps every acknowledged message however far the worker lags, and the worker
trims the recent cache only below what is stored without a gap."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import asyncpg
import httpx
from redis.asyncio import Redis

from gochat_py.ids import ConversationId, UserId
from gochat_py.postgres.conversations import UNREAD_CAP, Conversations
from gochat_py.redis import keys
from gochat_py.redis.publish import Publisher
from tests.harness import bearer, create_direct, poll_until, register
from tests.stream_traffic import running_consumer
from worker.watermark import RECENT_TAIL, RECENT_TRIM_STEP

PATH = "/api/v1/conversations/{}/messages"
SENDS_IN_FLIGHT = 200  # concurrent sends: the publisher writes them to Redis in one batch


async def send_many(
    redis: Redis, database_url: str, conversation_id: str, sender: dict[str, Any], count: int
) -> list[int]:
    """`count` messages through the real send script, in order; returns their seqs."""
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    publisher = Publisher(redis, 1, Conversations(pool).highest_seq, recent_max=100_000)
    conversation, user = ConversationId(uuid.UUID(conversation_id)), UserId(uuid.UUID(sender["id"]))
    seqs: list[int] = []
    try:
        # The first alone: it loads the script, which concurrent first calls would each do.
        for start in [0, *range(1, count, SENDS_IN_FLIGHT)]:
            sent = await asyncio.gather(
                *(
                    publisher.send(
                        conversation, frozenset({user}), user, sender["username"], f"m{i}", None
                    )
                    for i in range(start, min(count, start + (SENDS_IN_FLIGHT if start else 1)))
                )
            )
            seqs += [s.message.seq for s in sent]
    finally:
        await pool.close()
    return seqs


async def history(
    api: httpx.AsyncClient, tokens: dict[str, Any], conversation_id: str
) -> list[dict[str, Any]]:
    """Every page, newest first, 100 at a time, following next_cursor to the end."""
    messages: list[dict[str, Any]] = []
    query = {"limit": "100"}
    while True:
        response = await api.get(PATH.format(conversation_id), params=query, headers=bearer(tokens))
        assert response.status_code == 200, response.text
        body = response.json()
        messages += body["messages"]
        if body["next_cursor"] is None:
            return messages
        query = {"limit": "100", "cursor": body["next_cursor"]}


async def listed(api: httpx.AsyncClient, tokens: dict[str, Any]) -> tuple[int, int, int]:
    """The one conversation in the list: its last_seq, last message's seq, unread count."""
    response = await api.get("/api/v1/conversations", headers=bearer(tokens))
    [item] = response.json()["conversations"]
    last = item["last_message"]["seq"]
    return item["conversation"]["last_seq"], last, item["unread_count"]


async def cached_seqs(redis: Redis, conversation_id: str) -> list[int]:
    key = keys.recent(uuid.UUID(conversation_id), 1)
    return [int(score) for _, score in await redis.zrange(key, 0, -1, withscores=True)]


async def stored_count(db: asyncpg.Connection, conversation_id: str) -> int:
    count = await db.fetchval(
        "SELECT count(*) FROM messages WHERE conversation_id = $1", uuid.UUID(conversation_id)
    )
    return int(count)


async def test_5000_messages_sent_while_the_worker_is_stopped_are_all_in_history_before_and_after_it_drains(  # noqa: E501
    api: httpx.AsyncClient,
    db: asyncpg.Connection,
    redis: Redis,
    database_url: str,
    redis_url: str,
) -> None:
    alice, bob = await register(api), await register(api)
    conversation_id = (await create_direct(api, alice["tokens"], bob["user"]["id"]))["id"]

    seqs = await send_many(redis, database_url, conversation_id, alice["user"], 5000)
    assert sorted(seqs) == list(range(1, 5001))

    before = await history(api, bob["tokens"], conversation_id)
    assert [m["seq"] for m in before] == list(range(5000, 0, -1))
    assert len({m["id"] for m in before}) == 5000
    assert await stored_count(db, conversation_id) == 0
    assert await listed(api, bob["tokens"]) == (5000, 5000, UNREAD_CAP)

    async with running_consumer(redis_url, database_url, batch_size=1000):

        async def drained() -> bool:
            tail = list(range(5000 - RECENT_TAIL + 1, 5001))
            stored = await stored_count(db, conversation_id)
            return stored == 5000 and await cached_seqs(redis, conversation_id) == tail

        await poll_until(drained, timeout=60, what="5,000 rows stored and the cache trimmed")

    after = await history(api, bob["tokens"], conversation_id)
    assert [(m["id"], m["seq"], m["content"]) for m in after] == [
        (m["id"], m["seq"], m["content"]) for m in before
    ]
    assert int(await redis.get(keys.recent_held(0)) or 0) == RECENT_TAIL
    assert await listed(api, bob["tokens"]) == (5000, 5000, UNREAD_CAP)


async def test_the_cache_is_not_trimmed_past_an_entry_another_worker_still_holds(
    api: httpx.AsyncClient,
    db: asyncpg.Connection,
    redis: Redis,
    database_url: str,
    redis_url: str,
) -> None:
    alice, bob = await register(api), await register(api)
    conversation_id = (await create_direct(api, alice["tokens"], bob["user"]["id"]))["id"]
    await send_many(redis, database_url, conversation_id, alice["user"], 300)
    # A worker that read seq 1..100 and stalls: its entries stay pending, unstored.
    stream = keys.stream(0)
    await redis.xgroup_create(stream, keys.CONSUMER_GROUP, id="0", mkstream=True)
    await redis.xreadgroup(keys.CONSUMER_GROUP, "stalled", {stream: ">"}, count=100)

    tail = 10
    async with running_consumer(redis_url, database_url, recent_tail=tail):
        await poll_until(lambda: _stored_is(db, conversation_id, 200), what="seq 101..300 stored")
    # Stopped: its batches are committed, acknowledged and trimmed as far as they may be.
    assert await _pending(redis) == 100
    last_seq = await db.fetchval(
        "SELECT last_seq FROM conversations WHERE id = $1", uuid.UUID(conversation_id)
    )
    assert last_seq == 300  # yet 1..100 are not stored: nothing may go from the cache
    assert await cached_seqs(redis, conversation_id) == list(range(1, 301))
    pages = await history(api, bob["tokens"], conversation_id)
    assert [m["seq"] for m in pages] == list(range(300, 0, -1))

    # Another worker reclaims and stores 1..100: trimmed below its watermark less the
    # tail, in steps.
    async with running_consumer(redis_url, database_url, recent_tail=tail, claim_idle=0.05):
        await poll_until(
            lambda: _stored_is(db, conversation_id, 300), what="the reclaimed 1..100 stored"
        )
        first = _trimmed_up_to(100, tail) + 1
        await poll_until(lambda: _cached_from(redis, conversation_id, first), what="1..50 gone")
        # What the other worker stored (101..300) goes when the conversation's next
        # batches move its bound past the next step.
        await send_many(redis, database_url, conversation_id, alice["user"], RECENT_TRIM_STEP)
        last = 300 + RECENT_TRIM_STEP
        first = _trimmed_up_to(last, tail) + 1
        await poll_until(lambda: _cached_from(redis, conversation_id, first), what="a short tail")
    assert await cached_seqs(redis, conversation_id) == list(range(first, last + 1))
    assert tail <= last - first + 1 < tail + RECENT_TRIM_STEP
    pages = await history(api, bob["tokens"], conversation_id)
    assert [m["seq"] for m in pages] == list(range(last, 0, -1))
    assert len({m["id"] for m in pages}) == last


def _trimmed_up_to(watermark: int, tail: int) -> int:
    return (watermark - tail) // RECENT_TRIM_STEP * RECENT_TRIM_STEP


async def _stored_is(db: asyncpg.Connection, conversation_id: str, count: int) -> bool:
    return await stored_count(db, conversation_id) == count


async def _pending(redis: Redis) -> int:
    summary = await redis.xpending(keys.stream(0), keys.CONSUMER_GROUP)
    return int(summary["pending"])


async def _cached_from(redis: Redis, conversation_id: str, lowest: int) -> bool:
    seqs = await cached_seqs(redis, conversation_id)
    return bool(seqs) and seqs[0] == lowest
