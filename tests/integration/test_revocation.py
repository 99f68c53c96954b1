"""Revocation on one server: a revocation pub/sub never delivered is found once the hub
reconnects, and a revoked session cannot open a socket."""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis
from websockets.exceptions import InvalidStatus

from gochat_py.redis import keys
from gochat_py.websocket.close_codes import WS_4001_SESSION_REVOKED
from tests.harness import (
    PASSWORD,
    connect,
    poll_until,
    pong,
    register,
    ws_url,
)


def session_of(tokens: dict[str, Any]) -> str:
    payload = tokens["access_token"].split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return str(claims["sid"])


async def test_a_revocation_missed_by_pubsub_closes_the_socket_once_the_hub_reconnects(
    api: httpx.AsyncClient, redis: Redis
) -> None:
    registered = await register(api)
    revoked = registered["tokens"]
    login = {"email": registered["user"]["email"], "password": PASSWORD}
    kept = (await api.post("/api/v1/auth/login", json=login)).json()["tokens"]
    async with (
        connect(ws_url(api, revoked["access_token"])) as socket,
        connect(ws_url(api, kept["access_token"])) as other,
    ):
        # Revoked with no announcement, as if it was published while the hub was cut off.
        await redis.set(keys.session_revoked(session_of(revoked)), "logout")
        assert await pong(socket)
        await redis.client_kill_filter(_type="pubsub")

        async def closed() -> bool:
            return socket.close_code is not None

        await poll_until(closed, timeout=10, what="the hub to reconnect and recheck sessions")
        assert socket.close_code == WS_4001_SESSION_REVOKED
        assert await pong(other)
    metrics = (await api.get("/metrics")).text
    assert 'gochat_ws_auth_closes_total{reason="session_revoked"} 1.0' in metrics


async def test_a_revoked_sessions_token_cannot_open_a_socket(api: httpx.AsyncClient) -> None:
    tokens = (await register(api))["tokens"]
    assert (await api.post("/api/v1/auth/logout", json=tokens)).status_code == 204
    with pytest.raises(InvalidStatus) as refused:
        async with connect(ws_url(api, tokens["access_token"])):
            pass
    assert refused.value.response.status_code == 403
