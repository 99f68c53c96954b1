"""The `limit` and opaque `cursor` of the keyset-paged people listings (contacts, requests,
blocks): each page is newest first and ends at its last row's (time, id)."""

from __future__ import annotations

import uuid

import msgspec
from starlette.requests import Request

from gochat_py import cursors, times
from gochat_py.errors import BadRequest
from gochat_py.postgres.contacts import After
from gochat_py.rest import query

DEFAULT_LIMIT = 50
MAX_LIMIT = 100  # a page of people with their names: small rows, one index range


class Position(msgspec.Struct, frozen=True, array_like=True, forbid_unknown_fields=True):
    created_us: int
    id: uuid.UUID


def limit(request: Request) -> int:
    return query.limit(request, DEFAULT_LIMIT, MAX_LIMIT)


def after(request: Request) -> After | None:
    """Where the page the client names with `cursor` starts, or None for the first."""
    text = request.query_params.get("cursor")
    if text is None:
        return None
    position = cursors.decode(text, Position)
    try:
        return times.from_unix_us(position.created_us), position.id
    except (OverflowError, ValueError):
        raise BadRequest("cursor is not one this server issued", code="invalid_cursor") from None


def next_cursor(positions: list[After], limit: int) -> str | None:
    """The cursor of the page after one whose rows stood at `positions`; None when the page
    was not full, so nothing follows it (a full last page is followed by an empty one)."""
    if not positions or len(positions) < limit:
        return None
    created_at, last_id = positions[-1]
    return cursors.encode(Position(times.unix_us(created_at), last_id))
