"""Does a login storm stall the event loop? Health and WebSocket latency idle vs. under 20
looping logins.

Two probes, never more than one of each in flight: `GET /api/v1/health`, and a WebSocket
round trip, in which one connected user sends a message into a direct conversation and
waits for its own copy to come back on the same socket (the whole send and delivery path:
decode, authorize, the Redis round trip, pub/sub, the socket's queue). Each is first
repeated back to back on the idle server, then both run every 10 ms during the storm.

`python -m bench.login_storm [--seconds N]` from the repo root: starts a throwaway PostgreSQL,
Redis and API server, prints a table and appends one JSON line to bench/results/.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from picows import (
    WSCloseCode,
    WSError,
    WSFrame,
    WSListener,
    WSMsgType,
    WSTransport,
    ws_connect,
)

from bench.results import latency_summary, record
from bench.stack import bench_stack
from gochat_py.devstack.services import StackError
from gochat_py.settings import Settings

USERS = 20
BASELINE_PROBES = 300
PROBE_INTERVAL = 0.010
TARGET_HEALTH_P99_MS = 50.0
TARGET_WS_P99_MS = 50.0
# A login waits behind the whole storm in the server's argon2 queue; seconds, not ms.
LOGIN_TIMEOUT = 60.0
PROBE_TIMEOUT = 10.0
ECHO_USER = USERS  # the WebSocket prober: registered after the storm's users, not one of them
ERROR_EVENT = b'"event":"error"'


async def probe(client: httpx.AsyncClient) -> float:
    started = time.perf_counter()
    response = await client.get("/api/v1/health")
    response.raise_for_status()
    return (time.perf_counter() - started) * 1000


class Echo(WSListener):
    """The prober's socket: sends a message and times it until its own copy comes back."""

    def __init__(self, conversation_id: str) -> None:
        super().__init__()
        self.transport: WSTransport | None = None
        self._head = b'{"conversation_id":"%s","content":"' % conversation_id.encode()
        self._sent = 0
        self._waiting: tuple[bytes, asyncio.Future[None]] | None = None

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.transport = transport

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if self._waiting is None or frame.msg_type != WSMsgType.TEXT:
            return
        marker, done = self._waiting
        if done.done():
            return  # acks, and copies of earlier messages
        payload = frame.get_payload_as_bytes()
        if marker in payload:
            done.set_result(None)
        elif ERROR_EVENT in payload:
            done.set_exception(RuntimeError(f"send refused: {payload[:200]!r}"))

    async def round_trip(self) -> float:
        assert self.transport is not None
        self._sent += 1
        # `;` ends the marker, so that "rt:1;" is not found in the copy of message 10.
        marker = b"rt:%d;" % self._sent
        done = asyncio.get_running_loop().create_future()
        self._waiting = (marker, done)
        started = time.perf_counter()
        self.transport.send(WSMsgType.TEXT, self._head + marker + b'"}')
        await asyncio.wait_for(done, PROBE_TIMEOUT)
        return (time.perf_counter() - started) * 1000

    async def close(self) -> None:
        if self.transport is not None:
            self.transport.send_close(WSCloseCode.OK)
            await asyncio.wait_for(self.transport.wait_disconnected(), PROBE_TIMEOUT)


async def prober(probe: Callable[[], Awaitable[float]], deadline: float, out: list[float]) -> None:
    # Ticks missed during a slow probe are skipped, not made up in a burst: a burst would
    # add fast samples right after each stall and pull the p99 down.
    tick = time.monotonic()
    while time.monotonic() < deadline:
        out.append(await probe())
        tick = max(tick + PROBE_INTERVAL, time.monotonic())
        await asyncio.sleep(tick - time.monotonic())


def credentials(i: int) -> dict[str, str]:
    return {"email": f"storm{i}@bench.test", "password": f"storm-password-{i}"}


