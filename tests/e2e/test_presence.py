"""Presence across real server processes: a process killed outright (`kill -9`) closes
nothing, and its users still go offline, announced by a process that survived."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import httpx

from tests.e2e.test_server_process import api_server
from tests.harness import bearer, connect, create_direct, next_frame, register, ws_url

TTL = 3.0  # PRESENCE_TTL here; the heartbeat is a second, and so is the sweep at most
SWEEP = 1.0
SLACK = 2.0  # scheduling on a busy two-core machine


async def test_the_users_of_a_killed_process_go_offline_within_the_ttl_and_a_sweep(
    database_url: str, redis_url: str, tmp_path: Path
) -> None:
    (tmp_path / "alive").mkdir()
    (tmp_path / "doomed").mkdir()
    short = {"PRESENCE_TTL": f"{TTL}s", "PRESENCE_HEARTBEAT": "1s"}
    async with (
        api_server(database_url, redis_url, tmp_path / "alive", **short) as alive,
        api_server(database_url, redis_url, tmp_path / "doomed", **short) as doomed,
        httpx.AsyncClient(base_url=alive.base_url) as one,
        httpx.AsyncClient(base_url=doomed.base_url) as two,
    ):
        alice, bob = await register(one), await register(one)
        await create_direct(one, alice["tokens"], bob["user"]["id"])
        bob_id = bob["user"]["id"]
        async with connect(ws_url(one, alice["tokens"]["access_token"])) as alice_ws:
            await next_frame(alice_ws, lambda f: f.get("event") == "presence_list")
            bob_ws = await connect(ws_url(two, bob["tokens"]["access_token"]))
            online = await next_frame(alice_ws, lambda f: f.get("event") == "presence")
            assert (online["user_id"], online["status"]) == (bob_id, "online")

            killed_at = time.monotonic()
            doomed.stop(signal.SIGKILL)
            offline = await next_frame(
                alice_ws, lambda f: f.get("event") == "presence", timeout=TTL + SWEEP + 10
            )
            took = time.monotonic() - killed_at
            assert (offline["user_id"], offline["status"]) == (bob_id, "offline")
            assert took <= TTL + SWEEP + SLACK, took
            assert offline["last_seen_at"] is not None
            response = await one.get(
                "/api/v1/presence", params={"user_ids": bob_id}, headers=bearer(alice["tokens"])
            )
            assert response.json()["presence"] == [
                {"user_id": bob_id, "status": "offline", "last_seen_at": offline["last_seen_at"]}
            ]
            await bob_ws.close()
