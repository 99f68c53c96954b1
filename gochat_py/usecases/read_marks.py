"""Marking a conversation read: the mark moves forward, every member's devices hear it, and
the member's delivered mark follows."""

from __future__ import annotations

from gochat_py.ids import ConversationId, UserId
from gochat_py.postgres.conversations import Conversations
from gochat_py.realtime.events import Announcer, ReadEvent
from gochat_py.realtime.membership import Membership
from gochat_py.usecases.delivery_marks import DeliveryMarks


class ReadMarks:
    def __init__(
        self,
        membership: Membership,
        conversations: Conversations,
        announcer: Announcer,
        delivery: DeliveryMarks,
    ) -> None:
        self._membership = membership
        self._conversations = conversations
        self._announcer = announcer
        self._delivery = delivery

    async def mark(self, user: UserId, conversation_id: ConversationId, seq: int) -> int:
        """The user's read mark now (never moved back); NotAMember for a stranger."""
        members = await self._membership.require(conversation_id, user)
        mark = await self._conversations.mark_read(user, conversation_id, seq)
        event = ReadEvent(conversation_id=conversation_id, user_id=user, seq=mark)
        # The reader's own other devices hear it too, so their unread badges clear.
        await self._announcer.to_members(conversation_id, members, event)
        await self._delivery.read(user, conversation_id, mark)
        return mark