async def register_users(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    """The storm's users and the WebSocket prober (the last), as registration returns them."""
    responses = await asyncio.gather(
        *(
            client.post("/api/v1/auth/register", json={**credentials(i), "username": f"storm{i}"})
            for i in range(USERS + 1)
        )
    )
    refused = [r.status_code for r in responses if r.status_code != 201]
    if refused:
        raise RuntimeError(f"registration failed with statuses {refused}")
    return [r.json() for r in responses]


async def connect_echo(
    client: httpx.AsyncClient, base_url: str, accounts: list[dict[str, Any]]
) -> Echo:
    """The prober's socket, in a direct conversation with the first storm user."""
    token = accounts[ECHO_USER]["tokens"]["access_token"]
    response = await client.post(
        "/api/v1/conversations",
        json={"participant_id": accounts[0]["user"]["id"]},
        headers={"Authorization": f"Bearer {token}"},
    )
    if response.status_code != 201:
        raise RuntimeError(f"POST /conversations: {response.status_code} {response.text[:200]}")
    echo = Echo(response.json()["conversation"]["id"])
    url = base_url.replace("http://", "ws://", 1) + f"/ws?token={token}"
    await ws_connect(lambda: echo, url)
    return echo


async def login_loop(
    client: httpx.AsyncClient, i: int, deadline: float, out: list[float], errors: list[int]
) -> None:
    body = credentials(i)
    while time.monotonic() < deadline:
        started = time.perf_counter()
        response = await client.post("/api/v1/auth/login", json=body)
        if response.status_code == 200:
            out.append((time.perf_counter() - started) * 1000)
        else:
            errors.append(response.status_code)


async def measure(base_url: str, seconds: float) -> dict[str, object]:
    async with (
        httpx.AsyncClient(base_url=base_url, timeout=PROBE_TIMEOUT) as health_client,
        httpx.AsyncClient(base_url=base_url, timeout=LOGIN_TIMEOUT) as login_client,
    ):
        accounts = await register_users(login_client)
        echo = await connect_echo(login_client, base_url, accounts)
        try:
            health_baseline = [await probe(health_client) for _ in range(BASELINE_PROBES)]
            ws_baseline = [await echo.round_trip() for _ in range(BASELINE_PROBES)]

            health: list[float] = []
            ws: list[float] = []
            logins: list[float] = []
            errors: list[int] = []
            started = time.monotonic()
            deadline = started + seconds
            await asyncio.gather(
                prober(lambda: probe(health_client), deadline, health),
                prober(echo.round_trip, deadline, ws),
                *(login_loop(login_client, i, deadline, logins, errors) for i in range(USERS)),
            )
            elapsed = time.monotonic() - started
        finally:
            await echo.close()

    idle, storm = latency_summary(health_baseline), latency_summary(health)
    ws_idle, ws_storm = latency_summary(ws_baseline), latency_summary(ws)
    health_met = storm["p99_ms"] < TARGET_HEALTH_P99_MS
    ws_met = ws_storm["p99_ms"] < TARGET_WS_P99_MS
    return {
        "health_idle": idle,
        "health_storm": storm,
        "ws_idle": ws_idle,
        "ws_storm": ws_storm,
        "ws_probe": "send in a direct conversation until the sender's own copy arrives",
        "login": {
            **latency_summary(logins),
            "completed": len(logins),
            "per_second": round(len(logins) / elapsed, 2),
            "errors": len(errors),
            "elapsed_s": round(elapsed, 2),
        },
        "health_p99_ratio_vs_idle": round(storm["p99_ms"] / idle["p99_ms"], 2),
        "ws_p99_ratio_vs_idle": round(ws_storm["p99_ms"] / ws_idle["p99_ms"], 2),
        "target_health_p99_ms": TARGET_HEALTH_P99_MS,
        "target_ws_p99_ms": TARGET_WS_P99_MS,
        "health_target_met": health_met,
        "ws_target_met": ws_met,
        "target_met": health_met and ws_met,
    }


def table(result: dict[str, object], seconds: float, pinned: bool) -> str:
    where = "server on CPU 0, load on CPU 1" if pinned else "unpinned (CPUs 0 and 1 not both ours)"
    lines = [
        f"login storm: {USERS} users, {seconds:g} s, {where}",
        f"{'':22}{'n':>7}{'p50 ms':>10}{'p99 ms':>10}{'max ms':>10}",
    ]
    for label, key in (("health, idle", "health_idle"), ("health, storm", "health_storm"),
                       ("ws round trip, idle", "ws_idle"), ("ws round trip, storm", "ws_storm"),
                       ("login, storm", "login")):  # fmt: skip
        row = result[key]
        assert isinstance(row, dict)
        lines.append(
            f"{label:22}{row['n']:>7}{row['p50_ms']:>10.2f}{row['p99_ms']:>10.2f}"
            f"{row['max_ms']:>10.2f}"
        )
    login = result["login"]
    assert isinstance(login, dict)
    lines += [
        f"logins: {login['completed']} ({login['per_second']}/s), errors: {login['errors']}",
        f"health p99 vs idle: {result['health_p99_ratio_vs_idle']}x; "
        f"target p99 < {TARGET_HEALTH_P99_MS:g} ms: {_verdict(result['health_target_met'])}",
        f"ws round trip p99 vs idle: {result['ws_p99_ratio_vs_idle']}x; "
        f"target p99 < {TARGET_WS_P99_MS:g} ms: {_verdict(result['ws_target_met'])}",
        "ws round trip: a message sent until the sender's own copy comes back on its socket",
    ]
    return "\n".join(lines) + "\n"


def _verdict(met: object) -> str:
    return "met" if met else "MISSED"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.login_storm", description=__doc__)
    parser.add_argument("--seconds", type=float, default=10.0, help="storm duration (10)")
    seconds: float = parser.parse_args(argv).seconds
    try:
        # The stack drops ARGON2_* from the environment: production hashing is measured.
        with bench_stack() as bench:
            _, base_url = bench.start_server()
            pinned = bench.pinned
            result = asyncio.run(measure(base_url, seconds))
    except (StackError, RuntimeError, httpx.HTTPError, WSError, OSError, TimeoutError) as exc:
        sys.stderr.write(f"login_storm: {exc!r}\n")
        return 1
    defaults = Settings()
    line = record(
        "login_storm",
        {
            "users": USERS,
            "seconds": seconds,
            "pinned": pinned,
            "server": {
                "argon2_time_cost": defaults.argon2_time_cost,
                "argon2_memory_kib": defaults.argon2_memory_kib,
                "argon2_parallelism": defaults.argon2_parallelism,
                "password_hash_threads": defaults.password_hash_threads,
            },
            **result,
        },
    )
    sys.stdout.write(table(result, seconds, pinned) + line + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
