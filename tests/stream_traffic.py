"""Stream traffic for the worker tests: conversations made in SQL, messages appended to
the stream as the API would, and an in-process consumer."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import msgspec
from redis.asyncio import Redis

from gochat_py.ids import uuid7
from gochat_py.messages import Message, MessageChange
from gochat_py.redis import keys, stream_entries
from gochat_py.redis.webhook_queue import WebhookQueue
from gochat_py.settings import Settings
from worker.consumer import Consumer, ConsumerConfig
from worker.metrics import WorkerMetrics
from worker.watermark import RECENT_TAIL, RECENT_TRIM_STEP
from worker.webhook_fanout import WebhookFanout


@dataclass(frozen=True)
class Chat:
    """A group conversation and the member who sends into it."""

    conversation_id: uuid.UUID
    sender_id: uuid.UUID
    sender_username: str


async def create_chats(db: asyncpg.Connection, count: int) -> list[Chat]:
    """`count` group conversations, each with its own sender, inserted straight into SQL."""
    chats = []
    for _ in range(count):
        user_id, conversation_id = uuid7(), uuid7()
        username = f"u_{user_id.hex[-12:]}"
        await db.execute(
            "INSERT INTO users (id, email, username, password_hash) VALUES ($1, $2, $3, 'x')",
            user_id,
            f"{username}@example.com",
            username,
        )
        await db.execute(
            "INSERT INTO conversations (id, kind, name, created_by) VALUES ($1, 'group', 'g', $2)",
            conversation_id,
            user_id,
        )
        await db.execute(
            "INSERT INTO conversation_members (conversation_id, user_id, role)"
            " VALUES ($1, $2, 'owner')",
            conversation_id,
            user_id,
        )
        chats.append(Chat(conversation_id, user_id, username))
    return chats


@dataclass
class Traffic:
    """Messages in send order, seq strictly increasing per conversation as the API assigns it."""

    chats: Sequence[Chat]
    seqs: dict[uuid.UUID, int] = field(default_factory=dict)
    sent: list[Message] = field(default_factory=list)

    def message(self, chat: Chat, sent_at: int | None = None, **overrides: Any) -> Message:
        seq = self.seqs.get(chat.conversation_id, 0) + 1
        self.seqs[chat.conversation_id] = seq
        values: dict[str, Any] = {
            "id": uuid7(),
            "conversation_id": chat.conversation_id,
            "sender_id": chat.sender_id,
            "sender_username": chat.sender_username,
            "content": f"message {seq}",
            "type": "text",
            "sent_at": int(time.time() * 1000) if sent_at is None else sent_at,
            "client_msg_id": None,
            "seq": seq,
        }
        values.update(overrides)
        message = Message(**values)
        self.sent.append(message)
        return message

    def change(self, original: Message, content: str | None) -> MessageChange:
        """An edit of `original` to `content` (None: its delete), at its conversation's next
        seq, as the editing use case appends it."""
        seq = self.seqs[original.conversation_id] + 1
        self.seqs[original.conversation_id] = seq
        now = int(time.time() * 1000)
        if content is None:
            after = msgspec.structs.replace(original, content="", deleted=True)
            return MessageChange(event="message_deleted", message=after, changed_at=now, seq=seq)
        after = msgspec.structs.replace(original, content=content, edited_at=now)
        return MessageChange(event="message_updated", message=after, changed_at=now, seq=seq)

    def burst(self, count: int) -> list[Message]:
        """`count` messages spread round-robin over the chats."""
        return [self.message(self.chats[i % len(self.chats)]) for i in range(count)]


async def xadd_messages(
    redis: Redis, messages: Iterable[Message], partitions: int = 1
) -> list[bytes]:
    """Append each message to its partition stream, in order; return the entry ids."""
    async with redis.pipeline(transaction=False) as pipe:
        for message in messages:
            stream = keys.conversation_stream(message.conversation_id, partitions)
            pipe.xadd(stream, stream_entries.entry(message))
        ids: list[bytes] = await pipe.execute()
    return ids


async def stored_ids(db: asyncpg.Connection) -> list[uuid.UUID]:
    """Every message id in PostgreSQL, repeats included (there must be none)."""
    return [r["id"] for r in await db.fetch("SELECT id FROM messages")]


async def dead_letters(redis: Redis, partition: int = 0) -> list[dict[bytes, bytes]]:
    return [fields for _, fields in await redis.xrange(keys.dead_letters(partition))]


async def pending(redis: Redis, partition: int = 0) -> int:
    return int((await redis.xpending(keys.stream(partition), keys.CONSUMER_GROUP))["pending"])


@dataclass
class RunningConsumer:
    consumer: Consumer
    metrics: WorkerMetrics
    stop: asyncio.Event
    task: asyncio.Task[None]


@contextlib.asynccontextmanager
async def running_consumer(
    redis_url: str,
    database_url: str,
    *,
    partitions: int = 1,
    batch_size: int = 100,
    claim_idle: float = 30.0,
    max_deliveries: int = 5,
    stop_grace: float = 10.0,
    trim_every: float = 5.0,
    recent_tail: int = RECENT_TAIL,
    recent_trim_step: int = RECENT_TRIM_STEP,
    webhooks: bool = False,
) -> AsyncIterator[RunningConsumer]:
    """A Consumer running in this event loop against real Redis and PostgreSQL; with
    `webhooks`, queueing webhook events as NOTIFY_WEBHOOK_URL would have it."""
    redis = Redis.from_url(redis_url, socket_timeout=3, socket_connect_timeout=1)
    pool = await asyncpg.create_pool(database_url, min_size=0, max_size=2, timeout=2)
    config = ConsumerConfig(
        partitions,
        batch_size,
        claim_idle,
        max_deliveries,
        stop_grace,
        trim_every,
        recent_tail,
        recent_trim_step,
    )
    metrics = WorkerMetrics()
    stop = asyncio.Event()
    fanout = (
        WebhookFanout(WebhookQueue(redis, Settings().notify_webhook_max_queued), pool, metrics)
        if webhooks
        else None
    )
    consumer = Consumer(redis, pool, config, metrics, stop, fanout=fanout)
    task = asyncio.create_task(consumer.run())
    try:
        yield RunningConsumer(consumer, metrics, stop, task)
    finally:
        stop.set()
        try:
            await asyncio.wait_for(task, stop_grace + 10)
        finally:
            pool.terminate()
            await redis.aclose()
