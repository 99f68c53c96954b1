"""Message history: keyset pages from PostgreSQL merged with the recent cache in Redis.

The cache holds every message of a conversation that PostgreSQL does not hold yet, and a
few of the newest it does (the worker trims the rest once committed), so a page shows a
message the moment it is acknowledged, however far the worker lags; seq is unique per
conversation, so merging by seq cannot duplicate. Both sides are asked for the same
number of messages past the same bound, and the union's first n are among the two sides'
first n: a page that straddles the boundary between cache and PostgreSQL has no hole.
"""

from __future__ import annotations

from typing import Annotated, Literal

import asyncpg
import msgspec
from redis.asyncio import Redis

from gochat_py import cursors, messages
from gochat_py.ids import ConversationId
from gochat_py.messages import Message
from gochat_py.postgres.conversations import message_from_row
from gochat_py.redis import keys

DEFAULT_PAGE = 50
MAX_PAGE = 100


class Cursor(msgspec.Struct, frozen=True, array_like=True, forbid_unknown_fields=True):
    direction: Literal["before", "after"]
    seq: Annotated[int, msgspec.Meta(ge=0)]


class Page(msgspec.Struct, frozen=True):
    messages: list[Message]
    next_cursor: str | None


_SELECT = """
SELECT m.id, m.conversation_id, m.sender_id, u.username AS sender_username, m.content, m.type,
       m.sent_at, m.client_msg_id, m.seq
FROM messages m JOIN users u ON u.id = m.sender_id
WHERE m.conversation_id = $1
"""


class History:
    def __init__(self, pool: asyncpg.Pool, redis: Redis, partitions: int) -> None:
        self._pool = pool
        self._redis = redis
        self._partitions = partitions

    async def page(
        self, conversation_id: ConversationId, cursor: Cursor | None, limit: int
    ) -> Page:
        """`limit` messages: newest first by default or for a "before" cursor, oldest
        first for an "after" cursor; next_cursor continues in the same direction."""
        direction = cursor.direction if cursor else "before"
        bound = cursor.seq if cursor else None
        # One extra row says whether another page exists, so the last page has no cursor.
        # Cache first, then PostgreSQL: a message trimmed in between was committed before
        # it was trimmed, so the second read finds it.
        cached = await self._cached(conversation_id, direction, bound, limit + 1)
        stored = await self._stored(conversation_id, direction, bound, limit + 1)
        merged = {m.seq: m for m in stored}
        merged.update((m.seq, m) for m in cached)
        ordered = sorted(merged.values(), key=lambda m: m.seq, reverse=direction == "before")
        page, more = ordered[:limit], len(ordered) > limit
        next_cursor = cursors.encode(Cursor(direction, page[-1].seq)) if more and page else None
        return Page(messages=page, next_cursor=next_cursor)

    async def _stored(
        self, conversation_id: ConversationId, direction: str, bound: int | None, limit: int
    ) -> list[Message]:
        # Each shape is a plain range on (conversation_id, seq), so the index finds the
        # page directly and a deep page costs what the first one does.
        args: tuple[int | None, ...]
        if direction == "after":
            sql, args = _SELECT + " AND m.seq > $2 ORDER BY m.seq LIMIT $3", (bound, limit)
        elif bound is not None:
            sql, args = _SELECT + " AND m.seq < $2 ORDER BY m.seq DESC LIMIT $3", (bound, limit)
        else:
            sql, args = _SELECT + " ORDER BY m.seq DESC LIMIT $2", (limit,)
        rows = await self._pool.fetch(sql, conversation_id, *args)
        return [message_from_row(row) for row in rows]

    async def _cached(
        self, conversation_id: ConversationId, direction: str, bound: int | None, limit: int
    ) -> list[Message]:
        key = keys.recent(conversation_id, self._partitions)
        if direction == "before":
            top = f"({bound}" if bound is not None else "+inf"
            raw = await self._redis.zrevrangebyscore(key, top, "-inf", start=0, num=limit)
        else:
            raw = await self._redis.zrangebyscore(key, f"({bound}", "+inf", start=0, num=limit)
        return [messages.decode(item) for item in raw]  # type: ignore[arg-type]

    async def newer_than(
        self, floors: dict[ConversationId, int], limit: int
    ) -> dict[ConversationId, list[Message]]:
        """Per conversation, the cached messages above a seq (what PostgreSQL lacks yet),
        newest first, in one round trip."""
        if not floors:
            return {}
        async with self._redis.pipeline(transaction=False) as pipe:
            for conversation_id, floor in floors.items():
                key = keys.recent(conversation_id, self._partitions)
                pipe.zrevrangebyscore(key, "+inf", f"({floor}", start=0, num=limit)
            results = await pipe.execute()
        return {
            conversation_id: [messages.decode(item) for item in raw]
            for conversation_id, raw in zip(floors, results, strict=True)
        }
