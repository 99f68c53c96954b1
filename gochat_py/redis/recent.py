"""The recent cache: reading what PostgreSQL may lack yet, trimming what it holds,
counting what the caches hold, and who sent the messages of a seq range.

The send script adds every message to its conversation's cache and counts it in the
partition's held counter (publish.py); nothing but `trim` removes one, so the cache holds
every message not yet persisted. The worker decides how far trimming is safe.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence

import msgspec
from redis.asyncio import Redis

from gochat_py import messages
from gochat_py.ids import ConversationId, UserId
from gochat_py.messages import Direction, Message
from gochat_py.redis import keys
from gochat_py.redis.scripts import LuaScript

# KEYS[1] the partition's held counter, KEYS[2..] recent caches of that partition, ARGV[i]
# the highest seq to drop from KEYS[i + 1]. By score, so a repeat (a redelivered batch,
# two workers) removes nothing more; one script, so the counter moves with the removal.
# The counter is floored at 0: caches written before it existed are trimmed uncounted.
_TRIM = """
local removed = 0
for i = 2, #KEYS do
  removed = removed + redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', ARGV[i - 1])
end
if removed > 0 and redis.call('DECRBY', KEYS[1], removed) < 0 then
  redis.call('SET', KEYS[1], 0)
end
return removed
"""


# Entries one range of `senders_between` reads at most, the newest first: a device that
# catches up on a long gap would otherwise pull that many whole frames for a few ids.
SENDERS_SCAN_MAX = 500


class _Author(msgspec.Struct):
    """Who sent a cache member, if it is a text message: an event frame names its `event`,
    a system message its `type` (any other field is skipped unread)."""

    sender_id: uuid.UUID | None = None
    type: str = "text"
    event: str | None = None


class CachedSenders(msgspec.Struct, frozen=True):
    senders: set[UserId]
    # The lowest seq read in the range; below it the cache was not read (None: nothing was).
    lowest: int | None


_author_decoder = msgspec.json.Decoder(_Author)


class RecentCache:
    def __init__(self, redis: Redis, partitions: int) -> None:
        self._redis = redis
        self._partitions = partitions
        self._trim = LuaScript(redis, _TRIM)

    async def page(
        self, conversation_id: ConversationId, direction: Direction, bound: int | None, limit: int
    ) -> list[Message]:
        """Up to `limit` cached messages past `bound` (none: from the newest), in walking order."""
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

    async def senders_between(
        self, ranges: Sequence[tuple[ConversationId, int, int]]
    ) -> list[CachedSenders]:
        """For each (conversation, low, high), who sent the cached text messages with
        low < seq <= high, reading at most SENDERS_SCAN_MAX entries from the top, in one
        round trip."""
        if not ranges:
            return []
        async with self._redis.pipeline(transaction=False) as pipe:
            for conversation_id, low, high in ranges:
                key = keys.recent(conversation_id, self._partitions)
                pipe.zrevrangebyscore(
                    key, high, f"({low}", start=0, num=SENDERS_SCAN_MAX, withscores=True
                )
            results = await pipe.execute()
        found = []
        for entries in results:
            senders: set[UserId] = set()
            for member, _ in entries:
                author = _author_decoder.decode(member)
                if author.event is None and author.type == "text" and author.sender_id:
                    senders.add(UserId(author.sender_id))
            lowest = int(entries[-1][1]) if entries else None
            found.append(CachedSenders(senders, lowest))
        return found

    async def trim(self, partition: int, up_to: Mapping[uuid.UUID, int]) -> int:
        """Drop each conversation's cached messages with seq <= its bound; all of them must
        be in `partition`. Returns how many went."""
        if not up_to:
            return 0
        names = [keys.recent(c, self._partitions) for c in up_to]
        assert all(keys.partition_of(c, self._partitions) == partition for c in up_to)
        removed = await self._trim([keys.recent_held(partition), *names], list(up_to.values()))
        return int(removed)

    async def held(self) -> list[int]:
        """Messages the caches hold, per partition: one GET each (keys in different slots)."""
        counts = [await self._redis.get(keys.recent_held(p)) for p in range(self._partitions)]
        return [int(count or 0) for count in counts]

    async def used_memory(self) -> int:
        """Bytes Redis holds for everything, the caches and the streams included."""
        info = await self._redis.info("memory")
        return int(info["used_memory"])
