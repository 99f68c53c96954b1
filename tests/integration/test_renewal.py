"""`auth` frames on an open socket: a fresh token is answered `auth_ok`; anything else gets
an error frame naming the problem and leaves the socket as it was."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection

from gochat_py.ids import SessionId, UserId
from gochat_py.settings import Settings
from gochat_py.usecases.tokens import TokenCodec
from gochat_py.websocket.close_codes import WS_4001_SESSION_REVOKED
from tests.harness import (
    connect,
    login,
    next_frame,
    poll_until,
    register,
    ws_url,
)

AUTH_REPLIES = ("auth_ok", "error")


async def authenticate(socket: ClientConnection, frame: dict[str, Any]) -> dict[str, Any]:
    await socket.send(json.dumps({"event": "auth", **frame}))
    return await next_frame(socket, lambda f: f.get("event") in AUTH_REPLIES)


async def still_served(socket: ClientConnection) -> bool:
    await socket.send(json.dumps({"event": "ping"}))
    return (await next_frame(socket, lambda f: f.get("event") == "pong"))["event"] == "pong"


async def test_a_fresh_token_of_the_same_session_is_answered_auth_ok(
    api: httpx.AsyncClient, settings: Settings
) -> None:
    tokens = (await register(api))["tokens"]
    async with connect(ws_url(api, tokens["access_token"])) as socket:
        refreshed = await api.post(
            "/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
        )
        reply = await authenticate(socket, {"token": refreshed.json()["tokens"]["access_token"]})
        assert reply["event"] == "auth_ok", reply
        assert settings.jwt_access_expiry - 2 <= reply["expires_in"] <= settings.jwt_access_expiry
        assert await still_served(socket)


@pytest.mark.parametrize(
    ("frame", "code", "names"),
    [
        ({}, "missing_field", "token"),
        ({"token": 123}, "invalid_field", "token"),
        ({"token": None}, "invalid_field", "token"),
        ({"token": ""}, "invalid_field", "token"),
        ({"token": "x" * 5000}, "invalid_field", "token"),
        ({"token": "garbage"}, "invalid_token", "access token"),
        ({"token": "eyJhbGciOiJub25lIn0.e30."}, "invalid_token", "access token"),
    ],
    ids=["missing", "number", "null", "empty", "oversized", "garbage", "alg-none"],
)
async def test_a_malformed_auth_frame_gets_an_error_frame_and_the_socket_stays_open(
    api: httpx.AsyncClient, frame: dict[str, Any], code: str, names: str
) -> None:
    tokens = (await register(api))["tokens"]
    async with connect(ws_url(api, tokens["access_token"])) as socket:
        reply = await authenticate(socket, frame)
        assert reply["event"] == "error" and reply["code"] == code, reply
        assert names in reply["message"]
        assert await still_served(socket)


async def test_a_refresh_token_is_refused_on_the_socket(api: httpx.AsyncClient) -> None:
    tokens = (await register(api))["tokens"]
    async with connect(ws_url(api, tokens["access_token"])) as socket:
        reply = await authenticate(socket, {"token": tokens["refresh_token"]})
        assert reply["code"] == "wrong_token_type"
        assert await still_served(socket)


async def test_an_expired_token_is_refused_on_the_socket(
    api: httpx.AsyncClient, settings: Settings
) -> None:
    registered = await register(api)
    past = TokenCodec(settings.jwt_secret, 900, 3600, clock=lambda: time.time() - 7200)
    user = UserId(uuid.UUID(registered["user"]["id"]))
    expired = past.issue(user, SessionId("s")).pair.access_token
    async with connect(ws_url(api, registered["tokens"]["access_token"])) as socket:
        reply = await authenticate(socket, {"token": expired})
        assert reply["code"] == "token_expired"
        assert await still_served(socket)


async def test_another_users_token_is_refused_and_the_socket_stays_its_owners(
    api: httpx.AsyncClient,
) -> None:
    alice, bob = await register(api), await register(api)
    async with connect(ws_url(api, alice["tokens"]["access_token"])) as socket:
        reply = await authenticate(socket, {"token": bob["tokens"]["access_token"]})
        assert reply["event"] == "error" and reply["code"] == "wrong_user", reply
        assert await still_served(socket)
        # Still alice's session: bob logging out does not touch it, alice logging out does.
        await api.post("/api/v1/auth/logout", json=bob["tokens"])
        assert await still_served(socket)
        await api.post("/api/v1/auth/logout", json=alice["tokens"])
        await socket.wait_closed()
        assert socket.close_code == WS_4001_SESSION_REVOKED


async def test_a_revoked_sessions_token_is_refused_and_the_socket_stays_open(
    api: httpx.AsyncClient,
) -> None:
    registered = await register(api)
    other = await login(api, registered["user"])
    assert (await api.post("/api/v1/auth/logout", json=other)).status_code == 204
    async with connect(ws_url(api, registered["tokens"]["access_token"])) as socket:
        reply = await authenticate(socket, {"token": other["access_token"]})
        assert reply["event"] == "error" and reply["code"] == "session_revoked", reply
        assert await still_served(socket)


async def test_a_token_of_another_live_session_moves_the_socket_to_it(
    api: httpx.AsyncClient,
) -> None:
    registered = await register(api)
    first = registered["tokens"]
    second = await login(api, registered["user"])
    async with connect(ws_url(api, first["access_token"])) as socket:
        assert (await authenticate(socket, {"token": second["access_token"]}))["event"] == "auth_ok"
        assert (await api.post("/api/v1/auth/logout", json=first)).status_code == 204
        assert await still_served(socket)
        assert (await api.post("/api/v1/auth/logout", json=second)).status_code == 204

        async def closed() -> bool:
            return socket.close_code is not None

        await poll_until(closed, timeout=5, what="the socket to close with its new session")
        assert socket.close_code == WS_4001_SESSION_REVOKED
