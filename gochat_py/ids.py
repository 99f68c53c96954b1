"""Identifier types, so a user id cannot be passed where a conversation id is wanted,
and time-ordered UUIDv7 ids for new rows."""

from __future__ import annotations

import hashlib
import os
import uuid
from typing import NewType

from gochat_py import times

UserId = NewType("UserId", uuid.UUID)
ConversationId = NewType("ConversationId", uuid.UUID)
MessageId = NewType("MessageId", uuid.UUID)
SessionId = NewType("SessionId", str)


def uuid7(unix_ms: int | None = None) -> uuid.UUID:
    """A UUIDv7 (RFC 9562): 48-bit millisecond time, then random bits.

    Time-ordered ids keep the primary-key index append-mostly under heavy inserts.
    """
    ms = times.now_ms() if unix_ms is None else unix_ms
    return _uuid7(ms, int.from_bytes(os.urandom(10), "big"))


def uuid7_of(unix_ms: int, *parts: uuid.UUID | str) -> uuid.UUID:
    """A UUIDv7 whose random bits are a hash of `parts`: the same parts and time always
    give the same id, so an event made twice (a redelivered batch) carries one id."""
    digest = hashlib.sha256(b"".join(str(part).encode() + b"\0" for part in parts)).digest()
    return _uuid7(unix_ms, int.from_bytes(digest[:10], "big"))


def uuid7_time(value: uuid.UUID) -> int | None:
    """The unix ms a UUIDv7 was made at; None for any other kind of id."""
    return value.int >> 80 if value.version == 7 else None


def _uuid7(ms: int, rand: int) -> uuid.UUID:
    value = (ms & 0xFFFF_FFFF_FFFF) << 80
    value |= 0x7 << 76  # version
    value |= ((rand >> 62) & 0xFFF) << 64  # rand_a, 12 bits
    value |= 0b10 << 62  # variant
    value |= rand & 0x3FFF_FFFF_FFFF_FFFF  # rand_b, 62 bits
    return uuid.UUID(int=value)
