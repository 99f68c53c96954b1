"""The local media store: blobs as files under MEDIA_DIR, each written atomically (fsync,
then rename into place, then fsync of the directory): a crash leaves the old state or the
new one, never a half-written blob under its key."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from gochat_py.blobs import offloop


class LocalStore:
    def __init__(self, root: Path) -> None:
        self._root = root

    def _path(self, key: str) -> Path:
        # Keys come from blobs/store.py, built from a checked sha256: no `..`, no absolute.
        return self._root / key

    async def put(self, key: str, source: Path, content_type: str, disposition: str) -> None:
        await offloop.run(self._put, self._path(key), source)

    @staticmethod
    def _put(target: Path, source: Path) -> None:
        if target.exists():
            # Content-addressed: the same key holds the same bytes already.
            source.unlink()
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(source, "rb") as file:
            os.fsync(file.fileno())
        os.replace(source, target)
        directory = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(directory)  # the rename itself survives a crash
        finally:
            os.close(directory)

    async def delete(self, key: str) -> None:
        def remove() -> None:
            with contextlib.suppress(FileNotFoundError):
                self._path(key).unlink()

        await offloop.run(remove)

    async def locate(self, key: str, content_type: str, disposition: str) -> Path | str:
        return self._path(key)
