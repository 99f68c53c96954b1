"""Sending a message, whoever sends it: a socket, a REST call, or the server itself."""

from __future__ import annotations

from gochat_py.errors import ValidationFailed
from gochat_py.ids import ConversationId, MessageId, UserId
from gochat_py.metrics import Metrics
from gochat_py.realtime.membership import Membership
from gochat_py.redis.publish import Publisher, Sent


class Sending:
    def __init__(self, membership: Membership, publisher: Publisher, metrics: Metrics) -> None:
        self._membership = membership
        self._publisher = publisher
        self._metrics = metrics

    async def send(
        self,
        sender: UserId,
        sender_username: str,
        conversation_id: ConversationId,
        content: str,
        client_msg_id: str | None = None,
        message_id: MessageId | None = None,
    ) -> Sent:
        """The message as stored and delivered, once it is durable in the stream.

        NotAMember (404) for a conversation the sender is not in, Blocked or NotAContact
        (403) in a direct conversation the sender may not write to now (direct_policy.py,
        decided from the membership cache: no extra round trip), ValidationFailed for a
        blank message; a resend with the same `client_msg_id` returns the first send's
        message marked duplicate and delivers nothing.
        """
        # Length is the door's schema (messages.Content); blankness no schema can say.
        if not content.strip():
            raise ValidationFailed(
                "content must not be blank", code="empty_content", field="content"
            )
        members = await self._membership.require_sender(conversation_id, sender)
        sent = await self._publisher.send(
            conversation_id, members, sender, sender_username, content, client_msg_id, message_id
        )
        if not sent.duplicate:
            self._metrics.messages_sent.inc()
        return sent
