"""The webhook for offline users, end to end: a real uvicorn API server, `python -m worker`
and `python -m worker.webhooks` as subprocesses, and a real HTTP receiver.

The receiver is the outside boundary (a stand-in for a mobile push service): a tiny
Starlette app on a free port, which answers 500 to the first attempts at each event and
records every request it gets.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import signal
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from redis.asyncio import Redis
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gochat_py import webhooks
from gochat_py.devstack.services import free_port
from gochat_py.ids import UserId
from gochat_py.redis import keys
from gochat_py.redis.webhook_queue import WebhookQueue
from gochat_py.settings import load_settings
from tests.harness import (
    ServerProcess,
    bearer,
    connect,
    create_group,
    is_message,
    next_frame,
    poll_until,
    register,
    send_frame,
    serve_app,
    serve_asgi,
    server_environment,
    ws_url,
)
from tests.stream_traffic import (
    Chat,
    Traffic,
    create_chats,
    pending,
    running_consumer,
    stored_ids,
    xadd_messages,
)

SECRET = "receiver-shared-secret-0123456789"


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes

    @property
    def event(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.body)
        return parsed


@dataclass
class Receiver:
    """The outside boundary: the service NOTIFY_WEBHOOK_URL points at."""

    url: str = ""
    fail_first: int = 2  # attempts at each event answered 500 before one is taken
    refuse_all: bool = False  # answer 500 to everything, for ever
    requests: list[Received] = field(default_factory=list)
    attempts: Counter[str] = field(default_factory=Counter)

    async def hook(self, request: Request) -> Response:
        received = Received(dict(request.headers), await request.body())
        self.requests.append(received)
        event_id = received.headers.get("x-gochat-event-id", "")
        self.attempts[event_id] += 1
        if self.refuse_all or self.attempts[event_id] <= self.fail_first:
            return Response("try later", status_code=500)
        return Response(status_code=204)

    def taken(self, type: str | None = None) -> dict[str, dict[str, Any]]:
        """Events the receiver answered 2xx to, deduplicated by id (as a receiver does)."""
        events = {}
        for received in self.requests:
            event = received.event
            accepted = not self.refuse_all and self.attempts[event["id"]] > self.fail_first
            if accepted and (type is None or event["type"] == type):
                events[event["id"]] = event
        return events


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    found = Receiver()
    app = Starlette(routes=[Route("/hook", found.hook, methods=["POST"])])
    async with serve_asgi(app, log_level="warning", lifespan="off") as url:
        found.url = f"{url}/hook"
        yield found


class Processes:
    """`python -m worker` and `python -m worker.webhooks`, with the test's environment."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env = env
        self.logs = logs
        self.running: list[ServerProcess] = []

    def start(self, module: str, **extra: str) -> ServerProcess:
        log = self.logs / f"{module}-{len(self.running)}.log"
        process = ServerProcess({**self.env, **extra}, log, module=module)
        self.running.append(process)
        return process

    def stop(self) -> None:
        for process in reversed(self.running):
            process.stop()


def webhook_env(
    database_url: str, redis_url: str, receiver: Receiver | None, **extra: str
) -> dict[str, str]:
    hook = {}
    if receiver is not None:
        # One attempt is cut off at 0.5 s, so the first retry comes 1.5 s after a failure.
        hook = {
            "NOTIFY_WEBHOOK_URL": receiver.url,
            "NOTIFY_WEBHOOK_SECRET": SECRET,
            "NOTIFY_WEBHOOK_TIMEOUT": "500ms",
        }
    return server_environment(
        database_url,
        redis_url,
        WORKER_METRICS_PORT="0",
        NOTIFY_WEBHOOK_METRICS_PORT="0",
        LOG_LEVEL="info",
        **hook,
        **extra,
    )


@contextlib.contextmanager
def processes(env: dict[str, str], logs: Path) -> Iterator[Processes]:
    running = Processes(env, logs)
    try:
        yield running
    finally:
        running.stop()


@contextlib.asynccontextmanager
async def api_server(env: dict[str, str]) -> AsyncIterator[httpx.AsyncClient]:
    async with (
        serve_app(load_settings(env)) as base_url,
        httpx.AsyncClient(base_url=base_url) as client,
    ):
        yield client


