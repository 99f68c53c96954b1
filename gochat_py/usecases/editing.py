"""Editing and deleting messages, whichever door the request comes through.

An edit or a delete is an entry of the conversation's log (messages.MessageChange): it
takes the next seq, reaches every member's devices live as `message_updated` or
`message_deleted`, and the worker applies it to the stored message in log order. The
message is changed as it reads now (message_lookup.py).
"""

from __future__ import annotations

import msgspec

from gochat_py import times
from gochat_py.errors import Conflict, Forbidden, NotFound, ValidationFailed
from gochat_py.ids import ConversationId, MessageId, UserId
from gochat_py.messages import Message, MessageChange
from gochat_py.postgres.conversations import Conversations
from gochat_py.realtime.membership import Membership
from gochat_py.redis.publish import Publisher
from gochat_py.usecases.message_lookup import MessageLookup


class MessageNotFound(NotFound):
    code = "message_not_found"


class Editing:
    def __init__(
        self,
        membership: Membership,
        conversations: Conversations,
        lookup: MessageLookup,
        publisher: Publisher,
    ) -> None:
        self._membership = membership
        self._conversations = conversations
        self._lookup = lookup
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
            current,
            content="",
            deleted=True,
            edited_at=None,
            reply_to=None,
            mentions=None,
            media=None,
        )
        return await self._publisher.change(members, "message_deleted", tombstone)

    async def _current(
        self, conversation_id: ConversationId, message_id: MessageId, deleted_ok: bool = False
    ) -> Message:
        """The message as it reads now; MessageNotFound, and Conflict once deleted (unless
        `deleted_ok`); system messages are the group's record and stay as they are."""
        current = await self._lookup.current(conversation_id, message_id)
        if current is None:
            raise MessageNotFound("message not found")
        if current.type == "system":
            raise Forbidden("system messages cannot be changed", code="system_message")
        if current.deleted and not deleted_ok:
            raise Conflict("the message was deleted", code="message_deleted")
        return current
