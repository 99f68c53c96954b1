"""The whole pipeline as deployed: uvicorn processes, `python -m worker`, real WebSocket
clients. Every acknowledged message must end up in PostgreSQL exactly once."""

from __future__ import annotations

import asyncio
import json
import signal
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from websockets.asyncio.client import ClientConnection

from gochat_py.devstack.services import LocalStack, free_port
from gochat_py.postgres import migrate
from tests.harness import (
    ServerProcess,
    bearer,
    connect,
    create_direct,
    create_group,
    is_message,
    next_frame,
    poll_until,
    register,
    send_frame,
    server_environment,
    ws_url,
)

pytestmark = pytest.mark.slow


class Deployment:
    """API servers and workers as subprocesses sharing one PostgreSQL and one Redis."""

    def __init__(self, database_url: str, redis_url: str, logs: Path) -> None:
        self.database_url = database_url
        self.redis_url = redis_url
        self.logs = logs
        self.processes: list[ServerProcess] = []

    def _env(self, **extra: str) -> dict[str, str]:
        return server_environment(self.database_url, self.redis_url, LOG_LEVEL="info", **extra)

    async def server(self) -> ServerProcess:
        port = free_port()
        process = ServerProcess(self._env(SERVER_PORT=str(port)), self.logs / f"api-{port}.log")
        self.processes.append(process)
        await process.wait_healthy()
        return process

    def worker(self, **extra: str) -> ServerProcess:
        name = f"worker-{len(self.processes)}-{uuid.uuid4().hex[:6]}"
        # Reclaims and the retries of an outage come soon: a test waits on neither.
        short = {"WORKER_CLAIM_IDLE": "1s", "WORKER_RETRY_MAX": "500ms"}
        process = ServerProcess(
            self._env(WORKER_METRICS_PORT="0", **short, **extra),
            self.logs / f"{name}.log",
            module="worker",
        )
        self.processes.append(process)
        return process

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()


@pytest.fixture
def deployment(database_url: str, redis_url: str, tmp_path: Path) -> Iterator[Deployment]:
    deployed = Deployment(database_url, redis_url, tmp_path)
    yield deployed
    deployed.stop()


async def persisted(database_url: str, conversation_id: str) -> list[tuple[uuid.UUID, int]]:
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            "SELECT id, seq FROM messages WHERE conversation_id = $1 ORDER BY seq",
            uuid.UUID(conversation_id),
        )
    finally:
        await conn.close()
    return [(row["id"], row["seq"]) for row in rows]


async def send_burst(
    socket: ClientConnection, conversation_id: str, count: int, prefix: str = "m"
) -> list[dict[str, Any]]:
    """Send `count` messages without waiting, then collect every ack."""
    for i in range(count):
        await socket.send(
            json.dumps(
                {
                    "conversation_id": conversation_id,
                    "content": f"{prefix}{i}",
                    "client_msg_id": f"{prefix}-{i}",
                }
            )  # fmt: skip
        )
    acks = []
    while len(acks) < count:
        frame = await next_frame(socket, lambda f: f.get("event") in ("ack", "error"), timeout=60)
        assert frame["event"] == "ack", frame
        acks.append(frame)
    return acks


async def test_a_sender_on_one_server_process_reaches_a_reader_on_another_and_it_persists(
    deployment: Deployment,
) -> None:
    one, two = await deployment.server(), await deployment.server()
    deployment.worker()
    async with httpx.AsyncClient(base_url=one.base_url) as api_one:
        alice, bob = await register(api_one), await register(api_one)
        conversation = await create_direct(api_one, alice["tokens"], bob["user"]["id"])
    async with httpx.AsyncClient(base_url=two.base_url) as api_two:
        async with (
            connect(ws_url(api_one, alice["tokens"]["access_token"])) as alice_ws,
            connect(ws_url(api_two, bob["tokens"]["access_token"])) as bob_ws,
        ):
            acks = await send_burst(alice_ws, conversation["id"], 50)
            received = [await next_frame(bob_ws, is_message) for _ in range(50)]
        assert [f["seq"] for f in received] == list(range(1, 51))
        assert [a["id"] for a in acks] == [f["id"] for f in received]

        async def all_persisted() -> bool:
            return len(await persisted(deployment.database_url, conversation["id"])) == 50

        await poll_until(all_persisted, timeout=30, what="the worker to persist 50 messages")
        history = await api_two.get(
            f"/api/v1/conversations/{conversation['id']}/messages?limit=100",
            headers=bearer(bob["tokens"]),
        )
        assert [m["seq"] for m in history.json()["messages"]] == list(range(50, 0, -1))


