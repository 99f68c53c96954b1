"""Sending a message, whoever sends it: a socket, a REST call, or the server itself."""

from __future__ import annotations

import uuid

from gochat_py import messages
from gochat_py.errors import ValidationFailed
from gochat_py.ids import ConversationId, MessageId, UserId, uuid7
from gochat_py.messages import Quote, SentType
from gochat_py.metrics import Metrics
from gochat_py.realtime.membership import Membership
from gochat_py.redis.publish import Publisher, Sent
from gochat_py.usecases.attachments import Attachments
from gochat_py.usecases.mentions import Mentions
from gochat_py.usecases.message_lookup import MessageLookup


class ReplyNotFound(ValidationFailed):
    """The same answer for an unknown id, a malformed one and another conversation's
    message: a reply reveals nothing of conversations the sender is not in."""

    code = "reply_not_found"


class Sending:
    def __init__(
        self,
        membership: Membership,
        publisher: Publisher,
        metrics: Metrics,
        lookup: MessageLookup,
        mentions: Mentions,
        attachments: Attachments,
    ) -> None:
        self._membership = membership
        self._publisher = publisher
        self._metrics = metrics
        self._lookup = lookup
        self._mentions = mentions
        self._attachments = attachments

    async def send(
        self,
        sender: UserId,
        sender_username: str,
        conversation_id: ConversationId,
        content: str,
        client_msg_id: str | None = None,
        message_id: MessageId | None = None,
        reply_to: str | None = None,
        type: SentType = "text",
        media_id: uuid.UUID | None = None,
    ) -> Sent:
        """The message as stored and delivered, once it is durable in the stream.

        NotAMember (404) for a conversation the sender is not in, Blocked or NotAContact
        (403) in a direct conversation the sender may not write to now (direct_policy.py,
        decided from the membership cache: no extra round trip), ValidationFailed for a
        blank message, ReplyNotFound when `reply_to` is not the id of a message of this
        conversation; a resend with the same `client_msg_id` returns the first send's
        message marked duplicate and delivers nothing. `@username`s of members become
        `mentions`, each of whom is notified. An image or a file carries `media_id`, an
        upload of the sender's (MediaNotFound otherwise, usecases/attachments.py), which
        the conversation's members may read from then on; `content` is its caption, maybe
        empty.
        """
        _check_kind(type, content, media_id)
        members = await self._membership.require_sender(conversation_id, sender)
        media = None
        if media_id is not None:
            message_id = message_id or MessageId(uuid7())
        try:
            if media_id is not None and message_id is not None:
                media = await self._attachments.post(
                    type, media_id, sender, conversation_id, message_id
                )
            quoted = None if reply_to is None else await self._quote(conversation_id, reply_to)
            # A message without '@' names nobody: this one test is all it pays, no lookup.
            mentioned = None
            if "@" in content:
                mentioned = await self._mentions.resolve(conversation_id, members, sender, content)
            sent = await self._publisher.send(
                conversation_id,
                members,
                sender,
                sender_username,
                content,
                client_msg_id,
                message_id,
                reply_to=quoted,
                mentions=mentioned,
                type=type,
                media=media,
            )
        except BaseException:
            # Posted before the send so that a recipient fetching the image on the live
            # frame finds it readable; a send refused or failed after the post (not an
            # image, an unknown reply, the send script) posted nothing. Should the script
            # have run after all (an answer lost in an outage), the worker posts the
            # media again when it stores the message (worker/media_uses.py).
            if media_id is not None and message_id is not None:
                await self._attachments.unpost(message_id)
            raise
        if media is not None and message_id is not None and sent.message.id != message_id:
            # A resend answered with the first send's message: this send's post is unused.
            await self._attachments.unpost(message_id)
        if not sent.duplicate:
            self._metrics.messages_sent.inc()
            if mentioned:
                await self._mentions.notify(sent.message)
        return sent

    async def _quote(self, conversation_id: ConversationId, reply_to: str) -> Quote:
        try:
            message_id = MessageId(uuid.UUID(reply_to))
        except ValueError:
            message_id = None
        found = None
        if message_id is not None:
            found = await self._lookup.current(conversation_id, message_id)
        if found is None:
            raise ReplyNotFound("reply_to is not a message of this conversation", field="reply_to")
        # A deleted message may be answered: the quote says it was deleted.
        return messages.quote(found)


def _check_kind(type: SentType, content: str, media_id: uuid.UUID | None) -> None:
    """Text needs words and no media; an image or a file needs a media, words optional.
    Length is the door's schema (messages.Content); blankness no schema can say."""
    if type == "text":
        if media_id is not None:
            raise ValidationFailed(
                'a text message carries no media_id: send type "image" or "file"',
                code="unexpected_media",
                field="media_id",
            )
        if not content.strip():
            raise ValidationFailed(
                "content must not be blank", code="empty_content", field="content"
            )
    elif media_id is None:
        raise ValidationFailed(
            f"a {type} message needs the media_id of an upload",
            code="missing_media",
            field="media_id",
        )
