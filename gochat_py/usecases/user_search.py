"""Finding people by username or display name, best matches first, in keyset pages."""

from __future__ import annotations

import re

import msgspec

from gochat_py import cursors
from gochat_py.errors import ValidationFailed
from gochat_py.ids import UserId
from gochat_py.postgres.profiles import PublicProfile
from gochat_py.postgres.user_search import Position, UserSearch

MIN_QUERY = 2  # one character would match a large share of all users, and no index narrows it
MAX_QUERY = 64  # the longest display name: a longer query cannot match
DEFAULT_PAGE = 20
MAX_PAGE = 50
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


class SearchPage(msgspec.Struct, frozen=True):
    users: list[PublicProfile]  # the caller and those who blocked the caller are never listed
    next_cursor: str | None


def query(raw: str | None) -> str:
    """The search text: trimmed, 2 to 64 characters, no control characters."""
    q = (raw or "").strip()
    if len(q) < MIN_QUERY:
        raise ValidationFailed(
            f"q must have at least {MIN_QUERY} characters", code="query_too_short", field="q"
        )
    if len(q) > MAX_QUERY:
        raise ValidationFailed(
            f"q must have at most {MAX_QUERY} characters", code="invalid_query", field="q"
        )
    if _CONTROL.search(q):
        raise ValidationFailed(
            "q must not hold control characters", code="invalid_query", field="q"
        )
    return q


class PeopleSearch:
    def __init__(self, search: UserSearch) -> None:
        self._search = search

    async def page(
        self, caller: UserId, q: str | None, limit: int, cursor: str | None
    ) -> SearchPage:
        """A page of matches for `q` (see query()), after `cursor` if given."""
        after = cursors.decode(cursor, Position) if cursor is not None else None
        # One more than asked for tells whether another page follows.
        found = await self._search.page(caller, query(q), after, limit + 1)
        page = found[:limit]
        next_cursor = cursors.encode(page[-1].position) if len(found) > limit else None
        return SearchPage([f.profile for f in page], next_cursor)
