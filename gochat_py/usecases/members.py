"""Starting conversations and changing who is in them; every change is announced to every
server process, so delivery follows it at once (realtime/membership.py)."""

from __future__ import annotations

import uuid

from gochat_py.ids import ConversationId, UserId
from gochat_py.postgres.conversations import Conversations
from gochat_py.realtime.membership import Membership, MembershipChange, NotAMember


class Members:
    def __init__(self, conversations: Conversations, membership: Membership) -> None:
        self._conversations = conversations
        self._membership = membership

    async def start_direct(self, creator: UserId, other: UserId) -> tuple[ConversationId, bool]:
        """The pair's one direct conversation, and whether this call created it."""
        conversation_id, created = await self._conversations.create_direct(creator, other)
        if created:
            await self._announce(conversation_id, added=[creator, other])
        return conversation_id, created

    async def start_group(
        self, creator: UserId, name: str, participant_ids: list[uuid.UUID]
    ) -> ConversationId:
        conversation_id = await self._conversations.create_group(creator, name, participant_ids)
        # The creator may list themself too.
        joined = {creator, *(UserId(p) for p in participant_ids)}
        await self._announce(conversation_id, added=list(joined))
        return conversation_id

    async def add(
        self, actor: UserId, conversation_id: ConversationId, user_ids: list[uuid.UUID]
    ) -> list[UserId]:
        """Those newly added (owner or admin only)."""
        added = await self._conversations.add_members(actor, conversation_id, user_ids)
        await self._announce(conversation_id, added=added)
        return added

    async def remove(self, actor: UserId, conversation_id: ConversationId, user: UserId) -> None:
        """Leave a group, or remove someone from it as its owner or an admin."""
        if not await self._conversations.remove_member(actor, conversation_id, user):
            raise NotAMember("conversation not found")
        await self._announce(conversation_id, removed=[user])

    async def _announce(
        self,
        conversation_id: ConversationId,
        added: list[UserId] | None = None,
        removed: list[UserId] | None = None,
    ) -> None:
        change = MembershipChange(
            conversation_id, added=sorted(added or []), removed=sorted(removed or [])
        )
        await self._membership.announce_change(change)
