"""The recent cache: reading what PostgreSQL may lack yet, trimming what it holds,
counting what the caches hold, and who sent the messages of a seq range.

The send script adds every message to its conversation's cache, and every edit and delete
to the conversation's changes, and counts each in the partition's held counter
(publish.py); nothing but `trim` removes one, so the caches hold every entry not yet
persisted. The worker decides how far trimming is safe.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import NamedTuple

import msgspec
from redis.asyncio import Redis

from gochat_py import messages
from gochat_py.ids import ConversationId, UserId
from gochat_py.messages import Direction, Message, MessageChange
from gochat_py.redis import keys
from gochat_py.redis.scripts import LuaScript

# KEYS[1] the partition's held counter, KEYS[2..] recent caches and changes of that
# partition, ARGV[i] the highest seq to drop from KEYS[i + 1]. By score, so a repeat (a
# redelivered batch, two workers) removes nothing more; one script, so the counter moves
# with the removal. The counter is floored at 0: caches written before it existed are
# trimmed uncounted.
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

# A deleted conversation's keys: KEYS[1] the partition's held counter, KEYS[2] and KEYS[3]
# its recent cache and changes, KEYS[4] its seq counter. One script, so the counter drops
# by what the caches held; a repeat finds nothing and changes nothing.
_ERASE = """
local held = redis.call('ZCARD', KEYS[2]) + redis.call('ZCARD', KEYS[3])
redis.call('DEL', KEYS[2], KEYS[3], KEYS[4])
if held > 0 and redis.call('DECRBY', KEYS[1], held) < 0 then
  redis.call('SET', KEYS[1], 0)
end
return held
"""

FIND_CHUNK = 256
# Where a change's message id ends, at the latest: `{"event":"message_updated","message":
# {"id":"<36>"`.
_CHANGE_HEAD = 100


class Pending(NamedTuple):
    """What a conversation's caches hold: messages, and changes in log order."""

    messages: list[Message]
    changes: list[MessageChange]


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
        self._erase = LuaScript(redis, _ERASE)

    async def page(
        self, conversation_id: ConversationId, direction: Direction, bound: int | None, limit: int
    ) -> Pending:
        """Up to `limit` cached messages past `bound` (none: from the newest), in walking
        order, and every cached change, in one round trip: the changes to a page's messages
        can lie anywhere above them, and the caches hold few once the worker keeps up."""
        key = keys.recent(conversation_id, self._partitions)
        async with self._redis.pipeline(transaction=False) as pipe:
            if direction == "before":
                top = f"({bound}" if bound is not None else "+inf"
                pipe.zrevrangebyscore(key, top, "-inf", start=0, num=limit)
            else:
                pipe.zrangebyscore(key, f"({bound}", "+inf", start=0, num=limit)
            pipe.zrange(keys.recent_changes(conversation_id, self._partitions), 0, -1)
            found, changes = await pipe.execute()
        return Pending(
            [messages.decode(item) for item in found],
            [messages.decode_change(item) for item in changes],
        )

    async def changes_above(self, conversation_id: ConversationId, seq: int) -> list[MessageChange]:
        """The cached edits and deletes with a seq above `seq`, in log order: every change
        to a message at or above `seq` that PostgreSQL may lack (a change always comes
        after its message, and is trimmed after it)."""
        key = keys.recent_changes(conversation_id, self._partitions)
        raw = await self._redis.zrangebyscore(key, f"({seq}", "+inf")
        return [messages.decode_change(item) for item in raw]  # type: ignore[arg-type]

    async def changes_to(self, message: Message) -> list[MessageChange]:
        """The cached changes to `message`, in log order: among those after it (a change
        always comes after its message), the ones naming it, found without decoding."""
        key = keys.recent_changes(message.conversation_id, self._partitions)
        raw: list[bytes] = await self._redis.zrangebyscore(  # type: ignore[assignment]
            key, f"({message.seq}", "+inf"
        )
        # A change's encoding starts with its event, then its message's id (MessageChange).
        named = b'"message":{"id":"' + str(message.id).encode()
        return [messages.decode_change(item) for item in raw if named in item[:_CHANGE_HEAD]]

    async def find(
        self, conversation_id: ConversationId, message_id: uuid.UUID, sent_after: int
    ) -> Message | None:
        """The message, if the conversation's cache holds it. The cache has no index by id:
        it is read from the newest down, FIND_CHUNK entries a round trip, until the message
        or one sent before `sent_after` (unix ms) turns up; an edit of a recent message
        reads one chunk."""
        key = keys.recent(conversation_id, self._partitions)
        # A message's encoding starts with its id (messages.Message): no decoding to look.
        start = b'{"id":"' + str(message_id).encode()
        position = 0
        while True:
            chunk: list[bytes] = await self._redis.zrevrange(  # type: ignore[assignment]
                key, position, position + FIND_CHUNK - 1
            )
            for item in chunk:
                if item.startswith(start):
                    return messages.decode(item)
            if len(chunk) < FIND_CHUNK or messages.decode(chunk[-1]).sent_at < sent_after:
                return None
            position += FIND_CHUNK

    async def newer_than(
        self, floors: dict[ConversationId, int], limit: int
    ) -> dict[ConversationId, Pending]:
        """Per conversation, the cached messages above a seq (what PostgreSQL lacks yet),
        newest first, and the cached changes above it, in one round trip."""
        if not floors:
            return {}
        async with self._redis.pipeline(transaction=False) as pipe:
            for conversation_id, floor in floors.items():
                key = keys.recent(conversation_id, self._partitions)
                pipe.zrevrangebyscore(key, "+inf", f"({floor}", start=0, num=limit)
                changes = keys.recent_changes(conversation_id, self._partitions)
                pipe.zrangebyscore(changes, f"({floor}", "+inf")
            results = await pipe.execute()
        return {
            conversation_id: Pending(
                [messages.decode(item) for item in results[2 * i]],
                [messages.decode_change(item) for item in results[2 * i + 1]],
            )
            for i, conversation_id in enumerate(floors)
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
        names, bounds = [], []
        for conversation_id, bound in up_to.items():
            assert keys.partition_of(conversation_id, self._partitions) == partition
            names += [
                keys.recent(conversation_id, self._partitions),
                keys.recent_changes(conversation_id, self._partitions),
            ]
            bounds += [bound, bound]
        removed = await self._trim([keys.recent_held(partition), *names], bounds)
        return int(removed)

    async def erase(self, conversation_id: uuid.UUID) -> int:
        """Drop a deleted conversation's caches and seq counter; how many entries went. Its
        idempotency keys are left to expire (IDEMPOTENCY_TTL): finding them needs a SCAN."""
        p = self._partitions
        removed = await self._erase(
            [
                keys.recent_held(keys.partition_of(conversation_id, p)),
                keys.recent(conversation_id, p),
                keys.recent_changes(conversation_id, p),
                keys.sequence(conversation_id, p),
            ]
        )
        return int(removed)

    async def held(self) -> list[int]:
        """Messages the caches hold, per partition: one GET each (keys in different slots)."""
        counts = [await self._redis.get(keys.recent_held(p)) for p in range(self._partitions)]
        return [int(count or 0) for count in counts]

    async def used_memory(self) -> int:
        """Bytes Redis holds for everything, the caches and the streams included."""
        info = await self._redis.info("memory")
        return int(info["used_memory"])
