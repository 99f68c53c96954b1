"""Media records in PostgreSQL: who uploaded what, where it was posted, who may read it, and
what the cleanup may delete. The bytes are the media store's; a blob is written and deleted
under an advisory lock on its sha256, so an upload and a cleanup of the same bytes never
leave a record without its blob."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime

import asyncpg
import msgspec

from gochat_py import media
from gochat_py.errors import MediaQuotaExceeded
from gochat_py.ids import ConversationId, MessageId, UserId
from gochat_py.media import MediaId, MediaInfo, UploadedMedia

_COLUMNS = (
    "m.id, m.owner_id, m.sha256, m.content_type, m.size, m.name, m.width, m.height, m.has_thumbnail"
)
# Readable: the uploader; a member of a conversation where it was posted; anyone when it is
# the avatar of a user or a conversation.
_READABLE = f"""
SELECT {_COLUMNS} FROM media m
WHERE m.id = $1 AND (
    m.owner_id = $2
    OR EXISTS (
        SELECT 1 FROM media_posts p
        JOIN conversation_members cm
            ON cm.conversation_id = p.conversation_id AND cm.user_id = $2
        WHERE p.media_id = m.id)
    OR EXISTS (SELECT 1 FROM users u WHERE u.avatar_media_id = m.id)
    OR EXISTS (SELECT 1 FROM conversations c WHERE c.avatar_media_id = m.id))
"""
# A media is in use while a post of it, or an avatar, refers to it.
_UNUSED = """
NOT EXISTS (SELECT 1 FROM media_posts p WHERE p.media_id = m.id)
AND NOT EXISTS (SELECT 1 FROM users u WHERE u.avatar_media_id = m.id)
AND NOT EXISTS (SELECT 1 FROM conversations c WHERE c.avatar_media_id = m.id)
"""
# Not attached (never, or no longer: the last message using it was deleted, the avatar
# changed) and older than the grace period.
_EXPIRED = f"""
SELECT m.id, m.sha256 FROM media m
WHERE m.attached_at IS NULL AND m.created_at < $1 AND {_UNUSED}
ORDER BY m.created_at LIMIT $2
"""
_DELETE = f"DELETE FROM media m WHERE m.id = $1 AND {_UNUSED} RETURNING m.sha256"


def _lock_key(text: str) -> str:
    return f"SELECT pg_advisory_xact_lock(hashtextextended('{text}:' || $1::text, 0))"


_LOCK_BLOB = _lock_key("media-blob")
_LOCK_OWNER = _lock_key("media-owner")


class StoredMedia(msgspec.Struct, frozen=True, kw_only=True):
    id: MediaId
    owner_id: UserId
    sha256: str
    content_type: str
    size: int
    name: str
    width: int | None
    height: int | None
    has_thumbnail: bool

    def info(self) -> MediaInfo:
        return MediaInfo(
            id=self.id,
            content_type=self.content_type,
            size=self.size,
            name=self.name,
            width=self.width,
            height=self.height,
            url=media.url(self.id),
            thumbnail_url=media.thumbnail_url(self.id) if self.has_thumbnail else None,
        )

    def uploaded(self) -> UploadedMedia:
        return UploadedMedia(**msgspec.structs.asdict(self.info()), sha256=self.sha256)


def _stored(row: asyncpg.Record) -> StoredMedia:
    return StoredMedia(**dict(row))


class ExpiredMedia(msgspec.Struct, frozen=True):
    id: MediaId
    sha256: str


class MediaRecords:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def used_bytes(self, owner: UserId) -> int:
        total = await self._pool.fetchval(
            "SELECT coalesce(sum(size), 0) FROM media WHERE owner_id = $1", owner
        )
        return int(total)

    async def add(
        self, record: StoredMedia, quota: int, store: Callable[[], Awaitable[None]]
    ) -> None:
        """Record `record` and run `store` (which writes its blobs) in one transaction:
        InsufficientStorage when the owner's uploads would pass `quota` with it. The blob's
        lock makes a cleanup of the same bytes wait, and the owner's makes concurrent
        uploads count each other."""
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute(_LOCK_OWNER, str(record.owner_id))
            used = await conn.fetchval(
                "SELECT coalesce(sum(size), 0) FROM media WHERE owner_id = $1", record.owner_id
            )
            if int(used) + record.size > quota:
                raise MediaQuotaExceeded(int(used), quota)
            await conn.execute(_LOCK_BLOB, record.sha256)
            await conn.execute(
                "INSERT INTO media (id, owner_id, sha256, content_type, size, name, width,"
                " height, has_thumbnail) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                record.id,
                record.owner_id,
                record.sha256,
                record.content_type,
                record.size,
                record.name,
                record.width,
                record.height,
                record.has_thumbnail,
            )
            await store()

    async def readable(self, media_id: uuid.UUID, viewer: UserId) -> StoredMedia | None:
        row = await self._pool.fetchrow(_READABLE, media_id, viewer)
        return None if row is None else _stored(row)

    async def post(
        self,
        media_id: uuid.UUID,
        owner: UserId,
        conversation_id: ConversationId,
        message_id: MessageId,
    ) -> StoredMedia | None:
        """The media, now readable by the conversation's members; None unless `owner`
        uploaded it. A resend of the same message posts it once."""
        row = await self._pool.fetchrow(
            f"""
            WITH posted AS (
                INSERT INTO media_posts (message_id, media_id, conversation_id)
                SELECT $3, m.id, $4 FROM media m WHERE m.id = $1 AND m.owner_id = $2
                ON CONFLICT (message_id) DO NOTHING
            )
            SELECT {_COLUMNS} FROM media m WHERE m.id = $1 AND m.owner_id = $2
            """,
            media_id,
            owner,
            message_id,
            conversation_id,
        )
        return None if row is None else _stored(row)

    async def unpost(self, message_id: MessageId) -> None:
        """The post of a message that was never sent: its media is no longer readable by
        the conversation's members through it."""
        await self._pool.execute("DELETE FROM media_posts WHERE message_id = $1", message_id)

    async def owned(self, media_id: uuid.UUID, owner: UserId) -> StoredMedia | None:
        row = await self._pool.fetchrow(
            f"SELECT {_COLUMNS} FROM media m WHERE m.id = $1 AND m.owner_id = $2",
            media_id,
            owner,
        )
        return None if row is None else _stored(row)

    async def attach(self, media_id: uuid.UUID) -> None:
        await self._pool.execute(
            "UPDATE media SET attached_at = now() WHERE id = $1 AND attached_at IS NULL", media_id
        )

    async def release(self, media_id: uuid.UUID) -> None:
        """Unattached, unless something still uses it."""
        await self._pool.execute(
            f"UPDATE media m SET attached_at = NULL WHERE m.id = $1 AND {_UNUSED}", media_id
        )

    async def expired(self, created_before: datetime, limit: int) -> list[ExpiredMedia]:
        rows = await self._pool.fetch(_EXPIRED, created_before, limit)
        return [ExpiredMedia(MediaId(row["id"]), row["sha256"]) for row in rows]

    async def delete(self, item: ExpiredMedia, delete_blobs: Callable[[], Awaitable[None]]) -> bool:
        """Delete the record if still unused, then its blobs when no other record shares
        them, in one transaction under the blob's lock; whether it was deleted."""
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute(_LOCK_BLOB, item.sha256)
            if await conn.fetchval(_DELETE, item.id) is None:
                return False
            shared = await conn.fetchval(
                "SELECT EXISTS (SELECT 1 FROM media WHERE sha256 = $1)", item.sha256
            )
            if not shared:
                await delete_blobs()
            return True