async def test_worker_killed_mid_burst_then_restarted_loses_and_duplicates_nothing(
    deployment: Deployment,
) -> None:
    server = await deployment.server()
    worker = deployment.worker()
    async with httpx.AsyncClient(base_url=server.base_url) as api:
        alice, bob = await register(api), await register(api)
        conversation = await create_direct(api, alice["tokens"], bob["user"]["id"])
        async with connect(ws_url(api, alice["tokens"]["access_token"])) as ws:
            burst = asyncio.create_task(send_burst(ws, conversation["id"], 5000))

            async def some_persisted() -> bool:
                return len(await persisted(deployment.database_url, conversation["id"])) >= 500

            await poll_until(some_persisted, timeout=60, what="the worker to be mid-burst")
            worker.stop(signal.SIGKILL)
            at_kill = len(await persisted(deployment.database_url, conversation["id"]))
            acks = await burst
        assert at_kill < 5000, "the burst was over before the kill; the test proved nothing"
        deployment.worker()

        async def all_persisted() -> bool:
            return len(await persisted(deployment.database_url, conversation["id"])) >= 5000

        await poll_until(all_persisted, timeout=90, what="the restarted worker to catch up")
    rows = await persisted(deployment.database_url, conversation["id"])
    assert len(rows) == 5000
    assert {row[0] for row in rows} == {uuid.UUID(a["id"]) for a in acks}
    assert [row[1] for row in rows] == list(range(1, 5001))


@pytest.fixture
def own_stack(workdir: Path) -> Iterator[LocalStack]:
    stack = LocalStack(workdir / f"outage-{free_port()}", free_port(), free_port(), durable=False)
    stack.start()
    asyncio.run(migrate.run(stack.postgres.url(), "up", None))
    yield stack
    stack.stop()


@pytest.fixture
async def outage_deployment(own_stack: LocalStack, tmp_path: Path) -> AsyncIterator[Deployment]:
    deployed = Deployment(own_stack.postgres.url(), own_stack.redis.url, tmp_path)
    yield deployed
    deployed.stop()


async def test_postgres_down_for_20_seconds_delivery_goes_on_and_everything_persists_after(
    own_stack: LocalStack, outage_deployment: Deployment
) -> None:
    server = await outage_deployment.server()
    outage_deployment.worker()
    async with httpx.AsyncClient(base_url=server.base_url) as api:
        alice, bob, carol = [await register(api) for _ in range(3)]
        group = await create_group(
            api, alice["tokens"], "g", [bob["user"]["id"], carol["user"]["id"]]
        )
        async with (
            connect(ws_url(api, alice["tokens"]["access_token"])) as alice_ws,
            connect(ws_url(api, bob["tokens"]["access_token"])) as bob_ws,
        ):
            acks = await send_burst(alice_ws, group["id"], 10, prefix="before")
            own_stack.postgres.stop()
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 20
            while loop.time() < deadline:
                acks += await send_burst(alice_ws, group["id"], 5, prefix=f"down{len(acks)}-")
                await asyncio.sleep(0.25)
            delivered = [await next_frame(bob_ws, is_message) for _ in range(len(acks))]
            assert [f["id"] for f in delivered] == [a["id"] for a in acks]
            own_stack.postgres.start()

    # The group's creation (a system message) took seq 1.
    async def all_persisted() -> bool:
        rows = await persisted(outage_deployment.database_url, group["id"])
        return len(rows) == len(acks) + 1

    await poll_until(all_persisted, timeout=60, what="the backlog to persist after the outage")
    rows = await persisted(outage_deployment.database_url, group["id"])
    assert [row[1] for row in rows] == list(range(1, len(acks) + 2))
    assert {row[0] for row in rows[1:]} == {uuid.UUID(a["id"]) for a in acks}


