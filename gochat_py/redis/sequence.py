"""A conversation's seq counter as a reader sees it: the last seq handed out."""

from __future__ import annotations

from redis.asyncio import Redis

from gochat_py.ids import ConversationId
from gochat_py.redis import keys


class SeqCounter:
    def __init__(self, redis: Redis, partitions: int) -> None:
        self._redis = redis
        self._partitions = partitions

    async def last(self, conversation_id: ConversationId) -> int | None:
        """The last seq handed out; None when Redis holds no counter: nothing was sent yet,
        or nothing since Redis lost its data (PostgreSQL then knows the highest)."""
        value = await self._redis.get(keys.sequence(conversation_id, self._partitions))
        return int(value) if value is not None else None
