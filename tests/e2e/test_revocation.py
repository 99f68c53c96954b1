"""Revocation across two real server processes: a revoked session's sockets close on both
within a second, other sessions of the same user keep working, and REST refuses its token."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection

from gochat_py.websocket.close_codes import WS_4001_SESSION_REVOKED
from tests.e2e.test_server_process import api_server
from tests.harness import (
    bearer,
    connect,
    login,
    pong,
    register,
    ws_url,
)

REVOCATION_DEADLINE = 1.0  # DESIGN invariant 8: within a second, on every process


@pytest.fixture
async def two_processes(
    database_url: str, redis_url: str, tmp_path: Path
) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    async with (
        api_server(database_url, redis_url, tmp_path / "one") as first,
        api_server(database_url, redis_url, tmp_path / "two") as second,
        httpx.AsyncClient(base_url=first.base_url) as one,
        httpx.AsyncClient(base_url=second.base_url) as two,
    ):
        yield one, two


async def closed_within(socket: ClientConnection, since: float) -> float:
    """Seconds from `since` until the server closed `socket`."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(5):
            await socket.wait_closed()
    assert socket.close_code is not None, "the socket is still open"
    return time.monotonic() - since


@contextlib.asynccontextmanager
async def sockets_on(
    one: httpx.AsyncClient, two: httpx.AsyncClient, tokens: dict[str, Any]
) -> AsyncIterator[tuple[ClientConnection, ClientConnection]]:
    """A socket of the session on each process."""
    token = tokens["access_token"]
    async with connect(ws_url(one, token)) as first, connect(ws_url(two, token)) as second:
        assert await pong(first) and await pong(second)
        yield first, second


async def assert_closed_as_revoked(sockets: tuple[ClientConnection, ...], since: float) -> None:
    for socket in sockets:
        took = await closed_within(socket, since)
        assert took < REVOCATION_DEADLINE, f"closed {took:.3f}s after the revocation"
        assert socket.close_code == WS_4001_SESSION_REVOKED
        assert socket.close_reason == "session_revoked"


async def test_logout_closes_the_sessions_sockets_on_every_process_within_a_second(
    two_processes: tuple[httpx.AsyncClient, httpx.AsyncClient],
) -> None:
    one, two = two_processes
    registered = await register(one)
    phone = await login(one, registered["user"])
    laptop = await login(two, registered["user"])
    async with sockets_on(one, two, phone) as phone_sockets, sockets_on(one, two, laptop) as kept:
        response = await one.post("/api/v1/auth/logout", json=phone)
        assert response.status_code == 204
        await assert_closed_as_revoked(phone_sockets, since=time.monotonic())
        # The same user's other session: its sockets stay open and working on both.
        assert await pong(kept[0]) and await pong(kept[1])
        assert (await two.get("/api/v1/auth/me", headers=bearer(laptop))).status_code == 200
    for client in (one, two):
        refused = await client.get("/api/v1/auth/me", headers=bearer(phone))
        assert refused.status_code == 401
        assert refused.json()["error"]["code"] == "session_revoked"


async def test_reusing_a_spent_refresh_token_closes_the_sessions_sockets_on_every_process(
    two_processes: tuple[httpx.AsyncClient, httpx.AsyncClient],
) -> None:
    one, two = two_processes
    registered = await register(one)
    first = registered["tokens"]
    other = await login(two, registered["user"])
    rotated = await one.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert rotated.status_code == 200
    current = rotated.json()["tokens"]
    async with (
        sockets_on(one, two, first) as stale,
        sockets_on(one, two, current) as fresh,
        sockets_on(one, two, other) as kept,
    ):
        reuse = await two.post(
            "/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]}
        )
        assert reuse.status_code == 401
        # Every socket of the session, whichever of its access tokens it was opened with.
        await assert_closed_as_revoked((*stale, *fresh), since=time.monotonic())
        assert await pong(kept[0]) and await pong(kept[1])
    for tokens in (first, current):
        assert (await one.get("/api/v1/auth/me", headers=bearer(tokens))).status_code == 401
