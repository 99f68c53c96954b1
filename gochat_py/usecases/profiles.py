"""Profiles: your own, read and changed, and anyone's public one."""

from __future__ import annotations

import uuid
from typing import Annotated

import msgspec

from gochat_py.errors import NotFound, Unauthorized, ValidationFailed
from gochat_py.ids import UserId
from gochat_py.postgres.profiles import Changes, DmPolicy, Profile, Profiles, PublicProfile
from gochat_py.realtime.membership import Membership
from gochat_py.usecases.attachments import Attachments
from gochat_py.usecases.presence import Presence

# No control characters: they break how a name is shown (and NUL cannot be stored at all).
DisplayName = Annotated[
    str,
    msgspec.Meta(
        min_length=1,
        max_length=64,
        pattern=r"^[^\x00-\x1f\x7f-\x9f]*$",
        description="1 to 64 characters, no control characters; surrounding spaces are trimmed",
    ),
]
# A bio may run over lines: tab, line feed and carriage return are its only control characters.
Bio = Annotated[
    str,
    msgspec.Meta(
        max_length=500,
        pattern=r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]*$",
        description="up to 500 characters; of control characters only tab and line breaks",
    ),
]


class ProfileUpdate(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """`PATCH /users/me`: the fields given change, null clears a display name or bio."""

    display_name: DisplayName | None | msgspec.UnsetType = msgspec.UNSET
    bio: Bio | None | msgspec.UnsetType = msgspec.UNSET
    dm_policy: DmPolicy | msgspec.UnsetType = msgspec.UNSET
    show_presence: bool | msgspec.UnsetType = msgspec.UNSET
    # An image you uploaded (POST /media); null: no avatar. Anyone may read it from then on.
    avatar_media_id: uuid.UUID | None | msgspec.UnsetType = msgspec.UNSET


FIELD_RULES = {
    "display_name": "display_name must be 1 to 64 characters without control characters, or null",
    "bio": "bio must be at most 500 characters (of control characters only tab and line breaks)"
    ", or null",
    "dm_policy": 'dm_policy must be "everyone" or "contacts"',
    "show_presence": "show_presence must be true or false",
    "avatar_media_id": "avatar_media_id must be the id of an image you uploaded, or null",
}


def _changes(update: ProfileUpdate) -> Changes:
    display_name = update.display_name
    if isinstance(display_name, str):
        display_name = display_name.strip()
        if not display_name:
            raise ValidationFailed(
                "display_name must not be blank; send null to clear it", field="display_name"
            )
    return Changes(
        set_display_name=display_name is not msgspec.UNSET,
        display_name=None if display_name is msgspec.UNSET else display_name,
        set_bio=update.bio is not msgspec.UNSET,
        bio=None if update.bio is msgspec.UNSET else update.bio,
        dm_policy=None if update.dm_policy is msgspec.UNSET else update.dm_policy,
        show_presence=None if update.show_presence is msgspec.UNSET else update.show_presence,
        set_avatar=update.avatar_media_id is not msgspec.UNSET,
        avatar_media_id=None if update.avatar_media_id is msgspec.UNSET else update.avatar_media_id,
    )


class UserProfiles:
    def __init__(
        self,
        profiles: Profiles,
        membership: Membership,
        presence: Presence,
        attachments: Attachments,
    ) -> None:
        self._profiles = profiles
        self._attachments = attachments
        self._membership = membership
        self._presence = presence

    async def own(self, user_id: UserId) -> Profile:
        profile = await self._profiles.own(user_id)
        if profile is None:
            raise Unauthorized("the account no longer exists", code="invalid_token")
        return profile

    async def update(self, user_id: UserId, update: ProfileUpdate) -> Profile:
        """The profile with `update` applied; an update that names no field changes nothing."""
        if update == ProfileUpdate():
            return await self.own(user_id)
        changes = _changes(update)
        if changes.set_avatar:
            await self._attachments.check_avatar(changes.avatar_media_id, user_id)
        changed = await self._profiles.change(user_id, changes)
        if changed is None:
            raise Unauthorized("the account no longer exists", code="invalid_token")
        profile, previous_avatar = changed
        if changes.set_avatar:
            await self._attachments.avatar_changed(changes.avatar_media_id, previous_avatar)
        if update.dm_policy is not msgspec.UNSET:
            # Who may write to them is cached with each direct conversation of theirs.
            await self._membership.invalidate_direct_of(user_id)
        if update.show_presence is not msgspec.UNSET:
            await self._presence.visibility_changed(user_id, update.show_presence)
        return profile

    async def public(self, user_id: UserId) -> PublicProfile:
        profile = await self._profiles.public(user_id)
        if profile is None:
            raise NotFound("no such user", code="user_not_found")
        return profile
