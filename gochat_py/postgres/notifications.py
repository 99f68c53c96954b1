"""Notifications in PostgreSQL: made, paged newest first, marked read, counted unread.

Every query names the recipient: a notification is reachable only through its own user."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg
import msgspec

from gochat_py import times
from gochat_py.ids import UserId, uuid7
from gochat_py.notifications import Actor, Notification, NotificationType

# Unread counts stop here: a badge says "999+", and counting further costs a longer scan
# of the unread index.
UNREAD_CAP = 1000

_ROW = """
SELECT n.id, n.user_id, n.type, n.actor_id, a.username AS actor_username, n.data,
       n.created_at, n.read_at
FROM {source} n LEFT JOIN users a ON a.id = n.actor_id
"""
_INSERT = (
    "WITH made AS ("
    " INSERT INTO notifications (id, user_id, type, actor_id, data, created_at)"
    " SELECT id, user_id, $3, $4, $5::jsonb, $6"
    " FROM unnest($1::uuid[], $2::uuid[]) AS t(id, user_id)"
    " RETURNING *)"
) + _ROW.format(source="made")
_PAGE = _ROW.format(source="notifications") + "WHERE n.user_id = $1"

_data_decoder = msgspec.json.Decoder(dict[str, Any])


def _notification(row: asyncpg.Record) -> Notification:
    actor = row["actor_id"]
    read_at: datetime | None = row["read_at"]
    return Notification(
        id=row["id"],
        type=row["type"],
        actor=Actor(actor, row["actor_username"]) if actor is not None else None,
        data=_data_decoder.decode(row["data"]),
        created_at=times.unix_ms(row["created_at"]),
        read_at=times.unix_ms(read_at) if read_at is not None else None,
    )


class StoredNotifications:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def add(
        self,
        recipients: Sequence[UserId],
        type: NotificationType,
        actor: UserId | None,
        data: bytes,
    ) -> list[tuple[UserId, Notification]]:
        """One notification per recipient, in one INSERT; `data` is JSON."""
        # created_at to the millisecond, as the API shows it, and the ids' own time: a
        # cursor carrying the API's value then bounds a page exactly.
        now = times.now_ms()
        rows = await self._pool.fetch(
            _INSERT,
            [uuid7(now) for _ in recipients],
            list(recipients),
            type,
            actor,
            data.decode(),
            times.from_unix_ms(now),
        )
        return [(UserId(row["user_id"]), _notification(row)) for row in rows]

    async def page(
        self,
        user: UserId,
        unread_only: bool,
        limit: int,
        before: tuple[datetime, uuid.UUID] | None,
    ) -> tuple[list[Notification], int]:
        """Up to `limit` of the user's notifications, newest first, past a keyset bound on
        (created_at, id); and how many are unread (up to UNREAD_CAP)."""
        sql, args = _PAGE, [user, limit]
        if unread_only:
            sql += " AND n.read_at IS NULL"
        if before is not None:
            sql += " AND (n.created_at, n.id) < ($3, $4)"
            args += before
        sql += " ORDER BY n.created_at DESC, n.id DESC LIMIT $2"
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(sql, *args)
            unread = await _unread(conn, user)
        return [_notification(row) for row in rows], unread

    async def mark_read(
        self, user: UserId, ids: Sequence[uuid.UUID]
    ) -> tuple[list[uuid.UUID], int]:
        """Mark the user's unread notifications among `ids` read: the ids this changed, and
        how many are unread now. Ids of other users' notifications match nothing, exactly
        like ids that do not exist."""
        async with self._pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                "UPDATE notifications SET read_at = now()"
                " WHERE user_id = $1 AND id = ANY($2::uuid[]) AND read_at IS NULL RETURNING id",
                user,
                list(ids),
            )
            unread = await _unread(conn, user)
        return [row["id"] for row in rows], unread

    async def mark_all_read(self, user: UserId) -> tuple[int, int]:
        """Mark every unread notification of the user read: how many this changed, and how
        many are unread now (some may have arrived meanwhile)."""
        async with self._pool.acquire() as conn, conn.transaction():
            changed = await conn.fetchval(
                "WITH marked AS (UPDATE notifications SET read_at = now()"
                " WHERE user_id = $1 AND read_at IS NULL RETURNING 1)"
                " SELECT count(*) FROM marked",
                user,
            )
            unread = await _unread(conn, user)
        return int(changed), unread


async def _unread(conn: asyncpg.Connection, user: UserId) -> int:
    count = await conn.fetchval(
        "SELECT count(*) FROM (SELECT 1 FROM notifications"
        f" WHERE user_id = $1 AND read_at IS NULL LIMIT {UNREAD_CAP}) AS capped",
        user,
    )
    return int(count)
