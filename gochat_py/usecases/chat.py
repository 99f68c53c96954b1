"""What a client's frames do: send a message, say it is typing, mark what it has read."""

from __future__ import annotations

from collections.abc import Iterable

import msgspec
from redis.asyncio import Redis

from gochat_py.ids import ConversationId, UserId
from gochat_py.metrics import Metrics
from gochat_py.postgres.conversations import Conversations
from gochat_py.realtime.membership import Membership, NotAMember
from gochat_py.redis import envelope, keys
from gochat_py.redis.publish import Publisher
from gochat_py.websocket import frames
from gochat_py.websocket.frames import (
    Ack,
    FrameError,
    Read,
    ReadEvent,
    SendMessage,
    Typing,
    TypingEvent,
)


class Chat:
    def __init__(
        self,
        membership: Membership,
        publisher: Publisher,
        conversations: Conversations,
        redis: Redis,
        metrics: Metrics,
        partitions: int,
    ) -> None:
        self._membership = membership
        self._publisher = publisher
        self._conversations = conversations
        self._redis = redis
        self._metrics = metrics
        self._partitions = partitions

    async def send(self, user: UserId, username: str, frame: SendMessage) -> Ack:
        conversation_id = ConversationId(frame.conversation_id)
        members = await self._members(conversation_id, user, frame.client_msg_id)
        sent = await self._publisher.send(
            conversation_id, members, user, username, frame.content, frame.client_msg_id
        )
        if not sent.duplicate:
            self._metrics.messages_sent.inc()
        message = sent.message
        return Ack(
            client_msg_id=message.client_msg_id,
            id=message.id,
            conversation_id=message.conversation_id,
            seq=message.seq,
            sent_at=message.sent_at,
            duplicate=sent.duplicate,
        )

    async def typing(self, user: UserId, username: str, frame: Typing) -> None:
        conversation_id = ConversationId(frame.conversation_id)
        members = await self._members(conversation_id, user)
        event = TypingEvent(conversation_id=conversation_id, user_id=user, username=username)
        await self._publish(conversation_id, event, (m for m in members if m != user))

    async def read(self, user: UserId, frame: Read) -> None:
        conversation_id = ConversationId(frame.conversation_id)
        members = await self._members(conversation_id, user)
        mark = await self._conversations.mark_read(user, conversation_id, frame.seq)
        event = ReadEvent(conversation_id=conversation_id, user_id=user, seq=mark)
        # The reader's own other devices hear it too, so their unread badges clear.
        await self._publish(conversation_id, event, members)

    async def _members(
        self, conversation_id: ConversationId, user: UserId, ref: str | None = None
    ) -> frozenset[UserId]:
        try:
            return await self._membership.require(conversation_id, user)
        except NotAMember:
            raise FrameError("conversation_not_found", "conversation not found", ref) from None

    async def _publish(
        self, conversation_id: ConversationId, event: msgspec.Struct, to: Iterable[UserId]
    ) -> None:
        channel = keys.conversation_channel(conversation_id, self._partitions)
        await self._redis.publish(channel, envelope.seal(to, frames.encode(event).encode()))
