"""Access-token expiry on open sockets, with tokens that live a few seconds: a warning
before expiry, a 4002 close at expiry, and an `auth` frame that moves it."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from gochat_py.realtime.expiry import warning_lead
from gochat_py.settings import load_settings
from gochat_py.websocket.close_codes import WS_4002_TOKEN_EXPIRED
from tests.harness import (
    connect,
    next_frame,
    plain_connect,
    poll_until,
    pong,
    register,
    serve_app,
    server_environment,
    ws_url,
)

ACCESS_TTL = 6  # seconds: long enough to refresh and renew after the warning, short to wait
LEAD = warning_lead(ACCESS_TTL)
CLOSE_SLACK = 1.5  # the sweeper runs once a second; a loaded machine adds a little


@pytest.fixture
async def short_lived(database_url: str, redis_url: str) -> AsyncIterator[httpx.AsyncClient]:
    env = server_environment(database_url, redis_url, JWT_ACCESS_EXPIRY=f"{ACCESS_TTL}s")
    async with serve_app(load_settings(env)) as url, httpx.AsyncClient(base_url=url) as api:
        yield api


def expiry_of(token: str) -> int:
    payload = token.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return int(claims["exp"])


def is_warning(frame: dict[str, object]) -> bool:
    return frame.get("event") == "token_expiring"


def closed(socket: ClientConnection) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return socket.close_code is not None

    return check


async def test_a_socket_is_warned_before_its_token_expires_then_closed_with_4002(
    short_lived: httpx.AsyncClient,
) -> None:
    token = (await register(short_lived))["tokens"]["access_token"]
    expires_at = expiry_of(token)
    async with connect(ws_url(short_lived, token)) as socket:
        warning = await next_frame(socket, is_warning, timeout=ACCESS_TTL + CLOSE_SLACK)
        assert time.time() < expires_at
        assert 0 < warning["expires_in"] <= LEAD
        await poll_until(closed(socket), timeout=LEAD + CLOSE_SLACK, what="the 4002 close")
        closed_at = time.time()
    assert socket.close_code == WS_4002_TOKEN_EXPIRED
    assert socket.close_reason == "token_expired"
    assert expires_at <= closed_at < expires_at + CLOSE_SLACK
    metrics = (await short_lived.get("/metrics")).text
    assert 'gochat_ws_auth_closes_total{reason="token_expired"} 1.0' in metrics


async def test_a_gochat_client_is_not_warned_and_its_socket_closes_with_4002(
    short_lived: httpx.AsyncClient,
) -> None:
    token = (await register(short_lived))["tokens"]["access_token"]
    async with plain_connect(ws_url(short_lived, token)) as socket:
        # It would take the warning for a chat message: the close is all it gets.
        with pytest.raises(ConnectionClosed):
            frame = await next_frame(socket, timeout=ACCESS_TTL + CLOSE_SLACK)
            pytest.fail(f"a gochat client was sent {frame}")
    assert socket.close_code == WS_4002_TOKEN_EXPIRED


async def test_renewing_on_the_socket_keeps_it_open_past_the_first_tokens_expiry(
    short_lived: httpx.AsyncClient,
) -> None:
    tokens = (await register(short_lived))["tokens"]
    first_expiry = expiry_of(tokens["access_token"])
    async with connect(ws_url(short_lived, tokens["access_token"])) as socket:
        await next_frame(socket, is_warning, timeout=ACCESS_TTL + CLOSE_SLACK)
        refreshed = await short_lived.post("/api/v1/auth/refresh", json=tokens)
        fresh = refreshed.json()["tokens"]["access_token"]
        await socket.send(json.dumps({"event": "auth", "token": fresh}))
        reply = await next_frame(socket, lambda f: f.get("event") in ("auth_ok", "error"))
        assert reply["event"] == "auth_ok", reply
        assert reply["expires_in"] > LEAD

        async def past_the_first_expiry() -> bool:
            return time.time() > first_expiry + CLOSE_SLACK

        await poll_until(past_the_first_expiry, timeout=ACCESS_TTL, what="the first expiry")
        assert await pong(socket)
        assert socket.close_code is None
        # The renewed token is warned about and expires in its turn.
        await next_frame(socket, is_warning, timeout=ACCESS_TTL)
        await poll_until(closed(socket), timeout=LEAD + CLOSE_SLACK, what="the 4002 close")
    assert socket.close_code == WS_4002_TOKEN_EXPIRED
    assert time.time() >= expiry_of(fresh)


async def test_a_socket_opened_inside_the_warning_window_is_warned_at_once(
    short_lived: httpx.AsyncClient,
) -> None:
    token = (await register(short_lived))["tokens"]["access_token"]
    expires_at = expiry_of(token)

    async def inside_the_window() -> bool:
        return time.time() > expires_at - LEAD + 0.2

    await poll_until(inside_the_window, timeout=ACCESS_TTL)
    async with connect(ws_url(short_lived, token)) as socket:
        warning = await next_frame(socket, is_warning, timeout=0.5)
        assert 0 <= warning["expires_in"] <= LEAD
