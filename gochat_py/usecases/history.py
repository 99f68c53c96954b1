"""Message history: keyset pages from PostgreSQL merged with the recent cache in Redis,
each message as its latest edit or delete left it.

The cache holds every message of a conversation that PostgreSQL does not hold yet, and a
few of the newest it does (the worker trims the rest once committed), so a page shows a
message the moment it is acknowledged, however far the worker lags; seq is unique per
conversation, so merging by seq cannot duplicate. Both sides are asked for the same
number of messages past the same bound, and the union's first n are among the two sides'
first n: a page that straddles the boundary between cache and PostgreSQL has no hole.
"""

from __future__ import annotations

from typing import Annotated

import msgspec

from gochat_py import cursors, messages
from gochat_py.ids import ConversationId, UserId
from gochat_py.messages import Direction, Message
from gochat_py.postgres.messages import Messages
from gochat_py.realtime.membership import Membership
from gochat_py.redis.recent import RecentCache

DEFAULT_PAGE = 50
MAX_PAGE = 100


class Cursor(msgspec.Struct, frozen=True, array_like=True, forbid_unknown_fields=True):
    direction: Direction
    seq: Annotated[int, msgspec.Meta(ge=0)]


class Page(msgspec.Struct, frozen=True):
    messages: list[Message]
    next_cursor: str | None
    has_more: bool  # gochat's flag: exactly when next_cursor is not null


class History:
    def __init__(self, stored: Messages, recent: RecentCache, membership: Membership) -> None:
        self._stored = stored
        self._recent = recent
        self._membership = membership

    async def page(
        self, reader: UserId, conversation_id: ConversationId, cursor: Cursor | None, limit: int
    ) -> Page:
        """`limit` messages: newest first by default or for a "before" cursor, oldest
        first for an "after" cursor; next_cursor continues in the same direction.
        NotAMember for a reader who is not in the conversation."""
        await self._membership.require(conversation_id, reader)
        direction = cursor.direction if cursor else "before"
        bound = cursor.seq if cursor else None
        # One extra row says whether another page exists, so the last page has no cursor.
        # Cache first, then PostgreSQL: a message trimmed in between was committed before
        # it was trimmed, so the second read finds it.
        cached, changes = await self._recent.page(conversation_id, direction, bound, limit + 1)
        stored = await self._stored.page(conversation_id, direction, bound, limit + 1)
        merged = {m.seq: m for m in stored}
        merged.update((m.seq, m) for m in cached)
        ordered = sorted(merged.values(), key=lambda m: m.seq, reverse=direction == "before")
        # Edits and deletes PostgreSQL may not hold yet: each message as its newest change
        # left it (a cached message is as sent, a stored one as the changes stored so far).
        ordered = messages.apply_changes(ordered, changes)
        page, more = ordered[:limit], len(ordered) > limit
        next_cursor = cursors.encode(Cursor(direction, page[-1].seq)) if more and page else None
        return Page(messages=page, next_cursor=next_cursor, has_more=next_cursor is not None)
