"""A large upload through the real server process: its memory stays flat, measured from
/proc while the bytes stream in."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from pathlib import Path

import httpx

from gochat_py.devstack.services import free_port
from tests.harness import ServerProcess, bearer, register, server_environment

UPLOAD_BYTES = 100 * 1024 * 1024
RSS_GROWTH_MAX = 32 * 1024 * 1024


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


async def test_a_100_mib_upload_grows_the_server_by_less_than_32_mib(
    database_url: str, redis_url: str, tmp_path: Path
) -> None:
    source = tmp_path / "big.txt"
    line = b"the same words over and over, a large plain text file\n"
    digest = hashlib.sha256()
    with source.open("wb") as file:
        written = 0
        while written < UPLOAD_BYTES:
            piece = line * 20_000
            file.write(piece)
            digest.update(piece)
            written += len(piece)
    env = server_environment(
        database_url,
        redis_url,
        SERVER_PORT=str(free_port()),
        MEDIA_DIR=str(tmp_path / "media"),
        MEDIA_MAX_BYTES=str(2 * UPLOAD_BYTES),
        MEDIA_QUOTA_BYTES=str(4 * UPLOAD_BYTES),
    )
    server = ServerProcess(env, tmp_path / "server.log")
    try:
        await server.wait_healthy()
        pid = server.process.pid
        async with httpx.AsyncClient(base_url=server.base_url, timeout=120) as client:
            alice = await register(client)
            # Warm up: the first upload loads what every upload uses.
            await client.post(
                "/api/v1/media", files={"file": ("w.txt", b"warm")}, headers=bearer(alice["tokens"])
            )
            baseline = rss_bytes(pid)
            peak = baseline
            done = asyncio.Event()

            async def sample() -> None:
                nonlocal peak
                while not done.is_set():
                    peak = max(peak, rss_bytes(pid))
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(done.wait(), 0.02)

            sampler = asyncio.create_task(sample())
            with source.open("rb") as file:
                response = await client.post(
                    "/api/v1/media",
                    files={"file": ("big.txt", file, "text/plain")},
                    headers=bearer(alice["tokens"]),
                )
            done.set()
            await sampler
        assert response.status_code == 201, response.text
        assert response.json()["size"] == written
        assert response.json()["sha256"] == digest.hexdigest()
        assert peak - baseline < RSS_GROWTH_MAX, f"grew {(peak - baseline) / 2**20:.1f} MiB"
    finally:
        server.stop()
