"""A notification as it travels: the stored row, the REST item and the live frame's payload
are one Struct, and what each type carries in `data` is a Struct of its own."""

from __future__ import annotations

import uuid
from typing import Any, Literal

import msgspec

# Every kind of notification there is; a new kind is a new name here and a data Struct.
NotificationType = Literal[
    "contact_request",
    "contact_accepted",
    "added_to_conversation",
    "removed_from_conversation",
    "mention",
]


class ConversationNotice(msgspec.Struct, frozen=True, kw_only=True):
    """The data of `added_to_conversation` and `removed_from_conversation`."""

    conversation_id: uuid.UUID
    conversation_name: str | None


class ContactNotice(msgspec.Struct, frozen=True, kw_only=True):
    """The data of `contact_request` and `contact_accepted`: the request concerned."""

    request_id: uuid.UUID


class MentionNotice(msgspec.Struct, frozen=True, kw_only=True):
    """The data of `mention`: the message that named the recipient with @username."""

    conversation_id: uuid.UUID
    conversation_name: str | None  # None for a direct conversation
    message_id: uuid.UUID
    seq: int
    preview: str  # the message's first characters, as a reply quotes them


# What `data` may be when a notification is made; it is stored as given (JSON).
NotificationData = ConversationNotice | ContactNotice | MentionNotice


class Actor(msgspec.Struct, frozen=True):
    """Who caused the notification, as anyone may see them: no email."""

    id: uuid.UUID
    username: str


class Notification(msgspec.Struct, frozen=True, kw_only=True):
    """One notification, as its recipient sees it on every door."""

    id: uuid.UUID
    type: NotificationType
    actor: Actor | None  # None: the server itself, or an account since deleted
    # The type's data Struct as stored: {conversation_id, conversation_name} for the
    # conversation types, {request_id} for the contact types, and for `mention`
    # {conversation_id, conversation_name, message_id, seq, preview}.
    data: dict[str, Any]
    created_at: int  # unix milliseconds
    read_at: int | None  # unix milliseconds; None while unread
