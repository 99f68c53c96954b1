from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from websockets.exceptions import InvalidStatus

from gochat_py.devstack.services import free_port
from tests.harness import (
    ROOT,
    ServerProcess,
    bearer,
    next_frame,
    register,
    server_environment,
    upgrade_request,
)
from tests.harness import (
    connect as ws_connect,
)


@pytest.mark.parametrize(
    ("variable", "value"),
    [("JWT_ACCESS_EXPIRY", "15x"), ("SERVER_PORT", "abc"), ("LOG_FORMAT", "yaml")],
)
def test_a_bad_setting_stops_the_server_with_one_line_naming_it(variable: str, value: str) -> None:
    env = {**os.environ, variable: value}
    out = subprocess.run(
        [sys.executable, "-m", "gochat_py"], env=env, cwd=ROOT, capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith(f"configuration error: {variable}: ")


def test_production_refuses_to_start_with_the_default_secret() -> None:
    env = {k: v for k, v in os.environ.items() if k != "JWT_SECRET"}
    out = subprocess.run(
        [sys.executable, "-m", "gochat_py"], env={**env, "ENV": "prod"}, cwd=ROOT,
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert out.returncode == 2
    assert "JWT_SECRET" in out.stderr


@asynccontextmanager
async def api_server(
    database_url: str, redis_url: str, tmp_path: Path, **settings: str
) -> AsyncIterator[ServerProcess]:
    """`python -m gochat_py` on a free port, healthy; stopped on the way out, so that its
    whole log can be read after the block."""
    env = server_environment(database_url, redis_url, SERVER_PORT=str(free_port()), **settings)
    server = ServerProcess(env, tmp_path / "server.log")
    try:
        await server.wait_healthy()
        yield server
    finally:
        server.stop()


async def test_tokens_never_reach_the_log(
    database_url: str, redis_url: str, tmp_path: Path
) -> None:
    async with api_server(database_url, redis_url, tmp_path, LOG_LEVEL="debug") as server:
        port = server.port
        async with httpx.AsyncClient(base_url=server.base_url) as client:
            registered = await register(client)
            tokens = registered["tokens"]
            access, refresh = tokens["access_token"], tokens["refresh_token"]
            await client.get("/api/v1/auth/me", headers=bearer(tokens))
            await client.get(f"/api/v1/auth/me?token={access}")
            await client.get(f"/api/v1/no/such/route?access_token={access}")
            await client.post("/api/v1/auth/refresh", json={"refresh_token": refresh})
            await client.post("/api/v1/auth/logout", json={"refresh_token": "x" + refresh})
        with pytest.raises(InvalidStatus):
            async with ws_connect(f"ws://127.0.0.1:{port}/ws?token={access[:-3]}xyz"):
                pass
        async with ws_connect(f"ws://127.0.0.1:{port}/ws?token={access}") as socket:
            await socket.send('{"event": "ping"}')
            assert (await next_frame(socket))["event"] == "pong"
    log = server.output()
    assert "server_stopped" in log, log
    assert "path=/api/v1/auth/me status=200" in log, log
    assert "path=/api/v1/no/such/route status=404" in log, log
    assert "socket_refused reason=invalid_token" in log, log
    assert "socket_opened" in log, log
    for secret in (access, refresh, access.split(".")[1], refresh.split(".")[2]):
        assert secret not in log


async def test_json_logs_are_one_object_per_line_with_a_request_id(
    database_url: str, redis_url: str, tmp_path: Path
) -> None:
    settings = {"LOG_FORMAT": "json", "LOG_LEVEL": "info"}
    async with api_server(database_url, redis_url, tmp_path, **settings) as server:
        async with httpx.AsyncClient(base_url=server.base_url) as client:
            await client.get("/api/v1/health", headers={"x-request-id": "req-42"})
    records = [json.loads(line) for line in server.output().splitlines() if line.strip()]
    requests = [r for r in records if r["record"]["message"] == "request"]
    assert any(r["record"]["extra"]["request_id"] == "req-42" for r in requests), records


async def test_a_client_gone_before_its_socket_is_accepted_is_no_error(
    database_url: str, redis_url: str, tmp_path: Path
) -> None:
    async with api_server(database_url, redis_url, tmp_path, LOG_LEVEL="info") as server:
        async with httpx.AsyncClient(base_url=server.base_url) as client:
            token = (await register(client))["tokens"]["access_token"]
        url = f"ws://127.0.0.1:{server.port}/ws?token={token}"
        for _ in range(5):
            # The upgrade request, then gone while the server looks the token's user up.
            _, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(upgrade_request(url))
            writer.close()
        async with ws_connect(url) as socket:
            await socket.send('{"event": "ping"}')
            assert (await next_frame(socket))["event"] == "pong"
    log = server.output()
    assert "socket_gone_before_accept" in log, log  # the path was taken
    assert "Traceback" not in log and "Exception in ASGI application" not in log, log
