"""Uploading a file: rate-limited, streamed to a staged file (one chunk in memory at a
time), its type detected from its first bytes, refused past the size limit or the owner's
quota as soon as the bytes pass them, then stored under its sha256 with its thumbnail."""

from __future__ import annotations

from collections.abc import AsyncIterable
from pathlib import Path

from gochat_py import media, media_types
from gochat_py.blobs import store as keys
from gochat_py.blobs.images import THUMBNAIL_TYPE, ImageFacts, Thumbnailer
from gochat_py.blobs.staging import StagedFile
from gochat_py.blobs.store import BlobStore
from gochat_py.errors import (
    MediaQuotaExceeded,
    PayloadTooLarge,
    UnsupportedMediaType,
    ValidationFailed,
)
from gochat_py.ids import UserId, uuid7
from gochat_py.media import MediaId, UploadedMedia, display_name
from gochat_py.postgres.media import MediaRecords, StoredMedia
from gochat_py.redis.ratelimit import RateLimiter

RATE_ACTION = "media_upload"


class Uploads:
    def __init__(
        self,
        records: MediaRecords,
        store: BlobStore,
        staging: Path,
        thumbnailer: Thumbnailer,
        limiter: RateLimiter,
        rate_limit: int,
        max_bytes: int,
        quota: int,
    ) -> None:
        self._records = records
        self._store = store
        self._staging = staging
        self._thumbnailer = thumbnailer
        self._limiter = limiter
        self._rate_limit = rate_limit
        self.max_bytes = max_bytes
        self._quota = quota

    async def upload(
        self,
        owner: UserId,
        client_name: str | None,
        declared_type: str | None,
        chunks: AsyncIterable[bytes],
    ) -> UploadedMedia:
        """The stored media. RateLimited (429); PayloadTooLarge (413) once the bytes pass
        MEDIA_MAX_BYTES; InsufficientStorage (507) once they pass what is left of the quota;
        UnsupportedMediaType (415) for a type off the allow-list, decided by the first
        bytes; InvalidImage or ImageTooLarge (422) for an image that does not decode or
        has too many pixels. The type the client declared is not believed, but one that says
        "image" is held to it: bytes that are no image are refused (415), where an image
        declared as something else is kept as the image it is. Nothing is kept of a
        refused upload."""
        claims_image = (declared_type or "").lower().startswith("image/")
        await self._limiter.hit(RATE_ACTION, str(owner), self._rate_limit)
        used = await self._records.used_bytes(owner)
        room = self._quota - used
        if room <= 0:
            raise MediaQuotaExceeded(used, self._quota)
        staged = await StagedFile.create(self._staging)
        try:
            content_type = await self._receive(staged, chunks, room, used, claims_image)
            await staged.finish()
            return await self._keep(owner, display_name(client_name), staged, content_type)
        finally:
            await staged.discard()

    async def _receive(
        self,
        staged: StagedFile,
        chunks: AsyncIterable[bytes],
        room: int,
        used: int,
        claims_image: bool,
    ) -> str:
        head = b""
        content_type: str | None = None
        async for chunk in chunks:
            size = staged.size + len(chunk)
            if size > self.max_bytes:
                raise PayloadTooLarge(
                    f"a file may have at most {self.max_bytes:,} bytes", code="file_too_large"
                )
            if size > room:
                raise MediaQuotaExceeded(used, self._quota)
            if content_type is None:
                head += chunk[: media_types.SNIFF_BYTES - len(head)]
                if len(head) >= media_types.SNIFF_BYTES:
                    content_type = _allowed(head, claims_image)
            await staged.write(chunk)
        if staged.size == 0:
            raise ValidationFailed("the file is empty", code="empty_file", field="file")
        return content_type or _allowed(head, claims_image)

    async def _keep(
        self, owner: UserId, name: str, staged: StagedFile, content_type: str
    ) -> UploadedMedia:
        sha256 = staged.sha256
        facts: ImageFacts | None = None
        thumbnail = None
        if content_type in media_types.RASTER:
            thumbnail = await StagedFile.create(self._staging, ".webp")
        try:
            if thumbnail is not None:
                facts = await self._thumbnailer.thumbnail(staged.path, thumbnail.path)
            record = StoredMedia(
                id=MediaId(uuid7()),
                owner_id=owner,
                sha256=sha256,
                content_type=content_type,
                size=staged.size,
                name=name,
                width=None if facts is None else facts.width,
                height=None if facts is None else facts.height,
                has_thumbnail=thumbnail is not None,
            )

            async def store() -> None:
                await self._store.put(
                    keys.original_key(sha256),
                    staged.path,
                    content_type,
                    media.disposition(content_type, name),
                )
                if thumbnail is not None:
                    await self._store.put(
                        keys.thumbnail_key(sha256),
                        thumbnail.path,
                        THUMBNAIL_TYPE,
                        media.thumbnail_disposition(name),
                    )

            await self._records.add(record, self._quota, store)
        finally:
            if thumbnail is not None:
                await thumbnail.discard()
        return record.uploaded()


def _allowed(head: bytes, claims_image: bool) -> str:
    content_type = media_types.detect(head)
    if claims_image and content_type not in media_types.RASTER:
        raise UnsupportedMediaType(
            "the file was sent as an image but is not one (JPEG, PNG, GIF or WebP)",
            code="not_an_image",
        )
    if content_type is None:
        raise UnsupportedMediaType(
            "this kind of file is not accepted: images (JPEG, PNG, GIF, WebP), PDF, plain"
            " text, audio, video and zip are",
            code="unsupported_file_type",
        )
    return content_type
