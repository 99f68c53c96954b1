"""Reading a media: who may (the uploader, members of a conversation it was posted in,
anyone for an avatar; 404 for everyone else, the same as for no such id), and where its
bytes are served from, with the headers that keep a browser from running them."""

from __future__ import annotations

import uuid
from pathlib import Path

import msgspec

from gochat_py import media
from gochat_py.blobs import store as keys
from gochat_py.blobs.images import THUMBNAIL_TYPE
from gochat_py.blobs.store import BlobStore
from gochat_py.errors import NotFound
from gochat_py.ids import UserId
from gochat_py.postgres.media import MediaRecords


class Download(msgspec.Struct, frozen=True, kw_only=True):
    """One download: a local file to send, or a signed URL to redirect to."""

    location: Path | str
    content_type: str
    etag: str  # quoted: the bytes are content-addressed, so their sha256 names a version
    disposition: str


class MediaAccess:
    def __init__(self, records: MediaRecords, store: BlobStore) -> None:
        self._records = records
        self._store = store

    async def original(self, media_id: uuid.UUID, viewer: UserId) -> Download:
        found = await self._records.readable(media_id, viewer)
        if found is None:
            raise NotFound("no such media", code="media_not_found")
        disposition = media.disposition(found.content_type, found.name)
        location = await self._store.locate(
            keys.original_key(found.sha256), found.content_type, disposition
        )
        return Download(
            location=location,
            content_type=found.content_type,
            etag=f'"{found.sha256}"',
            disposition=disposition,
        )

    async def thumbnail(self, media_id: uuid.UUID, viewer: UserId) -> Download:
        found = await self._records.readable(media_id, viewer)
        if found is None or not found.has_thumbnail:
            raise NotFound("no such thumbnail", code="media_not_found")
        disposition = media.thumbnail_disposition(found.name)
        location = await self._store.locate(
            keys.thumbnail_key(found.sha256), THUMBNAIL_TYPE, disposition
        )
        return Download(
            location=location,
            content_type=THUMBNAIL_TYPE,
            etag=f'"t-{found.sha256}"',
            disposition=disposition,
        )
