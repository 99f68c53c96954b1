"""Finding people by username or display name, best matches first, in keyset pages."""

from __future__ import annotations

import re

import msgspec

from gochat_py import cursors
from gochat_py.errors import ValidationFailed
from gochat_py.ids import UserId
from gochat_py.postgres.profiles import PublicProfile
from gochat_py.postgres.user_search import Position, Searched, UserSearch

MIN_QUERY = 2  # one character would match a large share of all users, and no index narrows it
MAX_QUERY = 64  # the longest display name: a longer query cannot match
DEFAULT_PAGE = 20
MAX_PAGE = 50
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


class SearchPage(msgspec.Struct, frozen=True):
    users: list[PublicProfile]  # the caller and those who blocked the caller are never listed
    # None once every match was listed. A page may be short, even empty, and still have one:
    # each request reads a bounded stretch of each index (postgres/user_search.py).
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
        searched = await self._search.page(caller, query(q), after, limit + 1)
        resume = next_position(searched, limit)
        page = searched.found[:limit]
        next_cursor = cursors.encode(resume) if resume is not None else None
        return SearchPage([f.profile for f in page], next_cursor)


def next_position(searched: Searched, limit: int) -> Position | None:
    """Where the page after this one starts: after its last row when more matches followed
    it, after the last row read when a window ran out first, nowhere when all were listed."""
    if len(searched.found) > limit:
        return searched.found[limit - 1].position
    return searched.stopped_at
