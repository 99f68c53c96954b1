"""The media stores meet one contract, the local one on disk and the S3 one against an
S3-compatible server the suite starts (moto_server, an emulator); the API works the
same on either, S3 downloads redirecting to signed URLs after the access check."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from gochat_py.blobs import store as keys
from gochat_py.blobs.configured import media_store
from gochat_py.blobs.store import BlobStore
from gochat_py.postgres.media import MediaRecords
from gochat_py.settings import Settings, load_settings
from tests.harness import bearer, register, serve_app, server_environment
from tests.integration.test_media_api import upload, uploaded
from tests.media_files import png, png_bomb
from worker.media_cleanup import MediaCleanup

DISPOSITION = "attachment; filename=\"a.txt\"; filename*=UTF-8''a.txt"


def s3_environment(
    database_url: str, redis_url: str, media_dir: Path, endpoint: str, bucket: str
) -> dict[str, str]:
    return server_environment(
        database_url,
        redis_url,
        MEDIA_DIR=str(media_dir),
        MEDIA_BACKEND="s3",
        MEDIA_S3_ENDPOINT=endpoint,
        MEDIA_S3_BUCKET=bucket,
        MEDIA_S3_ACCESS_KEY_ID="test-key",
        MEDIA_S3_SECRET_ACCESS_KEY="test-secret",
    )


@pytest.fixture(params=["local", "s3"])
def store_settings(
    request: pytest.FixtureRequest,
    database_url: str,
    redis_url: str,
    media_dir: Path,
) -> Settings:
    if request.param == "local":
        return load_settings(server_environment(database_url, redis_url, MEDIA_DIR=str(media_dir)))
    endpoint = request.getfixturevalue("s3_endpoint")
    bucket = request.getfixturevalue("s3_bucket")
    return load_settings(s3_environment(database_url, redis_url, media_dir, endpoint, bucket))


async def fetch(store: BlobStore, key: str, content_type: str) -> httpx.Response | bytes | None:
    """What a download of `key` gets: the bytes, or None when the blob is not there."""
    where = await store.locate(key, content_type, DISPOSITION)
    if isinstance(where, Path):
        return where.read_bytes() if where.exists() else None
    async with httpx.AsyncClient() as client:
        response = await client.get(where)
    if response.status_code == 404:
        return None
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == content_type
    assert response.headers["content-disposition"] == DISPOSITION
    return response.content


async def staged(directory: Path, data: bytes) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"staged-{hashlib.sha256(data).hexdigest()[:8]}"
    path.write_bytes(data)
    return path


async def test_a_store_keeps_a_blob_whole_serves_it_and_forgets_it(
    store_settings: Settings, tmp_path: Path
) -> None:
    store = media_store(store_settings)
    data = b"the bytes of a file\n" * 1000
    key = keys.original_key(hashlib.sha256(data).hexdigest())
    source = await staged(tmp_path / "staging", data)
    await store.put(key, source, "text/plain", DISPOSITION)
    assert not source.exists()  # consumed
    assert await fetch(store, key, "text/plain") == data
    # The same bytes again: nothing changes, the staged copy is consumed all the same.
    again = await staged(tmp_path / "staging", data)
    await store.put(key, again, "text/plain", DISPOSITION)
    assert not again.exists()
    assert await fetch(store, key, "text/plain") == data
    await store.delete(key)
    assert await fetch(store, key, "text/plain") is None
    await store.delete(key)  # a missing blob is no error


@pytest.fixture
async def api_on_store(store_settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with serve_app(store_settings) as url, httpx.AsyncClient(base_url=url) as client:
        yield client


async def download(api: httpx.AsyncClient, url: str, token: str) -> httpx.Response:
    """A download as a browser makes it: a redirect to a signed URL is followed, without
    the bearer token (the signature is the only credential the bucket sees)."""
    response = await api.get(url, headers={"Authorization": f"Bearer {token}"})
    if response.status_code == 307:
        assert response.headers["cache-control"] == "private, no-store"
        async with httpx.AsyncClient() as bucket:
            return await bucket.get(response.headers["location"])
    return response


async def test_uploads_and_downloads_work_the_same_on_either_store(
    api_on_store: httpx.AsyncClient, media_dir: Path
) -> None:
    api = api_on_store
    alice, stranger = await register(api), await register(api)
    token = alice["tokens"]["access_token"]
    data = png(40, 30)
    image = await uploaded(api, alice, data, name="photo.pdf", content_type="application/pdf")
    assert (image["content_type"], image["width"], image["height"]) == ("image/png", 40, 30)
    original = await download(api, image["url"], token)
    assert original.status_code == 200
    assert original.content == data
    assert original.headers["content-type"] == "image/png"
    thumbnail = await download(api, image["thumbnail_url"], token)
    assert thumbnail.headers["content-type"] == "image/webp"
    assert thumbnail.content[:4] == b"RIFF"
    for url in (image["url"], image["thumbnail_url"]):
        refused = await api.get(url, headers=bearer(stranger["tokens"]))
        assert refused.status_code == 404
        assert "location" not in refused.headers
    text = await upload(api, alice, b"not a picture\n", "x.png", "image/png")
    assert text.status_code == 415
    bomb = await upload(api, alice, png_bomb(), "bomb.png", "image/png")
    assert bomb.status_code == 422
    assert not list((media_dir / "staging").iterdir())


async def test_the_cleanup_empties_either_store(
    store_settings: Settings,
    api_on_store: httpx.AsyncClient,
    db: asyncpg.Connection,
) -> None:
    alice = await register(api_on_store)
    image = await uploaded(api_on_store, alice, png(9, 9), name="old.png")
    await db.execute(
        "UPDATE media SET created_at = created_at - interval '2 days' WHERE id = $1", image["id"]
    )
    store = media_store(store_settings)
    pool = await asyncpg.create_pool(store_settings.database_url, min_size=0, max_size=1)
    try:
        cleanup = MediaCleanup(MediaRecords(pool), store, 24 * 3600.0, 60.0)
        assert await cleanup.sweep() == 1
    finally:
        await pool.close()
    for key, kind in (
        (keys.original_key(image["sha256"]), "image/png"),
        (keys.thumbnail_key(image["sha256"]), "image/webp"),
    ):
        where = await store.locate(key, kind, DISPOSITION)
        if isinstance(where, Path):
            assert not where.exists()
        else:
            async with httpx.AsyncClient() as client:
                assert (await client.get(where)).status_code == 404
