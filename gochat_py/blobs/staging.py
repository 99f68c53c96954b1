"""An upload landing on local disk while it arrives, hashed and counted as it is written:
memory holds one chunk at a time, whatever the size."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import tempfile
from pathlib import Path
from typing import BinaryIO


class StagedFile:
    """A temporary file in the staging directory; `discard` removes whatever is left."""

    def __init__(self, path: Path, file: BinaryIO) -> None:
        self.path = path
        self.size = 0
        self._file = file
        self._hash = hashlib.sha256()

    @classmethod
    async def create(cls, directory: Path, suffix: str = "") -> StagedFile:
        return await asyncio.to_thread(cls._create, directory, suffix)

    @classmethod
    def _create(cls, directory: Path, suffix: str) -> StagedFile:
        directory.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=directory, prefix="upload-", suffix=suffix)
        return cls(Path(name), os.fdopen(fd, "wb"))

    async def write(self, chunk: bytes) -> None:
        # Off the loop: a write can wait on the disk, and hashing a chunk takes a while.
        await asyncio.to_thread(self._write, chunk)
        self.size += len(chunk)

    def _write(self, chunk: bytes) -> None:
        self._file.write(chunk)
        self._hash.update(chunk)

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()

    async def finish(self) -> None:
        """Flush and fsync: the bytes are on disk before the store takes the file."""
        await asyncio.to_thread(self._finish)

    def _finish(self) -> None:
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()

    async def discard(self) -> None:
        await asyncio.to_thread(self._discard)

    def _discard(self) -> None:
        self._file.close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
