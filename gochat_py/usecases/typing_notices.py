"""Telling a conversation's other members that someone is typing."""

from __future__ import annotations

from gochat_py.ids import ConversationId, UserId
from gochat_py.realtime.events import Announcer, TypingEvent
from gochat_py.realtime.membership import Membership


class TypingNotices:
    def __init__(self, membership: Membership, announcer: Announcer) -> None:
        self._membership = membership
        self._announcer = announcer

    async def notify(self, user: UserId, username: str, conversation_id: ConversationId) -> None:
        """NotAMember for a stranger, the send refusal (direct_policy.py) for a member who
        may not write there now; the typist's own devices are not told."""
        members = await self._membership.require_sender(conversation_id, user)
        event = TypingEvent(conversation_id=conversation_id, user_id=user, username=username)
        await self._announcer.to_members(conversation_id, members, event, excluding=[user])
