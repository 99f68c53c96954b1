"""Real services for the suite: one throwaway PostgreSQL and Redis per run, a fresh
database (copied from a template built from database/schema.sql) and an empty Redis per test."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from redis.asyncio import Redis

from gochat_py.devstack.services import LocalStack, RedisServer, free_port
from gochat_py.settings import Settings, load_settings
from tests.harness import ServerProcess, create_direct, register, serve_app, server_environment

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE_DB = "gochat_template"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """A failing test's report carries the last lines of every server and worker it ran."""
    if call.when == "setup":
        ServerProcess.started.clear()
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    if report.failed:
        for process in ServerProcess.started:
            report.sections.append((f"log of {process.log_path.name}", process.tail()))


# Where the suite's PostgreSQL and Redis keep their data: in memory where the system has
# a tmpfs. Each test copies the template database; on a disk shared with other work that
# copy waits on I/O (0.3 s a test under load, 20 ms in memory).
MEMORY_DIR = Path("/dev/shm")


@pytest.fixture(scope="session")
def workdir() -> Iterator[Path]:
    # Not under pytest's 0700 tmp tree: PostgreSQL runs as another user when we are root.
    in_memory = MEMORY_DIR.is_dir() and os.access(MEMORY_DIR, os.W_OK | os.X_OK)
    path = Path(tempfile.mkdtemp(prefix="gochat-test-", dir=MEMORY_DIR if in_memory else None))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def stack(workdir: Path) -> Iterator[LocalStack]:
    stack = LocalStack(workdir / "stack", free_port(), free_port(), durable=False)
    stack.start()
    stack.postgres.create_database(TEMPLATE_DB)
    stack.postgres.psql((ROOT / "database" / "schema.sql").read_text(), database=TEMPLATE_DB)
    yield stack
    stack.stop()


@pytest.fixture
async def database_url(stack: LocalStack) -> AsyncIterator[str]:
    name = f"test_{uuid.uuid4().hex[:16]}"
    admin = await asyncpg.connect(stack.postgres.url("postgres"))
    try:
        await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE {TEMPLATE_DB}')
        yield stack.postgres.url(name)
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture
async def redis_url(stack: LocalStack) -> AsyncIterator[str]:
    client = Redis.from_url(stack.redis.url)
    await client.flushall()
    await client.aclose()
    yield stack.redis.url


@pytest.fixture
def own_redis(workdir: Path) -> Iterator[RedisServer]:
    """A Redis of the test's own, for tests that stop or restart it."""
    server = RedisServer(workdir / f"redis-{free_port()}", free_port())
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(database_url)
    yield conn
    await conn.close()


@pytest.fixture(scope="session")
def s3_endpoint(workdir: Path) -> Iterator[str]:
    """An S3-compatible server for the media store's tests: moto's, an emulator (no real
    S3-compatible server installs here), on a free loopback port for the whole run."""
    port = free_port()
    log = (workdir / "moto.log").open("wb")
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{endpoint}/moto-api/", timeout=1)
                break
            except httpx.HTTPError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("moto_server did not start") from None
                time.sleep(0.1)
        yield endpoint
    finally:
        process.terminate()
        process.wait(10)
        log.close()


@pytest.fixture
def s3_bucket(s3_endpoint: str) -> str:
    """A new, empty bucket of the test's own."""
    name = f"media-{uuid.uuid4().hex[:12]}"
    response = httpx.put(f"{s3_endpoint}/{name}", timeout=10)
    assert response.status_code == 200, response.text
    return name


@pytest.fixture
def media_dir(tmp_path: Path) -> Path:
    """Where the test's server keeps uploads: a directory of the test's own."""
    return tmp_path / "media"


@pytest.fixture
def settings(database_url: str, redis_url: str, media_dir: Path) -> Settings:
    return load_settings(server_environment(database_url, redis_url, MEDIA_DIR=str(media_dir)))


@pytest.fixture
async def api(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client for a real uvicorn server running the app on a free port."""
    async with serve_app(settings) as base_url, httpx.AsyncClient(base_url=base_url) as client:
        yield client


@pytest.fixture
async def pair(api: httpx.AsyncClient) -> tuple[dict[str, Any], dict[str, Any], str]:
    """Two new users, alice and bob, and the id of their direct conversation."""
    alice, bob = await register(api), await register(api)
    conversation = await create_direct(api, alice["tokens"], bob["user"]["id"])
    return alice, bob, conversation["id"]


@pytest.fixture
async def two_servers(
    settings: Settings,
) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:
    """Two API processes (real uvicorn servers) on the same PostgreSQL and Redis."""
    async with (
        serve_app(settings) as first_url,
        serve_app(settings) as second_url,
        httpx.AsyncClient(base_url=first_url) as first,
        httpx.AsyncClient(base_url=second_url) as second,
    ):
        yield first, second
