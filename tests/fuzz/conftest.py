"""A live server for the fuzz tests: `python -m gochat_py` over real HTTP, with a database
and a Redis of its own, shared by one module's tests.

Fuzzing leaves rate-limit counters, accounts and messages behind; a module of its own keeps
them from reaching other tests, and keeps the per-test fixtures' flush from reaching the
server while it runs."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, settings

from gochat_py.devstack.services import LocalStack, RedisServer, free_port
from gochat_py.settings import load_settings
from tests.conftest import TEMPLATE_DB
from tests.harness import PASSWORD, ServerProcess, bearer, server_environment, unique_name

# Examples per fuzzed operation or frame family: small in `make test`, `make fuzz` raises it.
EXAMPLES = int(os.environ.get("GOCHAT_FUZZ_EXAMPLES", "25"))
# The REST fuzzers draw for every operation, twice over (valid and invalid input), for each of
# three callers: in `make test` fewer per operation keeps them to a fraction of the suite.
REST_EXAMPLES = int(os.environ.get("GOCHAT_FUZZ_EXAMPLES", "10"))
# `make test` draws the same examples every run, so a failure there reproduces; `make fuzz`
# sets GOCHAT_FUZZ_RANDOM=1 to explore new ones each run.
DERANDOMIZE = os.environ.get("GOCHAT_FUZZ_RANDOM", "") != "1"


def fuzz_settings(examples: int = EXAMPLES) -> settings:
    return settings(
        max_examples=examples,
        # Each example is a round trip to a real server: timing belongs to the benchmarks.
        deadline=None,
        derandomize=DERANDOMIZE,
        database=None,  # nothing written into the worktree; a failure prints its example
        # Examples are network calls, slower than Hypothesis expects of pure functions; the
        # fixtures are module-scoped state (a live server, open sockets) on purpose.
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.function_scoped_fixture,
            HealthCheck.data_too_large,
        ],
    )


@dataclass(frozen=True)
class LiveServer:
    process: ServerProcess
    redis_url: str
    stream_partitions: int

    @property
    def base_url(self) -> str:
        return self.process.base_url

    @property
    def ws_url(self) -> str:
        return self.base_url.replace("http://", "ws://") + "/ws"


def is_uuid(value: Any) -> bool:
    """Whether a fuzzed value is an id the server would parse."""
    try:
        uuid.UUID(value)
    except (TypeError, ValueError, AttributeError):
        return False
    return True


def register_sync(client: httpx.Client) -> dict[str, Any]:
    """A new account over a blocking client: {user, tokens}."""
    name = unique_name("fuzz")
    response = client.post(
        "/api/v1/auth/register",
        json={"email": f"{name}@example.com", "username": name, "password": PASSWORD},
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def upload_sync(client: httpx.Client, tokens: dict[str, Any], data: bytes, name: str) -> str:
    """The id of a new upload of `data`."""
    response = client.post("/api/v1/media", files={"file": (name, data)}, headers=bearer(tokens))
    assert response.status_code == 201, response.text
    media_id: str = response.json()["id"]
    return media_id


def start_conversation(client: httpx.Client, tokens: dict[str, Any], body: dict[str, Any]) -> str:
    """The id of a new conversation (`body` as for POST /conversations) holding one message."""
    response = client.post("/api/v1/conversations", json=body, headers=bearer(tokens))
    assert response.status_code in (200, 201), response.text
    conversation_id: str = response.json()["conversation"]["id"]
    # A message, so that history, the list's last message and read marks have data.
    client.post(
        f"/api/v1/conversations/{conversation_id}/messages",
        json={"content": "a message to page through"},
        headers=bearer(tokens),
    ).raise_for_status()
    return conversation_id


@pytest.fixture(scope="module")
def live_server(stack: LocalStack, workdir: Path) -> Iterator[LiveServer]:
    database = f"fuzz_{uuid.uuid4().hex[:16]}"
    stack.postgres.create_database(database, template=TEMPLATE_DB)
    redis = RedisServer(workdir / f"redis-fuzz-{database}", free_port())
    redis.start()
    env = server_environment(
        stack.postgres.url(database),
        redis.url,
        SERVER_PORT=str(free_port()),
        MEDIA_DIR=str(workdir / f"media-{database}"),
    )
    server = ServerProcess(env, workdir / f"{database}.log")
    try:
        asyncio.run(server.wait_healthy())
        yield LiveServer(server, redis.url, load_settings(env).stream_partitions)
    finally:
        server.stop()
        redis.stop()
        stack.postgres.psql(f'DROP DATABASE "{database}" WITH (FORCE)')
    output = server.output()
    assert "Traceback" not in output, output
