"""Resume after reconnect as deployed: API server processes, the worker, real sockets. A
device that keeps dropping its socket under traffic ends with every message once and in
order; one whose gap the worker has trimmed away is told to read history."""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis
from websockets.asyncio.client import ClientConnection

from gochat_py.redis import keys
from tests.e2e.test_server_process import api_server
from tests.harness import (
    ServerProcess,
    bearer,
    connect,
    create_group,
    is_message,
    next_frame,
    poll_until,
    post_messages,
    register,
    send_frame,
    server_environment,
    ws_url,
)

pytestmark = pytest.mark.slow

RECONNECTS = 100


@pytest.fixture
async def two_processes(
    database_url: str, redis_url: str, tmp_path: Path
) -> AsyncIterator[tuple[ServerProcess, ServerProcess]]:
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    async with (
        api_server(database_url, redis_url, tmp_path / "one") as first,
        api_server(database_url, redis_url, tmp_path / "two") as second,
    ):
        yield first, second


def socket_url(server: ServerProcess, token: str, query: str = "") -> str:
    return f"ws://127.0.0.1:{server.port}/ws?token={token}{query}"


class Reader:
    """A device that remembers the last seq it holds per conversation and every message
    it got, and reconnects with `resume=1`."""

    def __init__(self, token: str, conversations: list[str]) -> None:
        self.token = token
        self.positions = dict.fromkeys(conversations, 0)
        self.received: dict[str, list[tuple[int, str]]] = {c: [] for c in conversations}
        self.faults: list[str] = []  # each out-of-order or repeated frame, described

    def take(self, frame: dict[str, Any]) -> None:
        conversation, seq = frame["conversation_id"], frame["seq"]
        if seq != self.positions[conversation] + 1:
            self.faults.append(
                f"{conversation[:8]}: got {seq} after {self.positions[conversation]}"
            )
        self.positions[conversation] = max(seq, self.positions[conversation])
        self.received[conversation].append((seq, frame["id"]))

    async def resume(self, socket: ClientConnection) -> dict[str, Any]:
        await send_frame(socket, event="resume", positions=self.positions)
        while True:
            frame = await next_frame(socket)
            if frame.get("event") == "resumed":
                return frame
            assert is_message(frame), frame
            self.take(frame)

    async def session(self, server: ServerProcess, live_for: float) -> dict[str, Any]:
        """Connect, resume, read live frames for `live_for` seconds, drop the socket."""
        async with connect(socket_url(server, self.token, "&resume=1")) as socket:
            resumed = await self.resume(socket)
            deadline = time.monotonic() + live_for
            with contextlib.suppress(TimeoutError):
                while (left := deadline - time.monotonic()) > 0:
                    frame = await next_frame(socket, timeout=left)
                    if is_message(frame):
                        self.take(frame)
        return resumed


async def keep_sending(
    server: ServerProcess, token: str, conversations: list[str], stop: asyncio.Event
) -> list[dict[str, Any]]:
    """Send to `conversations` in turn until `stop`; every ack."""
    acks: list[dict[str, Any]] = []
    async with connect(socket_url(server, token)) as socket:
        i = 0
        while not stop.is_set():
            conversation = conversations[i % len(conversations)]
            await send_frame(
                socket, conversation_id=conversation, content=f"c{i}", client_msg_id=f"k{i}"
            )
            acks.append(await next_frame(socket, lambda f: f.get("event") == "ack"))
            i += 1
            await asyncio.sleep(0.004)
    return acks


