"""The send path's one Redis round trip: sequence, stream, recent cache, live channel."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable

import msgspec
from redis.asyncio import Redis

from gochat_py import messages, times
from gochat_py.errors import Backlogged
from gochat_py.ids import ConversationId, MessageId, UserId, uuid7
from gochat_py.media import MediaInfo
from gochat_py.messages import (
    ChangeEvent,
    LogEntry,
    Message,
    MessageChange,
    Quote,
    SentType,
    SystemEvent,
)
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

# One script, so that seq order equals stream order and a crash cannot leave an entry
# published but not logged (or logged twice). The payload arrives encoded up to `"seq":`.
# KEYS[2] is the recent cache the entry goes to (messages, or changes), KEYS[6] the other
# one, read only to re-seed a lost counter above both. The cache is not trimmed here: it
# holds every entry the worker has not persisted (read-your-writes however far behind), and
# the worker trims what it commits. ARGV[3] caps it: past that many, the send is refused
# before it takes a seq, so nothing acknowledged is ever dropped to keep Redis bounded.
# KEYS[5] counts what the partition's caches hold, for /metrics.
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
  for _, cache in ipairs({KEYS[2], KEYS[6]}) do
    local top = redis.call('ZREVRANGE', cache, 0, 0, 'WITHSCORES')
    if top[2] and tonumber(top[2]) > floor then floor = tonumber(top[2]) end
  end
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
    """Appends entries to conversations' logs: messages, system messages, edits, deletes."""

    def __init__(
        self,
        redis: Redis,
        partitions: int,
        highest_persisted_seq: Callable[[ConversationId], Awaitable[int]],
        *,
        recent_max: int,
        addressing: envelope.Addressing | None = None,
    ) -> None:
        """`recent_max`: the entries a conversation's recent cache may hold (RECENT_CACHE_MAX);
        `addressing`: when a frame names its recipients and when it says "routed" instead
        (without it, frames always name them)."""
        self._partitions = partitions
        self._addressing = addressing or envelope.Addressing(named_max=None)
        self._recent_max = recent_max
        self._send = LuaScript(redis, _SEND, Pipeliner(redis))
        self._highest_persisted_seq = highest_persisted_seq
        self._headers: dict[tuple[frozenset[UserId], str | None], bytes] = {}
        self._routed: dict[str | None, bytes] = {}
        self._names: dict[ConversationId, tuple[str, str, str, str, str, str]] = {}

    async def send(
        self,
        conversation_id: ConversationId,
        members: frozenset[UserId],
        sender_id: UserId,
        sender_username: str,
        content: str,
        client_msg_id: str | None,
        message_id: MessageId | None = None,
        *,
        system: SystemEvent | None = None,
        reply_to: Quote | None = None,
        mentions: list[uuid.UUID] | None = None,
        leaving: frozenset[UserId] = frozenset(),
        type: SentType = "text",
        media: MediaInfo | None = None,
    ) -> Sent:
        """`message_id`: the id to give the message, when the caller needs to know it
        before the message is published; by default a new one. With `system`, a system
        message; `leaving`: those who just left, who get it too and nothing after it."""
        now_ms = times.now_ms()
        draft = Message(
            id=message_id or uuid7(now_ms),
            conversation_id=conversation_id,
            sender_id=sender_id,
            sender_username=sender_username,
            content=content,
            type=type if system is None else "system",
            sent_at=now_ms,
            client_msg_id=client_msg_id,
            system=system,
            reply_to=reply_to,
            mentions=mentions,
            media=media,
            seq=0,
        )
        idempotency = ""
        if client_msg_id:
            idempotency = keys.idempotency(
                conversation_id, self._partitions, sender_id, client_msg_id
            )
        status, reply = await self._append(
            conversation_id, members, draft, None, idempotency, leaving
        )
        if status == 0:
            assert isinstance(reply, bytes)
            return Sent(message=messages.decode(reply), duplicate=True)
        return Sent(message=msgspec.structs.replace(draft, seq=int(reply)), duplicate=False)

    async def change(
        self, members: frozenset[UserId], event: ChangeEvent, changed: Message
    ) -> MessageChange:
        """Append an edit or a delete of `changed` (the message as it reads afterwards)."""
        draft = MessageChange(event=event, message=changed, changed_at=times.now_ms(), seq=0)
        conversation_id = ConversationId(changed.conversation_id)
        _, seq = await self._append(conversation_id, members, draft, event, "")
        return msgspec.structs.replace(draft, seq=int(seq))

    async def _append(
        self,
        conversation_id: ConversationId,
        members: frozenset[UserId],
        entry: LogEntry,
        event: str | None,
        idempotency: str,
        leaving: frozenset[UserId] = frozenset(),
    ) -> tuple[int, bytes | int]:
        """(1, the seq taken) or, for a repeated idempotency key, (0, the first payload)."""
        sequence, recent, changes, stream, channel, held = self._names_of(conversation_id)
        cache, other = (recent, changes) if event is None else (changes, recent)
        # An unused idempotency key still names a key of the conversation's slot.
        script_keys = [sequence, cache, idempotency or sequence, stream, held, other]
        head: list[bytes | str | int] = [
            messages.encode_without_seq(entry),
            IDEMPOTENCY_TTL if idempotency else "",
        ]
        tail: list[bytes | str | int] = [channel, self._header(members, event, leaving)]
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
                f"conversation {conversation_id} holds {self._recent_max} entries in Redis "
                "while they are stored; nothing was sent, resend with the same client_msg_id",
                retry_after=BACKLOGGED_RETRY_AFTER,
            )
        return int(status), rest[0]

    def _header(
        self, members: frozenset[UserId], event: str | None, leaving: frozenset[UserId]
    ) -> bytes:
        if leaving:
            return self._addressing.header(members, event, leaving=leaving)
        if self._addressing.routes(members):
            # A big group's header is the same few bytes whoever is in it: cached by event
            # alone, so no member set is hashed, and a membership change costs nothing here.
            header = self._routed.get(event)
            if header is None:
                header = self._routed[event] = envelope.routed_header(event)
            return header
        # The membership cache hands out the same frozenset each time: its hash is cached
        # and equality is identity, so this lookup costs one dict probe.
        header = self._headers.get((members, event))
        if header is None:
            if len(self._headers) >= NAMES_CACHE_MAX:
                self._headers.clear()
            header = self._headers[(members, event)] = envelope.header(members, event)
        return header

    def _names_of(self, conversation_id: ConversationId) -> tuple[str, str, str, str, str, str]:
        names = self._names.get(conversation_id)
        if names is None:
            if len(self._names) >= NAMES_CACHE_MAX:
                self._names.clear()
            p = self._partitions
            names = self._names[conversation_id] = (
                keys.sequence(conversation_id, p),
                keys.recent(conversation_id, p),
                keys.recent_changes(conversation_id, p),
                keys.conversation_stream(conversation_id, p),
                keys.conversation_channel(conversation_id, p),
                keys.recent_held(keys.partition_of(conversation_id, p)),
            )
        return names