async def pair_in_a_group(
    api: httpx.AsyncClient,
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Alice and bob, neither with a socket, and the group alice made with bob in it."""
    alice, bob = await register(api), await register(api)
    group = await create_group(api, alice["tokens"], "pair", [bob["user"]["id"]])
    return alice, bob, group


async def send(
    api: httpx.AsyncClient, sender: dict[str, Any], group: dict[str, Any], content: str
) -> None:
    response = await api.post(
        f"/api/v1/conversations/{group['id']}/messages",
        json={"content": content},
        headers=bearer(sender["tokens"]),
    )
    assert response.status_code in (200, 201), response.text


async def attempt_counts(port: int) -> dict[str, int]:
    """The deliverer's `gochat_webhook_attempts_total`, by outcome, from its /metrics."""
    async with httpx.AsyncClient() as client:
        text = (await client.get(f"http://127.0.0.1:{port}/metrics")).text
    counts = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "gochat_webhook_attempts_total":
                counts[sample.labels["outcome"]] = int(sample.value)
    return counts


def is_text(frame: dict[str, Any]) -> bool:
    return is_message(frame) and frame["type"] == "text"


def signed_correctly(received: Received) -> bool:
    expected = hmac.new(SECRET.encode(), received.body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(received.headers["x-gochat-signature"], f"sha256={expected}")


async def webhook_entries(redis: Redis) -> int:
    return int(await redis.xlen(keys.WEBHOOK_STREAM))


async def test_a_message_reaches_the_receiver_for_each_offline_member_once_after_retries(
    database_url: str, redis_url: str, redis: Redis, receiver: Receiver, tmp_path: Path
) -> None:
    env = webhook_env(database_url, redis_url, receiver)
    metrics_port = free_port()
    with processes(env, tmp_path) as running:
        running.start("worker")
        running.start("worker.webhooks", NOTIFY_WEBHOOK_METRICS_PORT=str(metrics_port))
        async with api_server(env) as api:
            alice, dave, bob, carol = [await register(api) for _ in range(4)]
            async with (
                connect(ws_url(api, alice["tokens"]["access_token"])) as alice_socket,
                connect(ws_url(api, dave["tokens"]["access_token"])) as dave_socket,
            ):
                members = [dave["user"]["id"], bob["user"]["id"], carol["user"]["id"]]
                group = await create_group(api, alice["tokens"], "team", members)
                await send_frame(alice_socket, conversation_id=group["id"], content="anyone there?")
                # The group's creation is a system message: no webhook event is made of it.
                frame = await next_frame(alice_socket, is_text)
                await next_frame(dave_socket, is_text)

                offline = {bob["user"]["id"], carol["user"]["id"]}

                async def both_delivered() -> bool:
                    return {e["user_id"] for e in receiver.taken("message").values()} >= offline

                await poll_until(both_delivered, timeout=30, what="a message event for each")

                async def counted() -> bool:
                    # Bob's and carol's notifications of the new group are delivered too.
                    return await attempt_counts(metrics_port) == {
                        "delivered": len(receiver.taken()),
                        "retry": sum(min(n, 2) for n in receiver.attempts.values()),
                    }

                await poll_until(counted, what="the deliverer's metrics to count each attempt")

    events = list(receiver.taken("message").values())
    # Once each: two event ids, one per offline member (alice sent it, dave has a socket).
    assert sorted(e["user_id"] for e in events) == sorted(offline)
    for event in events:
        assert event["message"] == frame
        assert set(event) == {"id", "type", "user_id", "message", "created_at"}
    mine = [r for r in receiver.requests if r.event["type"] == "message"]
    assert {r.event["user_id"] for r in mine} == offline
    for received in mine:
        assert signed_correctly(received), received.headers
        assert received.headers["x-gochat-event-id"] == received.event["id"]
        assert received.headers["content-type"] == "application/json"
    # The receiver failed the first two attempts at each: each was tried again until taken.
    assert all(receiver.attempts[e["id"]] == 3 for e in events), receiver.attempts
    assert await webhook_entries(redis) == 0  # delivered events are acknowledged and dropped


async def test_a_notification_for_an_offline_user_is_delivered_and_not_for_one_online(
    database_url: str, redis_url: str, receiver: Receiver, tmp_path: Path
) -> None:
    receiver.fail_first = 1
    env = webhook_env(database_url, redis_url, receiver)
    with processes(env, tmp_path) as running:
        running.start("worker.webhooks")
        async with api_server(env) as api:
            alice, bob, carol = [await register(api) for _ in range(3)]
            async with connect(ws_url(api, carol["tokens"]["access_token"])) as carol_socket:
                # Carol, online, is notified of the new group on her socket, not the webhook.
                group = await create_group(api, alice["tokens"], "team", [carol["user"]["id"]])
                live = await next_frame(carol_socket, lambda f: f.get("event") == "notification")
                response = await api.post(
                    f"/api/v1/conversations/{group['id']}/members",
                    json={"user_ids": [bob["user"]["id"]]},
                    headers=bearer(alice["tokens"]),
                )
                assert response.status_code == 200, response.text

                async def delivered() -> list[dict[str, Any]]:
                    taken = receiver.taken("notification").values()
                    return [e for e in taken if e["user_id"] == bob["user"]["id"]]

                (event,) = await poll_until(delivered, timeout=30, what="bob's event")
                await asyncio.sleep(2)  # a retry period: an event for carol would have come

    assert event["user_id"] == bob["user"]["id"]
    notification = event["notification"]
    assert notification["type"] == "added_to_conversation"
    assert notification["data"]["conversation_id"] == group["id"]
    assert notification["actor"]["id"] == alice["user"]["id"]
    assert set(notification) == set(live["notification"])  # the live frame's payload
    assert {r.event["user_id"] for r in receiver.requests} == {bob["user"]["id"]}
    assert all(signed_correctly(r) for r in receiver.requests)


async def test_an_event_survives_the_deliverer_being_killed_between_attempts(
    database_url: str, redis_url: str, redis: Redis, receiver: Receiver, tmp_path: Path
) -> None:
    receiver.fail_first = 3
    env = webhook_env(database_url, redis_url, receiver)
    with processes(env, tmp_path) as running:
        running.start("worker")
        first = running.start("worker.webhooks")
        async with api_server(env) as api:
            alice, bob, group = await pair_in_a_group(api)
            await send(api, alice, group, "are you there?")

            async def refused_once() -> bool:
                return any(r.event["type"] == "message" for r in receiver.requests)

            await poll_until(refused_once, timeout=30, what="a first, refused attempt")
            # Mid-retry: the event is pending with the killed deliverer's group member.
            first.stop(signal.SIGKILL)
            assert await webhook_entries(redis) > 0
            running.start("worker.webhooks")

            async def delivered() -> dict[str, dict[str, Any]]:
                return receiver.taken("message")

            (event,) = (await poll_until(delivered, timeout=30, what="the event")).values()

    assert event["user_id"] == bob["user"]["id"]
    assert event["message"]["content"] == "are you there?"
    # Every attempt carried the same id: a receiver deduplicating by it sees one event.
    ids = {r.event["id"] for r in receiver.requests if r.event["type"] == "message"}
    assert ids == {event["id"]}
    assert receiver.attempts[event["id"]] >= 4


async def test_an_event_the_receiver_keeps_refusing_goes_to_the_dead_letter_stream(
    database_url: str, redis_url: str, redis: Redis, receiver: Receiver, tmp_path: Path
) -> None:
    receiver.refuse_all = True
    env = webhook_env(database_url, redis_url, receiver, NOTIFY_WEBHOOK_GIVE_UP="3s")
    with processes(env, tmp_path) as running:
        running.start("worker.webhooks")
        async with api_server(env) as api:
            alice, bob, _ = await pair_in_a_group(api)

            async def dead() -> list[Any]:
                return list(await redis.xrange(keys.WEBHOOK_DEAD))

            ((_, letter),) = await poll_until(dead, timeout=30, what="a dead letter")

    event = json.loads(letter[b"body"])
    assert event["type"] == "notification" and event["user_id"] == bob["user"]["id"]
    assert letter[b"error"] == b"HTTP 500"
    assert letter[b"id"].decode() == event["id"]
    attempts = int(letter[b"attempts"])
    assert attempts >= 2 and attempts == receiver.attempts[event["id"]]
    assert await webhook_entries(redis) == 0
    pending = await redis.xpending(keys.WEBHOOK_STREAM, keys.WEBHOOK_GROUP)
    assert pending["pending"] == 0


async def test_without_a_webhook_url_nothing_is_queued(
    database_url: str, redis_url: str, redis: Redis, db: asyncpg.Connection, tmp_path: Path
) -> None:
    env = webhook_env(database_url, redis_url, None)
    with processes(env, tmp_path) as running:
        running.start("worker")
        async with api_server(env) as api:
            alice, bob, group = await pair_in_a_group(api)
            await send(api, alice, group, "hello")

            async def stored() -> bool:
                count = await db.fetchval(
                    "SELECT count(*) FROM messages WHERE conversation_id = $1",
                    uuid.UUID(group["id"]),
                )
                return bool(count)

            await poll_until(stored, timeout=30, what="the message in PostgreSQL")
            # The worker queues webhook events just after it acknowledges a batch.
            await asyncio.sleep(1)

    assert await redis.exists(keys.WEBHOOK_STREAM) == 0


async def away_member(db: asyncpg.Connection, chat: Chat) -> uuid.UUID:
    """A member of `chat` who never connects: every message sent there is a webhook event."""
    away: uuid.UUID = await db.fetchval(
        "INSERT INTO users (id, email, username, password_hash)"
        " VALUES (gen_random_uuid(), 'away@example.com', 'away', 'x') RETURNING id"
    )
    await db.execute(
        "INSERT INTO conversation_members (conversation_id, user_id, role)"
        " VALUES ($1, $2, 'member')",
        chat.conversation_id,
        away,
    )
    return away


async def queued_events(redis: Redis) -> list[dict[str, Any]]:
    entries = await redis.xrange(keys.WEBHOOK_STREAM)
    return [json.loads(fields[b"body"]) for _, fields in entries]


async def test_a_worker_killed_between_commit_and_ack_queues_the_batchs_events_after_restart(
    database_url: str,
    redis_url: str,
    redis: Redis,
    db: asyncpg.Connection,
    receiver: Receiver,
    tmp_path: Path,
) -> None:
    (chat,) = await create_chats(db, 1)
    away = await away_member(db, chat)
    # Holding the member table locked stops the worker in the fan-out, after its COMMIT.
    blocker = await asyncpg.connect(database_url)
    lock = blocker.transaction()
    await lock.start()
    await blocker.execute("LOCK TABLE conversation_members IN ACCESS EXCLUSIVE MODE")
    await xadd_messages(redis, Traffic([chat]).burst(3))
    env = webhook_env(database_url, redis_url, receiver, WORKER_CLAIM_IDLE="1s")
    with processes(env, tmp_path) as running:
        first = running.start("worker")
        try:

            async def waiting_on_the_lock() -> bool:
                waiting = await db.fetchval(
                    "SELECT count(*) FROM pg_locks WHERE NOT granted"
                    " AND relation = 'conversation_members'::regclass"
                )
                return len(await stored_ids(db)) == 3 and waiting > 0

            await poll_until(waiting_on_the_lock, what="the batch committed, its fan-out waiting")
            first.stop(signal.SIGKILL)
        finally:
            await lock.rollback()
            await blocker.close()
        # Committed but not acknowledged: the batch is still the dead worker's to redo.
        assert await pending(redis) == 3
        assert await queued_events(redis) == []
        running.start("worker")

        async def settled() -> bool:
            return await pending(redis) == 0 and len(await queued_events(redis)) >= 3

        await poll_until(settled, timeout=30, what="the restarted worker to queue and ack")
    events = await queued_events(redis)
    assert {(e["user_id"], e["message"]["seq"]) for e in events} == {
        (str(away), s) for s in (1, 2, 3)
    }
    assert len(await stored_ids(db)) == 3


async def test_the_webhook_stream_keeps_at_most_about_its_bound_dropping_the_oldest(
    redis: Redis,
) -> None:
    queue = WebhookQueue(redis, max_queued=200)
    user = UserId(uuid.uuid4())
    sent = [webhooks.for_message(user, uuid.uuid4(), b'{"seq": %d}' % i, 1) for i in range(2000)]
    assert await queue.add(sent) == 2000
    length = await redis.xlen(keys.WEBHOOK_STREAM)
    # Trimmed by whole nodes of the stream (100 entries each), never below the bound.
    assert 200 <= length <= 400
    (_, newest), *_ = await redis.xrevrange(keys.WEBHOOK_STREAM, count=1)
    assert json.loads(newest[b"body"])["id"] == str(sent[-1].id)


async def test_a_failure_to_queue_webhook_events_never_holds_up_persistence(
    database_url: str, redis_url: str, redis: Redis, db: asyncpg.Connection
) -> None:
    (chat,) = await create_chats(db, 1)
    away = await away_member(db, chat)
    # The webhook stream's key holds a string: every XADD to it fails with WRONGTYPE.
    await redis.set(keys.WEBHOOK_STREAM, "in the way")
    traffic = Traffic([chat])
    await xadd_messages(redis, traffic.burst(3))

    async with running_consumer(redis_url, database_url, webhooks=True) as run:

        async def settled() -> bool:
            return len(await stored_ids(db)) == 3 and await pending(redis) == 0

        await poll_until(settled, what="the batch stored and acknowledged")

    failures = run.metrics.registry.get_sample_value("gochat_worker_webhook_queue_failures_total")
    assert failures == 3
    assert await redis.get(keys.WEBHOOK_STREAM) == b"in the way"
    await redis.delete(keys.WEBHOOK_STREAM)
    await xadd_messages(redis, traffic.burst(2))
    async with running_consumer(redis_url, database_url, webhooks=True) as run:
        await poll_until(lambda: webhook_entries(redis), what="the next batch's events")
    queued = await queued_events(redis)
    assert [(e["user_id"], e["message"]["seq"]) for e in queued] == [(str(away), 4), (str(away), 5)]
