"""An upload landing on local disk while it arrives, hashed and counted as it is written:
memory holds at most WRITE_BATCH_BYTES and a chunk, whatever the size."""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from pathlib import Path
from typing import BinaryIO

from gochat_py.blobs import offloop

# The chunks a server hands over are small (64 KiB from uvicorn): each trip to a thread
# costs the event loop a handoff and the threads a turn at the GIL, so they go in batches.
WRITE_BATCH_BYTES = 1024 * 1024


class StagedFile:
    """A temporary file in the staging directory; `discard` removes whatever is left."""

    def __init__(self, path: Path, file: BinaryIO) -> None:
        self.path = path
        self.size = 0
        self._file = file
        self._hash = hashlib.sha256()
        self._batch: list[bytes] = []
        self._batched = 0

    @classmethod
    async def create(cls, directory: Path, suffix: str = "") -> StagedFile:
        return await offloop.run(cls._create, directory, suffix)

    @classmethod
    def _create(cls, directory: Path, suffix: str) -> StagedFile:
        directory.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=directory, prefix="upload-", suffix=suffix)
        return cls(Path(name), os.fdopen(fd, "wb"))

    async def write(self, chunk: bytes) -> None:
        self._batch.append(chunk)
        self._batched += len(chunk)
        self.size += len(chunk)
        if self._batched >= WRITE_BATCH_BYTES:
            await self._flush_batch()

    async def _flush_batch(self) -> None:
        batch, self._batch, self._batched = self._batch, [], 0
        if batch:
            # Off the loop: a write can wait on the disk, and hashing takes a while.
            await offloop.run(self._write, batch)

    def _write(self, batch: list[bytes]) -> None:
        for chunk in batch:
            self._file.write(chunk)
            self._hash.update(chunk)

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()

    async def finish(self) -> None:
        """Flush and fsync: the bytes are on disk before the store takes the file."""
        await self._flush_batch()
        await offloop.run(self._finish)

    def _finish(self) -> None:
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()

    async def discard(self) -> None:
        await offloop.run(self._discard)

    def _discard(self) -> None:
        self._file.close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
