"""Opaque paging cursors: a small msgspec value, JSON-encoded, then base64url without padding.

Clients must treat a cursor as opaque; the server decodes only cursors of the type it
expects, so a cursor from one listing is refused by another."""

from __future__ import annotations

import base64
import binascii
from typing import TypeVar

import msgspec

from gochat_py.errors import BadRequest

T = TypeVar("T")
MAX_CURSOR_CHARS = 512  # every cursor we issue is far shorter; longer input is refused unread

_encoder = msgspec.json.Encoder()


def encode(value: object) -> str:
    return base64.urlsafe_b64encode(_encoder.encode(value)).rstrip(b"=").decode()


def decode(text: str, into: type[T]) -> T:
    """The cursor's value, or BadRequest `invalid_cursor` for anything we did not issue."""
    try:
        if len(text) > MAX_CURSOR_CHARS:
            raise ValueError("too long")
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        return msgspec.json.decode(raw, type=into)
    except (binascii.Error, ValueError, OverflowError, msgspec.DecodeError):
        raise BadRequest("cursor is not one this server issued", code="invalid_cursor") from None
