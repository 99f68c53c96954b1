"""The S3-compatible media store (MEDIA_BACKEND=s3) through obstore, an async client in
Rust: an upload is streamed from its staged file (multipart past 5 MiB), a download is a
short-lived signed URL the server redirects to after its own access check."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import obstore
from obstore.exceptions import NotFoundError
from obstore.store import S3Store

from gochat_py.settings import Settings

if TYPE_CHECKING:
    from obstore.store import ClientConfig


# Parts of a multipart upload in flight at once, each a 5 MiB buffer: what an upload may
# hold in memory while it goes to the bucket.
PUT_CONCURRENCY = 2


def s3_store(settings: Settings) -> S3Store:
    endpoint = settings.media_s3_endpoint
    options: ClientConfig = {}
    if endpoint is not None:
        # A local or self-hosted server: path-style URLs, and plain http when it says so.
        options["allow_http"] = urlsplit(endpoint).scheme == "http"
    return S3Store(
        settings.media_s3_bucket,
        endpoint=endpoint,
        region=settings.media_s3_region,
        access_key_id=settings.media_s3_access_key_id,
        secret_access_key=settings.media_s3_secret_access_key,
        virtual_hosted_style_request=endpoint is None,
        client_options=options,
    )


def signed_url_origin(settings: Settings) -> str:
    """Where the signed URLs a download redirects to point: the endpoint named (path-style
    URLs), or the bucket's own AWS host. A page showing images from the store allows it."""
    endpoint = settings.media_s3_endpoint
    if endpoint is not None:
        parts = urlsplit(endpoint)
        return f"{parts.scheme}://{parts.netloc}"
    return f"https://{settings.media_s3_bucket}.s3.{settings.media_s3_region}.amazonaws.com"


class S3Blobs:
    def __init__(self, store: S3Store, url_ttl: float) -> None:
        self._store = store
        self._url_ttl = timedelta(seconds=url_ttl)

    async def put(self, key: str, source: Path, content_type: str, disposition: str) -> None:
        # The bucket answers a signed GET with these: it cannot be told per request, so
        # an upload of bytes already stored keeps the first uploader's file name.
        await obstore.put_async(
            self._store,
            key,
            source,
            attributes={"Content-Type": content_type, "Content-Disposition": disposition},
            max_concurrency=PUT_CONCURRENCY,
        )
        source.unlink()

    async def delete(self, key: str) -> None:
        try:
            await obstore.delete_async(self._store, key)
        except NotFoundError:
            pass  # some servers answer 404 for a missing key, S3 itself 204

    async def locate(self, key: str, content_type: str, disposition: str) -> Path | str:
        return await obstore.sign_async(self._store, "GET", key, self._url_ttl)
