"""Editing and deleting messages, whichever door the request comes through.

An edit or a delete is an entry of the conversation's log (messages.MessageChange): it
takes the next seq, reaches every member's devices live as `message_updated` or
`message_deleted`, and the worker applies it to the stored message in log order. The
message is looked up as it reads now: stored, or still in the recent cache, with the
changes PostgreSQL may not hold yet applied.
"""

from __future__ import annotations

import msgspec

from gochat_py import messages, times
from gochat_py.errors import Conflict, Forbidden, NotFound, ValidationFailed
from gochat_py.ids import ConversationId, MessageId, UserId, uuid7_time
from gochat_py.messages import Message, MessageChange
from gochat_py.postgres.conversations import Conversations
from gochat_py.postgres.messages import Messages
from gochat_py.realtime.membership import Membership
from gochat_py.redis.publish import Publisher
from gochat_py.redis.recent import RecentCache

CLOCK_SKEW_MS = 60_000


class MessageNotFound(NotFound):
    code = "message_not_found"


class Editing:
    def __init__(
        self,
        membership: Membership,
        conversations: Conversations,
        stored: Messages,
        recent: RecentCache,
        publisher: Publisher,
    ) -> None:
        self._membership = membership
        self._conversations = conversations
        self._stored = stored
        self._recent = recent
        self._publisher = publisher

    async def edit(
        self, editor: UserId, conversation_id: ConversationId, message_id: MessageId, content: str
    ) -> MessageChange:
        """The sender alone edits, where they may still send (a block or a contacts-only
        policy stops edits as it stops messages)."""
        if not content.strip():
            raise ValidationFailed(
                "content must not be blank", code="empty_content", field="content"
            )
        members = await self._membership.require_sender(conversation_id, editor)
        current = await self._current(conversation_id, message_id)
        if current.sender_id != editor:
            raise Forbidden("only its sender can edit a message", code="not_the_sender")
        edited = msgspec.structs.replace(current, content=content, edited_at=times.now_ms())
        return await self._publisher.change(members, "message_updated", edited)

    async def delete(
        self, actor: UserId, conversation_id: ConversationId, message_id: MessageId
    ) -> MessageChange | None:
        """The sender deletes, or an owner or admin of a group; None when it was deleted
        already (deleting is idempotent)."""
        members = await self._membership.require(conversation_id, actor)
        current = await self._current(conversation_id, message_id, deleted_ok=True)
        if current.deleted:
            return None
        if current.sender_id != actor and not await self._conversations.manages(
            conversation_id, actor
        ):
            raise Forbidden(
                "only its sender, or a group's owner or admin, can delete a message",
                code="not_the_sender",
            )
        tombstone = msgspec.structs.replace(
            current, content="", deleted=True, edited_at=None, reply_to=None, mentions=None
        )
        return await self._publisher.change(members, "message_deleted", tombstone)

    async def _current(
        self, conversation_id: ConversationId, message_id: MessageId, deleted_ok: bool = False
    ) -> Message:
        """The message as it reads now; MessageNotFound, and Conflict once deleted (unless
        `deleted_ok`); system messages are the group's record and stay as they are."""
        found = await self._stored.one(conversation_id, message_id)
        if found is None:
            made_at = uuid7_time(message_id)
            if made_at is not None:  # server-made ids are; anything else is nobody's
                # Clocks of API processes differ a little: look a minute further back.
                found = await self._recent.find(
                    conversation_id, message_id, made_at - CLOCK_SKEW_MS
                )
        if found is None:
            raise MessageNotFound("message not found")
        changes = await self._recent.changes_to(found)
        [current] = messages.apply_changes([found], changes)
        if current.type == "system":
            raise Forbidden("system messages cannot be changed", code="system_message")
        if current.deleted and not deleted_ok:
            raise Conflict("the message was deleted", code="message_deleted")
        return current
