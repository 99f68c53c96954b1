"""Showing conversations to a member: the list, one conversation, each as clients see it."""

from __future__ import annotations

import uuid
from datetime import datetime

from gochat_py import media, messages, times
from gochat_py.ids import ConversationId, UserId
from gochat_py.postgres.conversations import (
    UNREAD_CAP,
    Conversation,
    ConversationRow,
    Conversations,
    ConversationView,
)
from gochat_py.realtime.membership import NotAMember
from gochat_py.redis.recent import Pending, RecentCache

NOTHING_PENDING = Pending([], [])


class ConversationViews:
    def __init__(self, conversations: Conversations, recent: RecentCache) -> None:
        self._conversations = conversations
        self._recent = recent

    async def page(
        self, user: UserId, limit: int, before: tuple[datetime, uuid.UUID] | None
    ) -> tuple[list[ConversationView], ConversationRow | None]:
        """Up to `limit` of the user's conversations, most recently active first, and the
        row to continue after when there are more."""
        rows = await self._conversations.page(user, limit + 1, before)
        page = rows[:limit]
        return await self.present(user, page), page[-1] if len(rows) > limit else None

    async def one(self, user: UserId, conversation_id: ConversationId) -> ConversationView:
        """NotAMember for a conversation the user is not in, or that does not exist."""
        row = await self._conversations.one(user, conversation_id)
        if row is None:
            raise NotAMember("conversation not found")
        [conversation] = await self.present(user, [row])
        return conversation

    async def present(self, user: UserId, rows: list[ConversationRow]) -> list[ConversationView]:
        """Rows as clients see them, with what the worker has not persisted yet folded in."""
        ids = [ConversationId(row.id) for row in rows]
        participants = await self._conversations.participants(ids)
        floors = {ConversationId(r.id): r.last_seq for r in rows}
        pending = await self._recent.newer_than(floors, UNREAD_CAP)
        result = []
        for row in rows:
            newer, changes = pending.get(ConversationId(row.id), NOTHING_PENDING)
            unread_newer = sum(
                1
                for m in newer
                if m.sender_id != user and m.seq > row.last_read_seq and m.type != "system"
            )
            last_activity_at = max(
                [times.unix_ms(row.last_activity_at), *(m.sent_at for m in newer)]
            )
            last_message = newer[0] if newer else row.last_message
            if last_message is not None and changes:
                [last_message] = messages.apply_changes([last_message], changes)
            conversation = Conversation(
                id=row.id,
                type=row.kind,
                name=row.name,
                description=row.description,
                avatar_url=media.avatar_url(row.avatar_media_id),
                created_by=row.created_by,
                created_at=times.unix_ms(row.created_at),
                updated_at=last_activity_at,
                last_seq=max([row.last_seq, *(m.seq for m in newer), *(c.seq for c in changes)]),
                last_activity_at=last_activity_at,
            )
            result.append(
                ConversationView(
                    conversation=conversation,
                    participants=participants[ConversationId(row.id)],
                    last_message=last_message,
                    unread_count=min(UNREAD_CAP, row.unread_count + unread_newer),
                )
            )
        return result
