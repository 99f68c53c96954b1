"""What a persisted batch does to the media its messages carry, in the batch's transaction:
a stored image or file message marks its media attached (the cleanup spares it) and keeps
its post (its members' access); a deleted one drops its post (its members lose access) and,
when nothing else uses the media, marks it unattached, for the cleanup to delete."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING

import asyncpg
import msgspec

if TYPE_CHECKING:
    from worker.persist import Row


class _MediaId(msgspec.Struct):
    id: uuid.UUID


_media_id = msgspec.json.Decoder(_MediaId)

_ATTACH = """
UPDATE media SET attached_at = now() WHERE id = ANY($1::uuid[]) AND attached_at IS NULL
"""
# The post the sender wrote before its send; written again for a message whose send looked
# failed to the server (its answer lost in an outage) and was undone, yet reached the stream.
_REPOST = """
INSERT INTO media_posts (message_id, media_id, conversation_id)
SELECT p.message_id, p.media_id, p.conversation_id
FROM unnest($1::uuid[], $2::uuid[], $3::uuid[]) AS p (message_id, media_id, conversation_id)
WHERE EXISTS (SELECT 1 FROM media m WHERE m.id = p.media_id)
ON CONFLICT (message_id) DO NOTHING
"""
# A media stays attached while a post of it or an avatar remains.
_DETACH = """
WITH dropped AS (
    DELETE FROM media_posts WHERE message_id = ANY($1::uuid[]) RETURNING media_id
)
UPDATE media m SET attached_at = NULL
WHERE m.id IN (SELECT media_id FROM dropped)
    AND NOT EXISTS (
        SELECT 1 FROM media_posts p
        WHERE p.media_id = m.id AND p.message_id <> ALL($1::uuid[]))
    AND NOT EXISTS (SELECT 1 FROM users u WHERE u.avatar_media_id = m.id)
    AND NOT EXISTS (SELECT 1 FROM conversations c WHERE c.avatar_media_id = m.id)
"""


async def record(conn: asyncpg.Connection, rows: Sequence[Row]) -> None:
    carrying = [row for row in rows if row.media is not None]
    attached = [_media_id.decode(row.media).id for row in carrying if row.media is not None]
    deleted = [row.id for row in rows if row.deleted_at is not None]
    if attached:
        await conn.execute(_ATTACH, attached)
        live = [
            (row.id, media_id, row.conversation_id)
            for row, media_id in zip(carrying, attached, strict=True)
            if row.deleted_at is None
        ]
        if live:
            await conn.execute(_REPOST, *(list(column) for column in zip(*live, strict=True)))
    if deleted:
        await conn.execute(_DETACH, deleted)
