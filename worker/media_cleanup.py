"""The media cleanup: every MEDIA_CLEANUP_INTERVAL, media that nothing uses (no message, no
avatar) and that is older than MEDIA_UNATTACHED_TTL is deleted, its record and, when no
other record shares its bytes, its blobs. Media that a message or a profile still uses
is never touched: a record is deleted only while it is unused, checked in the same
transaction (postgres/media.py)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
from datetime import UTC, datetime, timedelta
from pathlib import Path

from loguru import logger

from gochat_py.blobs import store as keys
from gochat_py.blobs.store import BlobStore
from gochat_py.postgres.media import ExpiredMedia, MediaRecords

BATCH = 500  # records read per query; a sweep goes on until none is left
# An upload stays staged for as long as it takes to arrive and be stored: minutes at most.
# A staged file this old was left by a process that died mid-upload.
STAGED_MAX_AGE = timedelta(hours=1)


class MediaCleanup:
    def __init__(
        self,
        records: MediaRecords,
        store: BlobStore,
        unattached_ttl: float,
        interval: float,
        staging: Path | None = None,
    ) -> None:
        """`staging`: the uploads' staging directory, when this process shares it with
        the servers (MEDIA_DIR on the same disk)."""
        self._records = records
        self._staging = staging
        self._store = store
        self._ttl = timedelta(seconds=unattached_ttl)
        self._interval = interval

    async def run(self, stop: asyncio.Event) -> None:
        """Sweep every interval until `stop`; a failed sweep (PostgreSQL or the store
        down) is logged and tried again at the next one."""
        while not stop.is_set():
            try:
                await self.sweep()
            except Exception as exc:
                logger.bind(error=repr(exc)).warning("media_cleanup_failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self._interval)

    async def sweep(self) -> int:
        """Delete every expired media now; how many records went."""
        cutoff = datetime.now(UTC) - self._ttl
        deleted = 0
        while True:
            expired = await self._records.expired(cutoff, BATCH)
            for item in expired:
                if await self._records.delete(item, functools.partial(self._delete_blobs, item)):
                    deleted += 1
            if len(expired) < BATCH:
                break
        if deleted:
            logger.bind(deleted=deleted).info("media_cleaned")
        if self._staging is not None:
            await asyncio.to_thread(_remove_stale, self._staging)
        return deleted

    async def _delete_blobs(self, item: ExpiredMedia) -> None:
        await self._store.delete(keys.original_key(item.sha256))
        await self._store.delete(keys.thumbnail_key(item.sha256))


def _remove_stale(staging: Path) -> None:
    cutoff = (datetime.now(UTC) - STAGED_MAX_AGE).timestamp()
    if not staging.is_dir():
        return
    for path in staging.iterdir():
        with contextlib.suppress(FileNotFoundError):
            if path.stat().st_mtime < cutoff:
                path.unlink()
                logger.bind(path=path.name).info("stale_upload_removed")
