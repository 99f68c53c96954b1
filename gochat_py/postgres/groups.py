"""A group's settings, roles, ownership, members leaving and its end, in PostgreSQL.

Each change locks the conversation's row before it reads the caller's role, so changes to
one group run one after another and each sees the roles the one before it left: two
transfers, or a transfer beside a role change or the owner leaving, cannot leave the group
with two owners or none.
"""

from __future__ import annotations

import uuid
from typing import Literal

import asyncpg
import msgspec

from gochat_py.errors import Conflict, Forbidden, NotFound, ValidationFailed
from gochat_py.ids import ConversationId, UserId
from gochat_py.messages import MemberRole

# FOR NO KEY UPDATE: queues the other changes to the group (and the worker's batches, which
# take the same lock to advance last_seq), while members still join and messages are
# stored beside it (their foreign keys take KEY SHARE only). The role is read by a second
# statement: one that waited for the lock reads the rows it joins as they were when it
# began (READ COMMITTED re-reads only the locked row, and only if it changed), so a role
# joined in would predate the change it waited for: two transfers made two owners.
_LOCK = "SELECT kind FROM conversations WHERE id = $1 FOR NO KEY UPDATE"
_ROLE = "SELECT role FROM conversation_members WHERE conversation_id = $1 AND user_id = $2"
# Who takes a group over from an owner who leaves: the longest-standing admin, else the
# longest-standing member. Members added together joined at the same instant; their ids
# settle it, so the choice never depends on the plan.
_SUCCESSOR = """
SELECT user_id FROM conversation_members
WHERE conversation_id = $1 AND user_id <> $2
ORDER BY role = 'admin' DESC, joined_at, user_id
LIMIT 1
"""
_SET_ROLE = "UPDATE conversation_members SET role = $3 WHERE conversation_id = $1 AND user_id = $2"

Need = Literal["member", "manager", "owner"]
# What a member can be made; the owner is made by handing the group over.
AssignableRole = Literal["admin", "member"]


class SettingsChange(msgspec.Struct, frozen=True):
    """What an update changed: the new name if it differs, whether the description did,
    and the avatar it had before when that changed."""

    renamed: str | None
    description_changed: bool
    avatar_changed: bool = False
    previous_avatar: uuid.UUID | None = None


class Departure(msgspec.Struct, frozen=True):
    """A member gone from a group: who took it over if the owner left, and whether the group
    ended with them (the last member left) and who was in it then."""

    new_owner: UserId | None = None
    ended: bool = False


