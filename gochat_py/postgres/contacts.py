"""Friend requests and friendships in PostgreSQL.

Every change to one pair (a request, its decision, a friendship ended, a block in blocks.py)
runs in one transaction holding the pair's advisory lock, so two people asking each other
at the same moment end as one friendship, never as two crossed pending requests.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

import asyncpg
import msgspec

from gochat_py import times
from gochat_py.direct_policy import Blocked
from gochat_py.errors import Conflict, NotFound, ValidationFailed
from gochat_py.ids import UserId, uuid7

Status = Literal["pending", "accepted", "rejected", "cancelled"]
Direction = Literal["incoming", "outgoing"]
# Where a keyset page ended: the last row's time and id (newest first).
After = tuple[datetime, uuid.UUID]


class UserRef(msgspec.Struct, frozen=True):
    """Another user as a contact list shows them: never an email."""

    id: uuid.UUID
    username: str


class ContactRequest(msgspec.Struct, frozen=True):
    id: uuid.UUID
    from_: UserRef = msgspec.field(name="from")
    to: UserRef
    status: Status
    created_at: int  # unix milliseconds
    decided_at: int | None  # when it was accepted, rejected or cancelled


class ContactUser(msgspec.Struct, frozen=True):
    id: uuid.UUID
    username: str
    display_name: str | None


class Contact(msgspec.Struct, frozen=True):
    user: ContactUser
    since: int  # unix milliseconds: when the friendship began


class RequestRow(msgspec.Struct, frozen=True):
    request: ContactRequest
    position: After  # exact, for the page's cursor


class ContactRow(msgspec.Struct, frozen=True):
    contact: Contact
    position: After


UNKNOWN_USER = "no such user"

_REQUEST = """
SELECT r.id, r.status, r.created_at, r.decided_at,
       f.id AS from_id, f.username AS from_username, t.id AS to_id, t.username AS to_username
FROM contact_requests r
JOIN users f ON f.id = r.from_user
JOIN users t ON t.id = r.to_user
"""


def _request(row: asyncpg.Record) -> ContactRequest:
    decided = row["decided_at"]
    return ContactRequest(
        id=row["id"],
        from_=UserRef(row["from_id"], row["from_username"]),
        to=UserRef(row["to_id"], row["to_username"]),
        status=row["status"],
        created_at=times.unix_ms(row["created_at"]),
        decided_at=times.unix_ms(decided) if decided is not None else None,
    )


async def lock_pair(conn: asyncpg.Connection, one: UserId, other: UserId) -> None:
    """Serialise every change to this pair's requests, friendship and blocks until commit."""
    low, high = sorted((one, other))
    await conn.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended($1::uuid::text || $2::uuid::text, 0))",
        low,
        high,
    )


async def require_user(conn: asyncpg.Connection, user: UserId, field: str) -> None:
    if not await conn.fetchval("SELECT EXISTS (SELECT 1 FROM users WHERE id = $1)", user):
        raise NotFound(UNKNOWN_USER, code="user_not_found", field=field)


async def end_friendship(conn: asyncpg.Connection, one: UserId, other: UserId) -> bool:
    """Delete both rows of the friendship; whether there was one."""
    deleted = await conn.fetch(
        "DELETE FROM contacts WHERE (user_id = $1 AND contact_id = $2)"
        " OR (user_id = $2 AND contact_id = $1) RETURNING user_id",
        one,
        other,
    )
    return bool(deleted)


async def keyset_page(
    pool: asyncpg.Pool,
    select: str,
    key: tuple[str, str],
    owner: UserId,
    limit: int,
    after: After | None,
) -> list[asyncpg.Record]:
    """Up to `limit` rows of `select` (whose WHERE names the owner as $1), newest first by
    `key` (its time and id columns), past `after`."""
    time_column, id_column = key
    args: list[object] = [owner, limit]
    if after is not None:
        select += f" AND ({time_column}, {id_column}) < ($3, $4)"
        args += after
    order = f" ORDER BY {time_column} DESC, {id_column} DESC LIMIT $2"
    rows: list[asyncpg.Record] = await pool.fetch(select + order, *args)
    return rows


