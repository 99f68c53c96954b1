"""The media store the settings name: files under MEDIA_DIR, or an S3-compatible bucket.
Built by each process's composition root (the server's container, the worker's main)."""

from __future__ import annotations

from pathlib import Path

from gochat_py.blobs.local import LocalStore
from gochat_py.blobs.s3 import S3Blobs, s3_store, signed_url_origin
from gochat_py.blobs.store import BlobStore
from gochat_py.settings import Settings


def media_store(settings: Settings) -> BlobStore:
    if settings.media_backend == "s3":
        return S3Blobs(s3_store(settings), settings.media_s3_url_ttl)
    return LocalStore(Path(settings.media_dir) / "blobs")


def staging_dir(settings: Settings) -> Path:
    """Where uploads land while they arrive: beside the local store's blobs, so that a
    staged file is renamed into place."""
    return Path(settings.media_dir) / "staging"


def download_origin(settings: Settings) -> str | None:
    """Another origin a download's bytes come from (the bucket a download redirects to),
    or None when the server sends them itself."""
    if settings.media_backend == "s3":
        return signed_url_origin(settings)
    return None
