"""One message of a conversation as it reads now, wherever it is: stored, or still in the
recent cache only, with the edits and deletes PostgreSQL may not hold yet applied. Edits,
deletes and replies look messages up this way."""

from __future__ import annotations

from gochat_py import messages
from gochat_py.ids import ConversationId, MessageId, uuid7_time
from gochat_py.messages import Message
from gochat_py.postgres.messages import Messages
from gochat_py.redis.recent import RecentCache

# Clocks of API processes differ a little: the cache is read a minute further back than
# the id's own time.
CLOCK_SKEW_MS = 60_000


class MessageLookup:
    def __init__(self, stored: Messages, recent: RecentCache) -> None:
        self._stored = stored
        self._recent = recent

    async def current(
        self, conversation_id: ConversationId, message_id: MessageId
    ) -> Message | None:
        """The message as it reads now, or None when the conversation has no such message."""
        found = await self._stored.one(conversation_id, message_id)
        if found is None:
            made_at = uuid7_time(message_id)
            if made_at is None:  # the server makes UUIDv7 ids: anything else is nobody's
                return None
            found = await self._recent.find(conversation_id, message_id, made_at - CLOCK_SKEW_MS)
            if found is None:
                return None
        [current] = messages.apply_changes([found], await self._recent.changes_to(found))
        return current
