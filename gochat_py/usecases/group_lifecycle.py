"""A group's life after it is made: its name and description, its members' roles, who
owns it, and its end, whichever door the request comes through.

Each change is committed (postgres/groups.py), then recorded in the group's log as a
system message (usecases/system_messages.py), so every member's timeline shows it between
the right messages. A deleted group is gone for its members at once: the membership change
is announced to every process (delivery stops, the caches forget it), each member's
devices get `conversation_deleted`, and its Redis keys are erased; the worker drops, and
acknowledges, whatever of its log was still in the stream (worker/persist.py).
"""

from __future__ import annotations

import uuid

import msgspec

from gochat_py.errors import ValidationFailed
from gochat_py.ids import ConversationId, UserId
from gochat_py.postgres.conversations import Description, GroupName
from gochat_py.postgres.groups import AssignableRole, Groups
from gochat_py.realtime.events import Announcer, ConversationDeletedEvent
from gochat_py.realtime.membership import Membership, MembershipChange
from gochat_py.redis.recent import RecentCache
from gochat_py.usecases.attachments import Attachments
from gochat_py.usecases.system_messages import SystemMessages


class GroupUpdate(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """`name` (the same rules as at creation), `description` (null or blank clears it) and
    `avatar_media_id` (an image the caller uploaded; null clears it): what is left out stays
    as it is."""

    name: GroupName | msgspec.UnsetType = msgspec.UNSET
    description: Description | None | msgspec.UnsetType = msgspec.UNSET
    avatar_media_id: uuid.UUID | None | msgspec.UnsetType = msgspec.UNSET


class GroupLifecycle:
    def __init__(
        self,
        groups: Groups,
        membership: Membership,
        system: SystemMessages,
        announcer: Announcer,
        recent: RecentCache,
        attachments: Attachments,
    ) -> None:
        self._groups = groups
        self._attachments = attachments
        self._membership = membership
        self._system = system
        self._announcer = announcer
        self._recent = recent

    async def update(
        self, actor: UserId, conversation_id: ConversationId, update: GroupUpdate
    ) -> None:
        """Rename the group, change its description or its avatar (owner or admin); a name
        or description that changed is a system message, `renamed` first."""
        if update == GroupUpdate():
            raise ValidationFailed(
                "send name, description or avatar_media_id", code="nothing_to_change"
            )
        if update.avatar_media_id is not msgspec.UNSET:
            await self._attachments.check_avatar(update.avatar_media_id, actor)
        name = None
        if not isinstance(update.name, msgspec.UnsetType):
            name = update.name.strip()
            if not name:
                raise ValidationFailed("name must not be blank", code="invalid_name", field="name")
        description = update.description
        if isinstance(description, str):
            description = description.strip() or None
        change = await self._groups.update(
            actor, conversation_id, name, description, update.avatar_media_id
        )
        if change.avatar_changed:
            await self._attachments.avatar_changed(
                None if update.avatar_media_id is msgspec.UNSET else update.avatar_media_id,
                change.previous_avatar,
            )
        if change.renamed is not None:
            await self._system.record(conversation_id, actor, "renamed", name=change.renamed)
        if change.description_changed:
            await self._system.record(conversation_id, actor, "description_changed")

    async def set_role(
        self,
        actor: UserId,
        conversation_id: ConversationId,
        user: UserId,
        role: AssignableRole,
    ) -> None:
        """Make a member an admin or a plain member (the owner only); `role_changed` when it
        changed."""
        if await self._groups.set_role(actor, conversation_id, user, role):
            await self._system.record(conversation_id, actor, "role_changed", [user], role=role)

    async def transfer(self, actor: UserId, conversation_id: ConversationId, user: UserId) -> None:
        """Hand the group to another member (the owner only); the old owner stays an admin."""
        await self._groups.transfer(actor, conversation_id, user)
        await self._system.record(conversation_id, actor, "ownership_transferred", [user])

    async def delete(self, actor: UserId, conversation_id: ConversationId) -> None:
        """Delete the group and its history (the owner only)."""
        members = await self._groups.delete(actor, conversation_id)
        await self.ended(conversation_id, actor, members)

    async def ended(
        self, conversation_id: ConversationId, actor: UserId, members: list[UserId]
    ) -> None:
        """After a group's row is deleted: every process stops delivering it and forgets its
        members, each member's devices hear of it, and its keys leave Redis. The keys go
        last: a send that passed its membership check before the announcement lands in
        them, and the worker erases them again when it meets that send's entry."""
        await self._membership.announce_change(
            MembershipChange(conversation_id, removed=sorted(members))
        )
        await self._announcer.to_users(
            members, ConversationDeletedEvent(conversation_id=conversation_id, actor_id=actor)
        )
        await self._recent.erase(conversation_id)
