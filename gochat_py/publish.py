"""The send path's one Redis round trip: sequence, stream, recent cache, every member's channel."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

import msgspec
from redis.asyncio import Redis

from gochat_py import keys, messages
from gochat_py.ids import ConversationId, UserId, uuid7
from gochat_py.messages import Message

RECENT_CACHE_SIZE = 500  # read-your-writes holds while the worker is less than this far behind
IDEMPOTENCY_TTL = 24 * 3600  # a client retrying later than a day gets a new message
# Channel lists by member set: formatting a channel name per member per message was 8 %
# of a busy server's CPU (profiled). Past this many distinct member sets, start over.
CHANNEL_LISTS_MAX = 100_000

# One script, so that seq order equals stream order and a crash cannot leave a message
# published but not logged (or logged twice). The payload arrives encoded up to `"seq":`.
_SEND = """
local idem = ARGV[2] ~= ''
if idem then
  local prior = redis.call('GET', KEYS[3])
  if prior then return {0, prior} end
end
if redis.call('EXISTS', KEYS[1]) == 0 then
  if ARGV[4] == '' then return {-1} end
  local floor = tonumber(ARGV[4])
  local top = redis.call('ZREVRANGE', KEYS[2], 0, 0, 'WITHSCORES')
  if top[2] and tonumber(top[2]) > floor then floor = tonumber(top[2]) end
  redis.call('SET', KEYS[1], floor, 'NX')
end
local seq = redis.call('INCR', KEYS[1])
local payload = ARGV[1] .. seq .. '}'
redis.call('XADD', KEYS[4], '*', 'm', payload)
redis.call('ZADD', KEYS[2], seq, payload)
redis.call('ZREMRANGEBYRANK', KEYS[2], 0, -(tonumber(ARGV[3]) + 1))
for i = 5, #ARGV do redis.call('PUBLISH', ARGV[i], payload) end
if idem then redis.call('SET', KEYS[3], payload, 'EX', ARGV[2]) end
return {1, seq}
"""


class Sent(msgspec.Struct, frozen=True):
    message: Message
    duplicate: bool  # an earlier send with the same client_msg_id; nothing was published


class Publisher:
    def __init__(
        self,
        redis: Redis,
        partitions: int,
        highest_persisted_seq: Callable[[ConversationId], Awaitable[int]],
    ) -> None:
        self._partitions = partitions
        self._send = redis.register_script(_SEND)
        self._highest_persisted_seq = highest_persisted_seq
        self._channel_lists: dict[frozenset[UserId], list[str]] = {}

    async def send(
        self,
        conversation_id: ConversationId,
        members: frozenset[UserId],
        sender_id: UserId,
        sender_username: str,
        content: str,
        client_msg_id: str | None,
    ) -> Sent:
        now_ms = int(time.time() * 1000)
        draft = Message(
            id=uuid7(now_ms),
            conversation_id=conversation_id,
            sender_id=sender_id,
            sender_username=sender_username,
            content=content,
            type="text",
            sent_at=now_ms,
            client_msg_id=client_msg_id,
            seq=0,
        )
        p = self._partitions
        script_keys = [
            keys.sequence(conversation_id, p),
            keys.recent(conversation_id, p),
            keys.idempotency(conversation_id, p, sender_id, client_msg_id or "-"),
            keys.conversation_stream(conversation_id, p),
        ]
        head = [messages.encode_without_seq(draft), IDEMPOTENCY_TTL if client_msg_id else ""]
        channels = self._channels(members)
        status, *rest = await self._send(
            keys=script_keys, args=[*head, RECENT_CACHE_SIZE, "", *channels]
        )
        if status == -1:
            # The counter is gone (Redis lost its data): continue above what PostgreSQL
            # and the recent cache hold, never from 1.
            floor = await self._highest_persisted_seq(conversation_id)
            status, *rest = await self._send(
                keys=script_keys, args=[*head, RECENT_CACHE_SIZE, floor, *channels]
            )
        if status == 0:
            return Sent(message=messages.decode(rest[0]), duplicate=True)
        return Sent(message=msgspec.structs.replace(draft, seq=int(rest[0])), duplicate=False)

    def _channels(self, members: frozenset[UserId]) -> list[str]:
        # The membership cache hands out the same frozenset each time: its hash is cached
        # and equality is identity, so this lookup costs one dict probe.
        channels = self._channel_lists.get(members)
        if channels is None:
            if len(self._channel_lists) >= CHANNEL_LISTS_MAX:
                self._channel_lists.clear()
            channels = [keys.user_channel(member) for member in members]
            self._channel_lists[members] = channels
        return channels
