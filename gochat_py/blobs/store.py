"""The media store's port: what the use cases need of wherever the bytes live, and the keys
they live under. A key is made from a sha256 alone, never from anything a client sent."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Protocol

_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def original_key(sha256: str) -> str:
    """Where the uploaded bytes live: two levels of fan-out keep directories small."""
    return f"{_checked(sha256)[:2]}/{sha256[2:4]}/{sha256}"


def thumbnail_key(sha256: str) -> str:
    """The thumbnail of the image with these bytes: one per content, like the original."""
    return f"thumbnails/{_checked(sha256)[:2]}/{sha256}.webp"


def _checked(sha256: str) -> str:
    if not _SHA256.match(sha256):
        raise ValueError(f"not a sha256 in hex: {sha256!r}")
    return sha256


class BlobStore(Protocol):
    """Blobs under keys: written whole or not at all, idempotent, deleted when unused."""

    async def put(self, key: str, source: Path, content_type: str, disposition: str) -> None:
        """Store the file at `source` under `key` (consumed: it is moved or removed);
        a store that serves downloads itself answers them with these headers."""

    async def delete(self, key: str) -> None:
        """Forget `key`; nothing happens when it is not there."""

    async def locate(self, key: str, content_type: str, disposition: str) -> Path | str:
        """Where a download is served from: a local file, or a short-lived URL to
        redirect to that answers with this Content-Type and Content-Disposition."""
