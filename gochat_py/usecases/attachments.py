"""Putting an upload to use, in a message or as an avatar: only its uploader may, an image
where an image is needed, and the media's attached mark kept true (the cleanup deletes
what is not attached)."""

from __future__ import annotations

import uuid

from gochat_py import media_types
from gochat_py.errors import ValidationFailed
from gochat_py.ids import ConversationId, MessageId, UserId
from gochat_py.media import MediaInfo
from gochat_py.messages import SentType
from gochat_py.postgres.media import MediaRecords, StoredMedia


class MediaNotFound(ValidationFailed):
    """The same answer for an unknown id and someone else's upload: only the uploader may
    use a media, and trying reveals nothing of others' uploads."""

    code = "media_not_found"


class NotAnImage(ValidationFailed):
    code = "not_an_image"


def _require_image(found: StoredMedia, use: str, field: str) -> None:
    if found.content_type not in media_types.RASTER:
        raise NotAnImage(
            f"{use} needs an image (JPEG, PNG, GIF or WebP); this is {found.content_type}",
            field=field,
        )


class Attachments:
    def __init__(self, records: MediaRecords) -> None:
        self._records = records

    async def post(
        self,
        type: SentType,
        media_id: uuid.UUID,
        sender: UserId,
        conversation_id: ConversationId,
        message_id: MessageId,
    ) -> MediaInfo:
        """The media of an image or file message, readable by the conversation's members
        from now on; the worker marks it attached once the message is stored."""
        found = await self._records.post(media_id, sender, conversation_id, message_id)
        if found is None:
            raise MediaNotFound("media_id is not an upload of yours", field="media_id")
        if type == "image":
            _require_image(found, "an image message", "media_id")
        return found.info()

    async def unpost(self, message_id: MessageId) -> None:
        """Undo `post` for a message whose send failed: nobody gains access to a file
        that was never posted, and the cleanup may delete it."""
        await self._records.unpost(message_id)

    async def check_avatar(self, media_id: uuid.UUID | None, owner: UserId) -> None:
        """An avatar is an image its setter uploaded (None: no avatar)."""
        if media_id is None:
            return
        found = await self._records.owned(media_id, owner)
        if found is None:
            raise MediaNotFound(
                "avatar_media_id is not an upload of yours", field="avatar_media_id"
            )
        _require_image(found, "an avatar", "avatar_media_id")

    async def avatar_changed(self, new: uuid.UUID | None, old: uuid.UUID | None) -> None:
        """The new avatar is attached; the old one, when nothing else uses it, no longer."""
        if new is not None:
            await self._records.attach(new)
        if old is not None and old != new:
            await self._records.release(old)