async def test_edits_made_while_the_worker_is_down_end_right_in_postgres_through_a_kill(
    deployment: Deployment,
) -> None:
    server = await deployment.server()
    count = 1000
    async with httpx.AsyncClient(base_url=server.base_url) as api:
        alice, bob = await register(api), await register(api)
        conversation = await create_direct(api, alice["tokens"], bob["user"]["id"])
        updates = 0

        def ack_counting_updates(frame: dict[str, Any]) -> bool:
            nonlocal updates
            assert frame.get("event") != "error", frame
            updates += frame.get("event") == "message_updated"
            return frame.get("event") == "ack"

        async with connect(ws_url(api, alice["tokens"]["access_token"])) as ws:
            # No worker yet: messages, and each one's edit as soon as it is acked, wait in
            # the stream, a hundred at a time.
            for start in range(0, count, 100):
                for i in range(start, start + 100):
                    await send_frame(ws, conversation_id=conversation["id"], content=f"v1-{i}")
                for i in range(start, start + 100):
                    ack = await next_frame(ws, ack_counting_updates)
                    await send_frame(
                        ws,
                        event="edit",
                        conversation_id=conversation["id"],
                        message_id=ack["id"],
                        content=f"v2-{i}",
                    )
            while updates < count:
                await next_frame(ws, lambda f: f.get("event") == "message_updated")
                updates += 1
    # Small batches: the kill lands mid-backlog, between commits.
    worker = deployment.worker(WORKER_BATCH_SIZE="20")

    async def some_edits_stored() -> bool:
        return await edited(deployment.database_url, conversation["id"]) >= 100

    await poll_until(some_edits_stored, timeout=60, what="the worker to be mid-backlog")
    worker.stop(signal.SIGKILL)
    at_kill = await edited(deployment.database_url, conversation["id"])
    assert at_kill < count, "the backlog was stored before the kill; the test proved nothing"
    deployment.worker()

    async def all_edited() -> bool:
        return await edited(deployment.database_url, conversation["id"]) == count

    await poll_until(all_edited, timeout=90, what="the restarted worker to store every edit")
    conn = await asyncpg.connect(deployment.database_url)
    try:
        rows = await conn.fetch(
            "SELECT seq, content, changed_seq, edited_at IS NOT NULL AS edited FROM messages"
            " WHERE conversation_id = $1 ORDER BY seq",
            uuid.UUID(conversation["id"]),
        )
        last_seq = await conn.fetchval(
            "SELECT last_seq FROM conversations WHERE id = $1", uuid.UUID(conversation["id"])
        )
    finally:
        await conn.close()
    assert len(rows) == count
    assert [r["content"] for r in rows] == [f"v2-{i}" for i in range(count)]
    assert all(r["changed_seq"] > r["seq"] and r["edited"] for r in rows)
    assert last_seq == 2 * count


async def edited(database_url: str, conversation_id: str) -> int:
    conn = await asyncpg.connect(database_url)
    try:
        return int(
            await conn.fetchval(
                "SELECT count(*) FROM messages WHERE conversation_id = $1 AND changed_seq > 0",
                uuid.UUID(conversation_id),
            )
        )
    finally:
        await conn.close()


async def test_after_a_postgres_restart_the_first_requests_on_each_pooled_connection_succeed(
    own_stack: LocalStack, outage_deployment: Deployment
) -> None:
    server = await outage_deployment.server()
    async with httpx.AsyncClient(base_url=server.base_url) as api:
        alice, bob = await register(api), await register(api)
        await create_direct(api, alice["tokens"], bob["user"]["id"])

        async def listing() -> int:
            response = await api.get("/api/v1/conversations", headers=bearer(alice["tokens"]))
            return response.status_code

        # Ten at once: the pool holds ten connections, each of them about to go stale.
        assert await asyncio.gather(*(listing() for _ in range(10))) == [200] * 10
        own_stack.postgres.stop()
        own_stack.postgres.start()
        # The server's loop ran through the restart: asyncpg saw each connection close and
        # the pool opens fresh ones, so no request pays for a stale one with a 503.
        assert [await listing() for _ in range(3)] == [200] * 3
        assert await asyncio.gather(*(listing() for _ in range(10))) == [200] * 10
