"""The worker's media cleanup against real PostgreSQL and the local store: what nothing
uses is deleted after its grace period, what a message or a profile uses never is."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from gochat_py.blobs.configured import media_store, staging_dir
from gochat_py.postgres.media import MediaRecords
from gochat_py.settings import Settings
from tests.harness import bearer, create_direct, poll_until, register
from tests.integration.test_media_api import uploaded
from tests.media_files import png
from worker.media_cleanup import MediaCleanup

DAY = 24 * 3600.0


@pytest.fixture
async def cleanup(settings: Settings) -> AsyncIterator[MediaCleanup]:
    pool = await asyncpg.create_pool(settings.database_url, min_size=0, max_size=2)
    try:
        yield MediaCleanup(
            MediaRecords(pool), media_store(settings), DAY, 0.05, staging_dir(settings)
        )
    finally:
        await pool.close()


async def age(db: asyncpg.Connection, media: dict[str, Any], days: float = 2) -> None:
    await db.execute(
        "UPDATE media SET created_at = created_at - make_interval(days => $2) WHERE id = $1",
        media["id"],
        days,
    )


def blobs(media_dir: Path) -> set[str]:
    return {p.name for p in (media_dir / "blobs").rglob("*") if p.is_file()}


async def test_unused_media_past_its_grace_period_goes_with_its_blobs(
    api: httpx.AsyncClient, db: asyncpg.Connection, cleanup: MediaCleanup, media_dir: Path
) -> None:
    alice = await register(api)
    old = await uploaded(api, alice, png(12, 12), name="old.png")
    fresh = await uploaded(api, alice, png(13, 13), name="fresh.png")
    await age(db, old)
    assert await cleanup.sweep() == 1
    assert await db.fetchval("SELECT count(*) FROM media WHERE id = $1", old["id"]) == 0
    assert old["sha256"] not in blobs(media_dir)
    assert f"{old['sha256']}.webp" not in blobs(media_dir)
    assert {fresh["sha256"], f"{fresh['sha256']}.webp"} <= blobs(media_dir)
    assert (await api.get(old["url"], headers=bearer(alice["tokens"]))).status_code == 404
    # What it took from the quota is given back.
    assert await db.fetchval("SELECT sum(size) FROM media") == fresh["size"]


async def test_bytes_shared_with_a_kept_upload_stay(
    api: httpx.AsyncClient, db: asyncpg.Connection, cleanup: MediaCleanup, media_dir: Path
) -> None:
    alice, bob = await register(api), await register(api)
    data = png(20, 20)
    first = await uploaded(api, alice, data, name="a.png")
    second = await uploaded(api, bob, data, name="b.png")
    assert first["sha256"] == second["sha256"] and first["id"] != second["id"]
    await age(db, first)
    assert await cleanup.sweep() == 1
    assert first["sha256"] in blobs(media_dir)
    response = await api.get(second["url"], headers=bearer(bob["tokens"]))
    assert response.content == data


async def test_media_in_a_message_or_an_avatar_is_kept_however_old(
    api: httpx.AsyncClient, db: asyncpg.Connection, cleanup: MediaCleanup
) -> None:
    alice, bob = await register(api), await register(api)
    conversation = (await create_direct(api, alice["tokens"], bob["user"]["id"]))["id"]
    posted = await uploaded(api, alice, png(5, 5), name="posted.png")
    avatar = await uploaded(api, alice, png(6, 6), name="me.png")
    sent = await api.post(
        f"/api/v1/conversations/{conversation}/messages",
        json={"type": "image", "media_id": posted["id"]},
        headers=bearer(alice["tokens"]),
    )
    assert sent.status_code == 201
    patched = await api.patch(
        "/api/v1/users/me", json={"avatar_media_id": avatar["id"]}, headers=bearer(alice["tokens"])
    )
    assert patched.status_code == 200
    await age(db, posted, 30)
    await age(db, avatar, 30)
    assert await cleanup.sweep() == 0
    for media in (posted, avatar):
        response = await api.get(media["url"], headers=bearer(bob["tokens"]))
        assert response.status_code == 200


async def test_the_cleanup_runs_every_interval_until_stopped(
    api: httpx.AsyncClient, db: asyncpg.Connection, cleanup: MediaCleanup
) -> None:
    alice = await register(api)
    stop = asyncio.Event()
    running = asyncio.create_task(cleanup.run(stop))
    try:
        old = await uploaded(api, alice, b"old notes\n", name="n.txt")
        await age(db, old)

        async def gone() -> bool:
            return not await db.fetchval("SELECT count(*) FROM media WHERE id = $1", old["id"])

        await poll_until(gone, what="the cleanup to delete the old upload")
    finally:
        stop.set()
        await asyncio.wait_for(running, 5)


async def test_uploads_left_staged_by_a_dead_process_are_removed(
    cleanup: MediaCleanup, media_dir: Path
) -> None:
    staging = media_dir / "staging"
    staging.mkdir(parents=True)
    stale, arriving = staging / "upload-stale", staging / "upload-arriving"
    stale.write_bytes(b"half a file")
    arriving.write_bytes(b"a file on its way")
    two_hours_ago = time.time() - 7200
    os.utime(stale, (two_hours_ago, two_hours_ago))
    await cleanup.sweep()
    assert not stale.exists()
    assert arriving.exists()
