"""Conversations' seq counters outside the send script: read the last seq handed out, and
start the counters of conversations just created at 0 in one batch.

A send into a conversation without a counter takes its floor from PostgreSQL first
(redis/publish.py: the counter may have been lost with Redis), which costs a query and a
second script call. A conversation created a moment ago has nothing stored anywhere, so
its floor is known: 0. NX: a send that got there first keeps its count.
"""

from __future__ import annotations

from redis.asyncio import Redis

from gochat_py.ids import ConversationId
from gochat_py.redis import keys
from gochat_py.redis.pipelining import Pipeliner


class Sequences:
    def __init__(self, redis: Redis, partitions: int) -> None:
        self._redis = redis
        self._pipeliner = Pipeliner(redis)
        self._partitions = partitions

    async def last(self, conversation_id: ConversationId) -> int | None:
        """The last seq handed out; None when Redis holds no counter: nothing was sent yet,
        or nothing since Redis lost its data (PostgreSQL then knows the highest)."""
        value = await self._redis.get(keys.sequence(conversation_id, self._partitions))
        return int(value) if value is not None else None

    async def start(self, conversation_ids: list[ConversationId]) -> None:
        """Give each of `conversation_ids`, created just now, a counter at 0."""
        await self._pipeliner.execute_many(
            ("SET", keys.sequence(c, self._partitions), 0, "NX") for c in conversation_ids
        )
