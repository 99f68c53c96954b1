"""The seq counters of conversations just created, started at 0 in one batch.

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
        self._pipeliner = Pipeliner(redis)
        self._partitions = partitions

    async def start(self, conversation_ids: list[ConversationId]) -> None:
        """Give each of `conversation_ids`, created just now, a counter at 0."""
        await self._pipeliner.execute_many(
            ("SET", keys.sequence(c, self._partitions), 0, "NX") for c in conversation_ids
        )
