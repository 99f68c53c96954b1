"""Blocks in PostgreSQL: who blocked whom, and what a block ends."""

from __future__ import annotations

import asyncpg
import msgspec

from gochat_py import times
from gochat_py.errors import ValidationFailed
from gochat_py.ids import UserId
from gochat_py.postgres.contacts import (
    After,
    UserRef,
    end_friendship,
    keyset_page,
    lock_pair,
    require_user,
)


class Block(msgspec.Struct, frozen=True):
    user: UserRef  # the user blocked
    since: int  # unix milliseconds


class BlockRow(msgspec.Struct, frozen=True):
    block: Block
    position: After  # exact, for the page's cursor


_BLOCK = (
    "SELECT u.id, u.username, b.created_at FROM blocks b JOIN users u ON u.id = b.blocked_id"
    " WHERE b.blocker_id = $1"
)


def _row(row: asyncpg.Record) -> BlockRow:
    block = Block(UserRef(row["id"], row["username"]), times.unix_ms(row["created_at"]))
    return BlockRow(block, (row["created_at"], row["id"]))


class Blocks:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def block(self, blocker: UserId, blocked: UserId) -> tuple[Block, bool]:
        """The block, and whether this call made it (blocking twice changes nothing). The
        same transaction ends the pair's friendship and cancels their pending requests,
        whichever of them asked."""
        if blocker == blocked:
            raise ValidationFailed(
                "you cannot block yourself", code="cannot_block_self", field="user_id"
            )
        async with self._pool.acquire() as conn, conn.transaction():
            await lock_pair(conn, blocker, blocked)
            await require_user(conn, blocked, "user_id")
            created = await conn.fetchval(
                "INSERT INTO blocks (blocker_id, blocked_id) VALUES ($1, $2)"
                " ON CONFLICT DO NOTHING RETURNING true",
                blocker,
                blocked,
            )
            await end_friendship(conn, blocker, blocked)
            await conn.execute(
                "UPDATE contact_requests SET status = 'cancelled', decided_at = now()"
                " WHERE status = 'pending' AND ((from_user = $1 AND to_user = $2)"
                " OR (from_user = $2 AND to_user = $1))",
                blocker,
                blocked,
            )
            row = await conn.fetchrow(_BLOCK + " AND b.blocked_id = $2", blocker, blocked)
        return _row(row).block, bool(created)

    async def unblock(self, blocker: UserId, blocked: UserId) -> bool:
        """Lift the block; whether there was one."""
        async with self._pool.acquire() as conn, conn.transaction():
            await lock_pair(conn, blocker, blocked)
            removed = await conn.fetchval(
                "DELETE FROM blocks WHERE blocker_id = $1 AND blocked_id = $2 RETURNING true",
                blocker,
                blocked,
            )
        return bool(removed)

    async def page(self, blocker: UserId, limit: int, after: After | None) -> list[BlockRow]:
        """The users `blocker` blocked, the newest blocks first."""
        key = ("b.created_at", "b.blocked_id")
        rows = await keyset_page(self._pool, _BLOCK, key, blocker, limit, after)
        return [_row(row) for row in rows]