async def test_a_device_that_reconnects_100_times_under_traffic_gets_every_message_once_in_order(
    two_processes: tuple[ServerProcess, ServerProcess],
) -> None:
    one, two = two_processes
    async with httpx.AsyncClient(base_url=one.base_url) as api:
        reader_account = await register(api)
        senders = [await register(api) for _ in range(3)]
        everyone = [s["user"]["id"] for s in senders] + [reader_account["user"]["id"]]
        groups = []
        for name, owner in (("one", senders[0]), ("two", senders[1])):
            others = [i for i in everyone if i != owner["user"]["id"]]
            groups.append((await create_group(api, owner["tokens"], name, others))["id"])
        first, second = groups
    reader = Reader(reader_account["tokens"]["access_token"], [first, second])
    stop = asyncio.Event()
    # Three senders on both processes, two conversations: the first sender writes to one,
    # the second to the other, the third to both in turn.
    plans = [(one, [first]), (two, [second]), (one, [first, second])]
    sending = [
        asyncio.create_task(keep_sending(server, s["tokens"]["access_token"], plan, stop))
        for s, (server, plan) in zip(senders, plans, strict=True)
    ]
    rng = random.Random(12)
    started = time.monotonic()
    try:
        recovered = 0
        for cycle in range(RECONNECTS):
            resumed = await reader.session((one, two)[cycle % 2], rng.uniform(0.0, 0.08))
            recovered += all(c["recovered"] for c in resumed["conversations"])
            assert resumed["not_found"] == []
    finally:
        stop.set()
        acks = [ack for task in await asyncio.gather(*sending) for ack in task]
    # Once the traffic has stopped: the last resume brings the rest.
    final = await reader.session(one, 0.0)
    assert time.monotonic() - started < 60
    assert recovered == RECONNECTS
    assert all(c["recovered"] for c in final["conversations"])
    assert reader.faults == []
    for conversation in (first, second):
        sent = sorted((a["seq"], a["id"]) for a in acks if a["conversation_id"] == conversation)
        assert len(sent) > RECONNECTS
        # seq 1 is the group's creation, a system message.
        created, *messages = reader.received[conversation]
        assert created[0] == 1
        assert messages == sent


async def test_a_gap_the_worker_trimmed_away_is_not_recovered_and_history_fills_it(
    database_url: str, redis_url: str, redis: Redis, tmp_path: Path
) -> None:
    # A cache of 40 at most: the worker keeps the newest 10 stored messages, trimming by 10.
    settings = {"RECENT_CACHE_MAX": "40"}
    worker = ServerProcess(
        server_environment(database_url, redis_url, WORKER_METRICS_PORT="0", **settings),
        tmp_path / "worker.log",
        module="worker",
    )
    try:
        async with (
            api_server(database_url, redis_url, tmp_path, **settings) as server,
            httpx.AsyncClient(base_url=server.base_url) as api,
        ):
            alice, bob = await register(api), await register(api)
            ids = [bob["user"]["id"]]
            conversation = (await create_group(api, alice["tokens"], "g", ids))["id"]
            # Seq 1 is the group's creation: 30 entries in all.
            await post_messages(api, alice["tokens"], conversation, 29)
            cache = keys.recent(uuid.UUID(conversation), 1)

            async def trimmed() -> bool:
                [(_, lowest)] = await redis.zrange(cache, 0, 0, withscores=True)
                return bool(lowest == 21)

            await poll_until(trimmed, 30, "the worker to trim the cache to seqs 21-30")
            url = f"{ws_url(api, bob['tokens']['access_token'])}&resume=1"
            async with connect(url) as socket:
                await send_frame(socket, event="resume", positions={conversation: 0})
                gap = await next_frame(socket)
            async with connect(url) as socket:
                await send_frame(socket, event="resume", positions={conversation: 20})
                replayed = [await next_frame(socket) for _ in range(10)]
                near = await next_frame(socket)
            history = await api.get(
                f"/api/v1/conversations/{conversation}/messages?after_seq=0&limit=50",
                headers=bearer(bob["tokens"]),
            )
    finally:
        worker.stop()
    assert gap["event"] == "resumed"
    assert gap["conversations"] == [
        {"conversation_id": conversation, "recovered": False, "from_seq": 1, "to_seq": 30,
         "replayed": 0}
    ]  # fmt: skip
    assert [f["seq"] for f in replayed] == list(range(21, 31))
    assert near["conversations"][0]["recovered"] is True
    assert sorted(m["seq"] for m in history.json()["messages"]) == list(range(1, 31))
