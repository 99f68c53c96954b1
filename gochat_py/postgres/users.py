"""User accounts in PostgreSQL."""

from __future__ import annotations

import uuid
from typing import Annotated

import asyncpg
import msgspec

from gochat_py import times
from gochat_py.errors import Conflict
from gochat_py.ids import UserId

# No control characters: PostgreSQL's text cannot hold U+0000, and no address has one.
_EMAIL_PART = r"[^@\s\x00-\x1f\x7f]+"
Email = Annotated[
    str,
    msgspec.Meta(
        max_length=254,
        pattern=rf"^{_EMAIL_PART}@{_EMAIL_PART}\.{_EMAIL_PART}$",
        description="an email address",
    ),
]

# Nothing deactivates an account, so the table has no column for it: every account is active.
ACTIVE = True


class User(msgspec.Struct, frozen=True):
    """A user as the user themself sees it: the email is shown to no one else."""

    id: uuid.UUID
    email: str
    username: str
    is_active: bool
    created_at: int  # unix milliseconds


class Account(msgspec.Struct, frozen=True):
    user: User
    password_hash: str


_COLUMNS = "id, email, username, password_hash, created_at"


def _account(row: asyncpg.Record) -> Account:
    user = User(
        id=row["id"],
        email=row["email"],
        username=row["username"],
        is_active=ACTIVE,
        created_at=times.unix_ms(row["created_at"]),
    )
    return Account(user=user, password_hash=row["password_hash"])


class Users:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def create(self, email: str, username: str, password_hash: str) -> Account:
        try:
            row = await self._pool.fetchrow(
                f"INSERT INTO users (id, email, username, password_hash) VALUES ($1, $2, $3, $4) "
                f"RETURNING {_COLUMNS}",
                uuid.uuid4(),
                email,
                username,
                password_hash,
            )
        except asyncpg.UniqueViolationError as exc:
            if "email" in (exc.constraint_name or ""):
                raise Conflict("email is already registered", code="email_taken") from None
            raise Conflict("username is already taken", code="username_taken") from None
        return _account(row)

    async def by_email(self, email: str) -> Account | None:
        row = await self._pool.fetchrow(
            f"SELECT {_COLUMNS} FROM users WHERE lower(email) = lower($1)", email
        )
        return _account(row) if row else None

    async def ids_by_email(self, emails: list[str]) -> dict[str, UserId]:
        """The accounts of those emails that have one, keyed by the email in lower case."""
        rows = await self._pool.fetch(
            "SELECT id, lower(email) AS email FROM users WHERE lower(email) = ANY($1::text[])",
            [email.lower() for email in emails],
        )
        return {row["email"]: UserId(row["id"]) for row in rows}

    async def usernames(self, user_ids: list[UserId]) -> dict[UserId, str]:
        rows = await self._pool.fetch(
            "SELECT id, username FROM users WHERE id = ANY($1::uuid[])", user_ids
        )
        return {UserId(row["id"]): row["username"] for row in rows}

    async def by_id(self, user_id: UserId) -> Account | None:
        row = await self._pool.fetchrow(f"SELECT {_COLUMNS} FROM users WHERE id = $1", user_id)
        return _account(row) if row else None

    async def set_password_hash(self, user_id: UserId, password_hash: str) -> None:
        await self._pool.execute(
            "UPDATE users SET password_hash = $2, updated_at = now() WHERE id = $1",
            user_id,
            password_hash,
        )
