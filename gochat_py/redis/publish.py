"""The send path's one Redis round trip: sequence, stream, recent cache, live channel."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import msgspec
from redis.asyncio import Redis

from gochat_py import messages, times
from gochat_py.errors import Backlogged
from gochat_py.ids import ConversationId, MessageId, UserId, uuid7
from gochat_py.messages import Message
from gochat_py.redis import envelope, keys, stream_entries
from gochat_py.redis.pipelining import Pipeliner
from gochat_py.redis.scripts import LuaScript

IDEMPOTENCY_TTL = 24 * 3600  # a client retrying later than a day gets a new message
# Envelope headers by member set and key names by conversation: formatting them per
# message was 8 % of a busy server's CPU (profiled). Past this many entries, start over.
NAMES_CACHE_MAX = 100_000
# A refused send is tried again after this long: the worker commits ~50,000 rows/s when it
# runs, so a second frees plenty; when it is down, the client keeps its message meanwhile.
BACKLOGGED_RETRY_AFTER = 1.0

# One script, so that seq order equals stream order and a crash cannot leave a message
# published but not logged (or logged twice). The payload arrives encoded up to `"seq":`.
# The recent cache is not trimmed here: it holds every message the worker has not
# persisted (read-your-writes however far behind), and the worker trims what it commits.
# ARGV[3] caps it: past that many, the send is refused before it takes a seq, so nothing
# acknowledged is ever dropped to keep Redis bounded. KEYS[5] counts what the partition's
# caches hold, for /metrics.
_SEND = """
local idem = ARGV[2] ~= ''
if idem then
  local prior = redis.call('GET', KEYS[3])
  if prior then return {0, prior} end
end
if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[3]) then return {-2} end
if redis.call('EXISTS', KEYS[1]) == 0 then
  if ARGV[4] == '' then return {-1} end
  local floor = tonumber(ARGV[4])
  local top = redis.call('ZREVRANGE', KEYS[2], 0, 0, 'WITHSCORES')
  if top[2] and tonumber(top[2]) > floor then floor = tonumber(top[2]) end
  redis.call('SET', KEYS[1], floor, 'NX')
end
local seq = redis.call('INCR', KEYS[1])
local payload = ARGV[1] .. seq .. '}'
redis.call('XADD', KEYS[4], '*', '@PAYLOAD_FIELD@', payload)
redis.call('INCRBY', KEYS[5], redis.call('ZADD', KEYS[2], seq, payload))
redis.call('PUBLISH', ARGV[5], ARGV[6] .. payload)
if idem then redis.call('SET', KEYS[3], payload, 'EX', ARGV[2]) end
return {1, seq}
""".replace("@PAYLOAD_FIELD@", stream_entries.PAYLOAD_FIELD)


class Sent(msgspec.Struct, frozen=True):
    message: Message
    duplicate: bool  # an earlier send with the same client_msg_id; nothing was published


class Publisher:
    def __init__(
        self,
        redis: Redis,
        partitions: int,
        highest_persisted_seq: Callable[[ConversationId], Awaitable[int]],
        *,
        recent_max: int,
    ) -> None:
        """`recent_max`: the messages a conversation's recent cache may hold (RECENT_CACHE_MAX)."""
        self._partitions = partitions
        self._recent_max = recent_max
        self._send = LuaScript(redis, _SEND, Pipeliner(redis))
        self._highest_persisted_seq = highest_persisted_seq
        self._headers: dict[frozenset[UserId], bytes] = {}
        self._names: dict[ConversationId, tuple[str, str, str, str, str]] = {}

    async def send(
        self,
        conversation_id: ConversationId,
        members: frozenset[UserId],
        sender_id: UserId,
        sender_username: str,
        content: str,
        client_msg_id: str | None,
        message_id: MessageId | None = None,
    ) -> Sent:
        """`message_id`: the id to give the message, when the caller needs to know it
        before the message is published; by default a new one."""
        now_ms = times.now_ms()
        draft = Message(
            id=message_id or uuid7(now_ms),
            conversation_id=conversation_id,
            sender_id=sender_id,
            sender_username=sender_username,
            content=content,
            type="text",
            sent_at=now_ms,
            client_msg_id=client_msg_id,
            seq=0,
        )
        sequence, recent, stream, channel, held = self._names_of(conversation_id)
        idempotency = keys.idempotency(
            conversation_id, self._partitions, sender_id, client_msg_id or "-"
        )
        script_keys = [sequence, recent, idempotency, stream, held]
        head: list[bytes | str | int] = [
            messages.encode_without_seq(draft),
            IDEMPOTENCY_TTL if client_msg_id else "",
        ]
        tail: list[bytes | str | int] = [channel, self._header(members)]
        status, *rest = await self._send(
            keys=script_keys, args=[*head, self._recent_max, "", *tail]
        )
        if status == -1:
            # The counter is gone (Redis lost its data): continue above what PostgreSQL
            # and the recent cache hold, never from 1.
            floor = await self._highest_persisted_seq(conversation_id)
            status, *rest = await self._send(
                keys=script_keys, args=[*head, self._recent_max, floor, *tail]
            )
        if status == -2:
            raise Backlogged(
                f"conversation {conversation_id} holds {self._recent_max} messages in Redis "
                "while they are stored; nothing was sent, resend with the same client_msg_id",
                retry_after=BACKLOGGED_RETRY_AFTER,
            )
        if status == 0:
            return Sent(message=messages.decode(rest[0]), duplicate=True)
        return Sent(message=msgspec.structs.replace(draft, seq=int(rest[0])), duplicate=False)

    def _header(self, members: frozenset[UserId]) -> bytes:
        # The membership cache hands out the same frozenset each time: its hash is cached
        # and equality is identity, so this lookup costs one dict probe.
        header = self._headers.get(members)
        if header is None:
            if len(self._headers) >= NAMES_CACHE_MAX:
                self._headers.clear()
            header = self._headers[members] = envelope.header(members)
        return header

    def _names_of(self, conversation_id: ConversationId) -> tuple[str, str, str, str, str]:
        names = self._names.get(conversation_id)
        if names is None:
            if len(self._names) >= NAMES_CACHE_MAX:
                self._names.clear()
            p = self._partitions
            names = self._names[conversation_id] = (
                keys.sequence(conversation_id, p),
                keys.recent(conversation_id, p),
                keys.conversation_stream(conversation_id, p),
                keys.conversation_channel(conversation_id, p),
                keys.recent_held(keys.partition_of(conversation_id, p)),
            )
        return names
