"""Identifier types, so a user id cannot be passed where a conversation id is wanted."""

from __future__ import annotations

import uuid
from typing import NewType

UserId = NewType("UserId", uuid.UUID)
ConversationId = NewType("ConversationId", uuid.UUID)
MessageId = NewType("MessageId", uuid.UUID)
SessionId = NewType("SessionId", str)
