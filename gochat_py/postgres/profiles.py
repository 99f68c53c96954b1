"""Profiles in PostgreSQL: what a user shows of themself, read and changed."""

from __future__ import annotations

import uuid
from typing import Literal

import asyncpg
import msgspec

from gochat_py import media, times
from gochat_py.ids import UserId

DmPolicy = Literal["everyone", "contacts"]

# The columns of the public profile, from `users u`; search selects them too.
PUBLIC_COLUMNS = "u.id, u.username, u.display_name, u.bio, u.avatar_media_id, u.created_at"
_OWN_COLUMNS = f"{PUBLIC_COLUMNS}, u.email, u.dm_policy, u.show_presence"


class PublicProfile(msgspec.Struct, frozen=True):
    """A user as anyone sees them: never their email or settings."""

    id: uuid.UUID
    username: str
    display_name: str | None
    bio: str | None
    avatar_url: str | None  # the picture's URL: anyone may read it
    created_at: int  # unix milliseconds


class Profile(msgspec.Struct, frozen=True):
    """A user as they see themself: the public profile, their email and their settings."""

    id: uuid.UUID
    email: str
    username: str
    display_name: str | None
    bio: str | None
    avatar_url: str | None
    dm_policy: DmPolicy
    show_presence: bool
    created_at: int  # unix milliseconds


class Changes(msgspec.Struct, frozen=True):
    """What to change: a `set_` flag per nullable field, so that null can mean "clear"."""

    set_display_name: bool = False
    display_name: str | None = None
    set_bio: bool = False
    bio: str | None = None
    dm_policy: DmPolicy | None = None
    show_presence: bool | None = None
    set_avatar: bool = False
    avatar_media_id: uuid.UUID | None = None  # checked already: an image of the user's


def public_profile(row: asyncpg.Record) -> PublicProfile:
    return PublicProfile(
        id=row["id"],
        username=row["username"],
        display_name=row["display_name"],
        bio=row["bio"],
        avatar_url=media.avatar_url(row["avatar_media_id"]),
        created_at=times.unix_ms(row["created_at"]),
    )


def _profile(row: asyncpg.Record) -> Profile:
    return Profile(
        **msgspec.structs.asdict(public_profile(row)),
        email=row["email"],
        dm_policy=row["dm_policy"],
        show_presence=row["show_presence"],
    )


# One statement for every combination of fields: it is prepared once and planned once.
_UPDATE = f"""
UPDATE users u SET
    display_name = CASE WHEN $2 THEN $3 ELSE u.display_name END,
    bio = CASE WHEN $4 THEN $5 ELSE u.bio END,
    dm_policy = coalesce($6, u.dm_policy),
    show_presence = coalesce($7, u.show_presence),
    avatar_media_id = CASE WHEN $8 THEN $9 ELSE u.avatar_media_id END,
    updated_at = now()
WHERE u.id = $1
RETURNING {_OWN_COLUMNS},
    -- The statement's snapshot: the row as it was before this update.
    (SELECT avatar_media_id FROM users WHERE id = $1) AS previous_avatar
"""


class Profiles:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def own(self, user_id: UserId) -> Profile | None:
        row = await self._pool.fetchrow(
            f"SELECT {_OWN_COLUMNS} FROM users u WHERE u.id = $1", user_id
        )
        return _profile(row) if row else None

    async def public(self, user_id: UserId) -> PublicProfile | None:
        row = await self._pool.fetchrow(
            f"SELECT {PUBLIC_COLUMNS} FROM users u WHERE u.id = $1", user_id
        )
        return public_profile(row) if row else None

    async def change(
        self, user_id: UserId, changes: Changes
    ) -> tuple[Profile, uuid.UUID | None] | None:
        """The profile changed, and the avatar it had before."""
        row = await self._pool.fetchrow(
            _UPDATE,
            user_id,
            changes.set_display_name,
            changes.display_name,
            changes.set_bio,
            changes.bio,
            changes.dm_policy,
            changes.show_presence,
            changes.set_avatar,
            changes.avatar_media_id,
        )
        return (_profile(row), row["previous_avatar"]) if row else None
