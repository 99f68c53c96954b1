"""The webhook event as it travels: made for a user with no open socket, queued in the
webhook stream already encoded, and POSTed byte for byte as it was signed.

Its id is derived from what it reports and whom it is for (`ids.uuid7_of`), so an event
queued twice (a batch the worker persisted twice) still carries one id for the receiver
to deduplicate by."""

from __future__ import annotations

import uuid
from typing import Literal

import msgspec

from gochat_py import ids, times
from gochat_py.notifications import Notification

WebhookType = Literal["message", "notification"]


class MessageWebhook(msgspec.Struct, frozen=True, kw_only=True):
    """A message reached a member who has no open socket."""

    id: uuid.UUID  # the event's id: the receiver's deduplication key
    type: Literal["message"] = "message"
    user_id: uuid.UUID  # the recipient
    # The message frame exactly as the members' sockets get it (messages.py), not re-encoded.
    message: msgspec.Raw
    created_at: int  # unix milliseconds: when the event was made


class NotificationWebhook(msgspec.Struct, frozen=True, kw_only=True):
    """A notification was made for a user who has no open socket."""

    id: uuid.UUID
    type: Literal["notification"] = "notification"
    user_id: uuid.UUID
    notification: Notification
    created_at: int


WebhookEvent = MessageWebhook | NotificationWebhook

_encoder = msgspec.json.Encoder()


def for_message(
    recipient: uuid.UUID, message_id: uuid.UUID, frame: bytes, sent_at: int
) -> MessageWebhook:
    """The event for one offline member; `frame` is the message as the stream holds it."""
    return MessageWebhook(
        id=ids.uuid7_of(sent_at, "message", message_id, recipient),
        user_id=recipient,
        message=msgspec.Raw(frame),
        created_at=times.now_ms(),
    )


def for_notification(recipient: uuid.UUID, notification: Notification) -> NotificationWebhook:
    return NotificationWebhook(
        id=ids.uuid7_of(notification.created_at, "notification", notification.id, recipient),
        user_id=recipient,
        notification=notification,
        created_at=times.now_ms(),
    )


def encode(event: WebhookEvent) -> bytes:
    """The body the receiver gets, and the bytes its signature covers."""
    return _encoder.encode(event)
