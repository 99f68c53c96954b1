"""Who may see whose presence, from PostgreSQL: contacts, direct conversations and blocks.

A user's watchers are their contacts and the other member of each of their direct
conversations, less the users they blocked; whether they are told at all (`show_presence`)
is the caller's to decide.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import asyncpg
import msgspec

from gochat_py import times
from gochat_py.ids import UserId

# The people a user shares a friendship or a direct conversation with: `$1` is the user.
_RELATED = """
    SELECT c.contact_id AS other FROM contacts c WHERE c.user_id = $1
    UNION
    SELECT theirs.user_id
    FROM conversation_members mine
    JOIN conversations conv ON conv.id = mine.conversation_id AND conv.kind = 'direct'
    JOIN conversation_members theirs
        ON theirs.conversation_id = mine.conversation_id AND theirs.user_id <> $1
    WHERE mine.user_id = $1
"""

# One row per watcher (one row with a NULL watcher when there is none).
_AUDIENCE = f"""
SELECT u.username, u.show_presence, related.other AS watcher
FROM users u
LEFT JOIN LATERAL ({_RELATED}) related
    ON NOT EXISTS (
        SELECT 1 FROM blocks b WHERE b.blocker_id = u.id AND b.blocked_id = related.other
    )
WHERE u.id = $1
"""

# Whose presence $1 is told about: the related users who show it and did not block $1.
_WATCHED = f"""
SELECT related.other
FROM ({_RELATED}) related
JOIN users u ON u.id = related.other AND u.show_presence
WHERE NOT EXISTS (SELECT 1 FROM blocks b WHERE b.blocker_id = u.id AND b.blocked_id = $1)
"""

# Of the users $2, those $1 may see (the caller always sees themself), with their last seen.
_VISIBLE = """
SELECT u.id, u.last_seen_at
FROM users u
WHERE u.id = ANY($2::uuid[])
    AND (u.id = $1 OR (
        u.show_presence
        AND NOT EXISTS (SELECT 1 FROM blocks b WHERE b.blocker_id = u.id AND b.blocked_id = $1)
    ))
"""


class Audience(msgspec.Struct, frozen=True):
    """Who may be told of a user's presence, and whether the user lets them."""

    username: str
    shows_presence: bool
    watchers: list[UserId]


class PresenceDirectory:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def audience(self, user: UserId) -> Audience | None:
        """The user's watchers, in one query; None for an account that is gone."""
        rows = await self._pool.fetch(_AUDIENCE, user)
        if not rows:
            return None
        watchers = [UserId(row["watcher"]) for row in rows if row["watcher"] is not None]
        return Audience(rows[0]["username"], rows[0]["show_presence"], watchers)

    async def watched_by(self, viewer: UserId) -> list[UserId]:
        """The users whose presence `viewer` is told of live."""
        rows = await self._pool.fetch(_WATCHED, viewer)
        return [UserId(row["other"]) for row in rows]

    async def visible(
        self, viewer: UserId, users: Sequence[UserId]
    ) -> dict[UserId, datetime | None]:
        """Those of `users` whose presence `viewer` may see, with their stored last seen."""
        rows = await self._pool.fetch(_VISIBLE, viewer, list(users))
        return {UserId(row["id"]): row["last_seen_at"] for row in rows}

    async def record_last_seen(self, user: UserId, at: int) -> None:
        """Store when the user's last socket went (unix ms); never moves it back."""
        await self._pool.execute(
            "UPDATE users SET last_seen_at = greatest(last_seen_at, $2) WHERE id = $1",
            user,
            times.from_unix_ms(at),
        )