class Groups:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def update(
        self,
        actor: UserId,
        conversation_id: ConversationId,
        name: str | None,
        description: str | None | msgspec.UnsetType,
        avatar: uuid.UUID | None | msgspec.UnsetType = msgspec.UNSET,
    ) -> SettingsChange:
        """Set the name (None: unchanged), the description and the avatar (UNSET:
        unchanged, None: cleared); owner or admin."""
        async with self._pool.acquire() as conn, conn.transaction():
            await require_role(conn, actor, conversation_id, "manager")
            before = await conn.fetchrow(
                "SELECT name, description, avatar_media_id FROM conversations WHERE id = $1",
                conversation_id,
            )
            new_name = before["name"] if name is None else name
            new_description = before["description"] if description is msgspec.UNSET else description
            new_avatar = before["avatar_media_id"] if avatar is msgspec.UNSET else avatar
            await conn.execute(
                "UPDATE conversations SET name = $2, description = $3, avatar_media_id = $4"
                " WHERE id = $1",
                conversation_id,
                new_name,
                new_description,
                new_avatar,
            )
        return SettingsChange(
            renamed=new_name if new_name != before["name"] else None,
            description_changed=new_description != before["description"],
            avatar_changed=new_avatar != before["avatar_media_id"],
            previous_avatar=before["avatar_media_id"],
        )

    async def set_role(
        self,
        actor: UserId,
        conversation_id: ConversationId,
        user: UserId,
        role: AssignableRole,
    ) -> bool:
        """Make a member an admin or a plain member (the owner only); whether it changed."""
        async with self._pool.acquire() as conn, conn.transaction():
            await require_role(conn, actor, conversation_id, "owner")
            current = await _role_of(conn, conversation_id, user)
            if current == "owner":
                raise Conflict(
                    "the owner's role changes only by handing the group to someone else",
                    code="owner_role",
                )
            if current == role:
                return False
            await conn.execute(_SET_ROLE, conversation_id, user, role)
        return True

    async def transfer(self, actor: UserId, conversation_id: ConversationId, user: UserId) -> None:
        """Hand the group to another member (the owner only), who becomes its owner; the
        old owner stays, as an admin."""
        async with self._pool.acquire() as conn, conn.transaction():
            await require_role(conn, actor, conversation_id, "owner")
            if user == actor:
                raise Conflict("you own the group already", code="already_owner")
            await _role_of(conn, conversation_id, user)
            await conn.execute(_SET_ROLE, conversation_id, actor, "admin")
            await conn.execute(_SET_ROLE, conversation_id, user, "owner")

    async def remove_member(
        self, actor: UserId, conversation_id: ConversationId, user: UserId
    ) -> Departure:
        """Leave a group, or remove someone from it as its owner or an admin (never the
        owner). An owner who leaves hands the group over first; the last member leaving
        ends it, and its history with it."""
        async with self._pool.acquire() as conn, conn.transaction():
            role = await require_role(conn, actor, conversation_id, "member")
            if user != actor:
                if role == "member":
                    raise Forbidden(
                        "only the group's owner or an admin can do that", code="not_a_manager"
                    )
                if await _role_of(conn, conversation_id, user) == "owner":
                    raise Forbidden(
                        "the owner cannot be removed; they leave or hand the group over",
                        code="cannot_remove_owner",
                    )
            elif role == "owner":
                successor = await conn.fetchval(_SUCCESSOR, conversation_id, actor)
                if successor is None:
                    await conn.execute("DELETE FROM conversations WHERE id = $1", conversation_id)
                    return Departure(ended=True)
                await conn.execute(_SET_ROLE, conversation_id, successor, "owner")
                await conn.execute(
                    "DELETE FROM conversation_members WHERE conversation_id = $1 AND user_id = $2",
                    conversation_id,
                    actor,
                )
                return Departure(new_owner=UserId(successor))
            await conn.execute(
                "DELETE FROM conversation_members WHERE conversation_id = $1 AND user_id = $2",
                conversation_id,
                user,
            )
        return Departure()

    async def delete(self, actor: UserId, conversation_id: ConversationId) -> list[UserId]:
        """End a group (the owner only): its members and messages go with it (ON DELETE
        CASCADE). Those who were its members."""
        async with self._pool.acquire() as conn, conn.transaction():
            await require_role(conn, actor, conversation_id, "owner")
            rows = await conn.fetch(
                "SELECT user_id FROM conversation_members WHERE conversation_id = $1",
                conversation_id,
            )
            await conn.execute("DELETE FROM conversations WHERE id = $1", conversation_id)
        return sorted(UserId(row["user_id"]) for row in rows)


async def require_role(
    conn: asyncpg.Connection, actor: UserId, conversation_id: ConversationId, need: Need
) -> MemberRole:
    """Lock the group and return the actor's role in it: NotFound for a stranger (members
    only), Conflict for a direct conversation, Forbidden without the role `need` names."""
    kind = await conn.fetchval(_LOCK, conversation_id)
    role: MemberRole | None = (
        None if kind is None else await conn.fetchval(_ROLE, conversation_id, actor)
    )
    if role is None:
        raise NotFound("conversation not found", code="conversation_not_found")
    if kind != "group":
        raise Conflict(
            "a direct conversation has fixed members and no roles", code="direct_conversation"
        )
    if need == "manager" and role == "member":
        raise Forbidden("only the group's owner or an admin can do that", code="not_a_manager")
    if need == "owner" and role != "owner":
        raise Forbidden("only the group's owner can do that", code="not_the_owner")
    return role


async def _role_of(
    conn: asyncpg.Connection, conversation_id: ConversationId, user: UserId
) -> MemberRole:
    """The role of `user`, the member a request names; 422 when they are not one."""
    role = await conn.fetchval(_ROLE, conversation_id, user)
    if role is None:
        raise ValidationFailed("that user is not a member of the group", code="not_a_member")
    return role  # type: ignore[no-any-return]