class Contacts:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def request(self, sender: UserId, recipient: UserId) -> tuple[ContactRequest, bool]:
        """A new pending request, or the recipient's own pending request to the sender now
        accepted (the friendship made); and whether it was accepted."""
        if sender == recipient:
            raise ValidationFailed(
                "you cannot add yourself", code="cannot_add_self", field="user_id"
            )
        async with self._pool.acquire() as conn, conn.transaction():
            await lock_pair(conn, sender, recipient)
            await require_user(conn, recipient, "user_id")
            blockers = {
                row["blocker_id"]
                for row in await conn.fetch(
                    "SELECT blocker_id FROM blocks WHERE (blocker_id = $1 AND blocked_id = $2)"
                    " OR (blocker_id = $2 AND blocked_id = $1)",
                    sender,
                    recipient,
                )
            }
            if recipient in blockers:
                raise Blocked("you cannot add this user")
            if sender in blockers:
                raise Conflict("you blocked this user; unblock them first", code="unblock_first")
            if await conn.fetchval(
                "SELECT EXISTS (SELECT 1 FROM contacts WHERE user_id = $1 AND contact_id = $2)",
                sender,
                recipient,
            ):
                raise Conflict("you are contacts already", code="already_contacts")
            pending = await conn.fetchrow(
                "SELECT id, from_user FROM contact_requests WHERE status = 'pending'"
                " AND ((from_user = $1 AND to_user = $2) OR (from_user = $2 AND to_user = $1))",
                sender,
                recipient,
            )
            if pending is not None and pending["from_user"] == sender:
                raise Conflict("you asked this user already", code="request_pending")
            if pending is not None:
                return await self._settle(conn, pending["id"], "accepted"), True
            request_id = uuid7()
            await conn.execute(
                "INSERT INTO contact_requests (id, from_user, to_user) VALUES ($1, $2, $3)",
                request_id,
                sender,
                recipient,
            )
            row = await conn.fetchrow(_REQUEST + " WHERE r.id = $1", request_id)
        return _request(row), False

    async def decide(self, user: UserId, request_id: uuid.UUID, status: Status) -> ContactRequest:
        """Accept or reject (the recipient), or cancel (the sender) a pending request;
        NotFound for anyone else, as for a request that does not exist."""
        by = "from_user" if status == "cancelled" else "to_user"
        async with self._pool.acquire() as conn, conn.transaction():
            pair = await conn.fetchrow(
                f"SELECT from_user, to_user FROM contact_requests WHERE id = $1 AND {by} = $2",
                request_id,
                user,
            )
            if pair is None:
                raise NotFound("request not found", code="request_not_found")
            await lock_pair(conn, pair["from_user"], pair["to_user"])
            current = await conn.fetchval(
                "SELECT status FROM contact_requests WHERE id = $1", request_id
            )
            if current != "pending":
                raise Conflict(f"the request was {current} already", code="request_not_pending")
            return await self._settle(conn, request_id, status)

    @staticmethod
    async def _settle(
        conn: asyncpg.Connection, request_id: uuid.UUID, status: Status
    ) -> ContactRequest:
        """Decide a pending request; an accepted one makes the friendship, both rows."""
        pair = await conn.fetchrow(
            "UPDATE contact_requests SET status = $2, decided_at = now() WHERE id = $1"
            " RETURNING from_user, to_user",
            request_id,
            status,
        )
        if status == "accepted":
            await conn.execute(
                "INSERT INTO contacts (user_id, contact_id) VALUES ($1, $2), ($2, $1)"
                " ON CONFLICT DO NOTHING",
                pair["from_user"],
                pair["to_user"],
            )
        return _request(await conn.fetchrow(_REQUEST + " WHERE r.id = $1", request_id))

    async def pending(
        self, user: UserId, direction: Direction, limit: int, after: After | None
    ) -> list[RequestRow]:
        """The user's pending requests, received or sent, newest first."""
        side = "r.to_user" if direction == "incoming" else "r.from_user"
        select = _REQUEST + f" WHERE {side} = $1 AND r.status = 'pending'"
        rows = await keyset_page(self._pool, select, ("r.created_at", "r.id"), user, limit, after)
        return [RequestRow(_request(row), (row["created_at"], row["id"])) for row in rows]

    async def page(self, user: UserId, limit: int, after: After | None) -> list[ContactRow]:
        """The user's contacts, the newest friendships first."""
        select = (
            "SELECT u.id, u.username, u.display_name, k.created_at FROM contacts k"
            " JOIN users u ON u.id = k.contact_id WHERE k.user_id = $1"
        )
        key = ("k.created_at", "k.contact_id")
        rows = await keyset_page(self._pool, select, key, user, limit, after)
        return [
            ContactRow(
                Contact(
                    user=ContactUser(row["id"], row["username"], row["display_name"]),
                    since=times.unix_ms(row["created_at"]),
                ),
                (row["created_at"], row["id"]),
            )
            for row in rows
        ]

    async def remove(self, user: UserId, other: UserId) -> bool:
        """End the friendship for both; whether there was one."""
        async with self._pool.acquire() as conn, conn.transaction():
            await lock_pair(conn, user, other)
            return await end_friendship(conn, user, other)
