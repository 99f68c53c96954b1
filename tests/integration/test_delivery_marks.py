"""Delivery status against a real server, PostgreSQL and Redis: `received` frames, reads that
imply delivery, `delivered` events to the senders alone, the receipts route, bad frames, and
writes coalesced into few UPDATEs."""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest
from redis.asyncio import Redis

from gochat_py.redis import keys
from gochat_py.settings import load_settings
from tests.harness import (
    bearer,
    connect,
    create_direct,
    create_group,
    is_message,
    next_frame,
    plain_connect,
    poll_until,
    register,
    send_frame,
    serve_app,
    server_environment,
    ws_url,
)

User = dict[str, Any]


@contextlib.asynccontextmanager
async def sockets(api: httpx.AsyncClient, *users: User) -> AsyncIterator[list[Any]]:
    """A socket asking for every frame for each of `users`, in order."""
    async with contextlib.AsyncExitStack() as stack:
        yield [
            await stack.enter_async_context(connect(ws_url(api, user["tokens"]["access_token"])))
            for user in users
        ]


def is_delivered(frame: dict[str, Any]) -> bool:
    return frame.get("event") == "delivered"


async def delivered_seq(db: asyncpg.Connection, conversation_id: str, user: User) -> int:
    value = await db.fetchval(
        "SELECT delivered_seq FROM conversation_members"
        " WHERE conversation_id = $1 AND user_id = $2",
        uuid.UUID(conversation_id),
        uuid.UUID(user["user"]["id"]),
    )
    return int(value)


async def wait_for_mark(db: asyncpg.Connection, conversation_id: str, user: User, seq: int) -> None:
    async def reached() -> bool:
        return await delivered_seq(db, conversation_id, user) == seq

    await poll_until(reached, what=f"delivered_seq {seq}")


async def send_messages(socket: Any, conversation_id: str, count: int) -> int:
    """Send `count` messages; the seq of the last, once acked."""
    last = 0
    for i in range(count):
        await send_frame(socket, conversation_id=conversation_id, content=f"m{i}")
        last = (await next_frame(socket, lambda f: f.get("event") == "ack"))["seq"]
    return last


async def test_received_moves_the_delivered_mark_forward_and_never_back(
    api: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    alice, bob = await register(api), await register(api)
    direct = (await create_direct(api, alice["tokens"], bob["user"]["id"]))["id"]
    group = (await create_group(api, alice["tokens"], "g", [bob["user"]["id"]]))["id"]
    async with sockets(api, alice, bob) as (alice_ws, bob_ws):
        await send_messages(alice_ws, direct, 3)
        await send_messages(alice_ws, group, 2)
        await send_frame(bob_ws, event="received", conversation_id=direct, seq=2)
        await wait_for_mark(db, direct, bob, 2)
        # One socket's frames are handled in order: once the group's mark is written, the
        # lower one before it has been through a flush too.
        await send_frame(bob_ws, event="received", conversation_id=direct, seq=1)
        await send_frame(bob_ws, event="received", conversation_id=group, seq=1)
        await wait_for_mark(db, group, bob, 1)
        assert await delivered_seq(db, direct, bob) == 2
        await send_frame(bob_ws, event="received", conversation_id=direct, seq=3)
        await wait_for_mark(db, direct, bob, 3)
    assert await delivered_seq(db, direct, alice) == 0


async def test_a_gochat_client_may_say_received_too(
    api: httpx.AsyncClient, db: asyncpg.Connection, pair: tuple[User, User, str]
) -> None:
    alice, bob, conversation_id = pair
    async with (
        connect(ws_url(api, alice["tokens"]["access_token"])) as alice_ws,
        plain_connect(ws_url(api, bob["tokens"]["access_token"])) as bob_ws,
        connect(ws_url(api, bob["tokens"]["access_token"])) as bob_laptop,
    ):
        await send_messages(alice_ws, conversation_id, 2)
        await send_frame(bob_ws, event="received", conversation_id=conversation_id, seq=2)
        await wait_for_mark(db, conversation_id, bob, 2)
        # A gochat socket did not ask for `delivered`: bob's other device gets it, his
        # gochat socket does not.
        await send_frame(bob_ws, conversation_id=conversation_id, content="from gochat")
        await next_frame(alice_ws, lambda f: is_message(f) and f["content"] == "from gochat")
        await send_frame(alice_ws, event="received", conversation_id=conversation_id, seq=3)
        assert (await next_frame(bob_laptop, is_delivered))["seq"] == 3
        await send_frame(alice_ws, conversation_id=conversation_id, content="last")
        seen = [await next_frame(bob_ws)]
        while seen[-1].get("content") != "last":
            seen.append(await next_frame(bob_ws))
    assert [frame.get("content") for frame in seen] == ["m0", "m1", "last"], seen


async def test_a_read_implies_delivered_capped_at_the_last_seq(
    api: httpx.AsyncClient, db: asyncpg.Connection, pair: tuple[User, User, str]
) -> None:
    alice, bob, conversation_id = pair
    async with sockets(api, alice, bob) as (alice_ws, bob_ws):
        await send_messages(alice_ws, conversation_id, 3)
        await send_frame(bob_ws, event="read", conversation_id=conversation_id, seq=2)
        await wait_for_mark(db, conversation_id, bob, 2)
        delivered = await next_frame(alice_ws, is_delivered)
        assert delivered == {
            "event": "delivered",
            "conversation_id": conversation_id,
            "user_id": bob["user"]["id"],
            "seq": 2,
        }
    # A read mark is not checked against the last seq; the delivered mark stops there.
    response = await api.post(
        f"/api/v1/conversations/{conversation_id}/read",
        json={"seq": 50},
        headers=bearer(bob["tokens"]),
    )
    assert response.status_code == 200, response.text
    await wait_for_mark(db, conversation_id, bob, 3)


class Device:
    """A socket whose frames are all kept: waiting for one frame skips none of the others."""

    def __init__(self, socket: Any) -> None:
        self.socket = socket
        self.unread: list[dict[str, Any]] = []
        self.delivered: list[tuple[str, int]] = []  # (user_id, seq) of each `delivered`

    async def next(self, predicate: Any) -> dict[str, Any]:
        for i, frame in enumerate(self.unread):
            if predicate(frame):
                return self.unread.pop(i)
        while True:
            frame = await next_frame(self.socket, lambda f: True)
            if is_delivered(frame):
                self.delivered.append((frame["user_id"], frame["seq"]))
            if predicate(frame):
                return frame
            self.unread.append(frame)

    async def send(self, conversation_id: str) -> int:
        """The seq of the message, once acked."""
        await send_frame(self.socket, conversation_id=conversation_id, content="hi")
        return int((await self.next(lambda f: f.get("event") == "ack"))["seq"])

    async def received(self, conversation_id: str, seq: int) -> None:
        await send_frame(self.socket, event="received", conversation_id=conversation_id, seq=seq)

    async def settle(self) -> None:
        """Read what reached the socket so far (anything before its pong's turn)."""
        await send_frame(self.socket, event="ping")
        await self.next(lambda f: f.get("event") == "pong")


@pytest.fixture
async def trio(api: httpx.AsyncClient) -> tuple[User, User, User, str]:
    """alice, bob and carol, and the group alice made of them."""
    alice, bob, carol = await register(api), await register(api), await register(api)
    ids = [bob["user"]["id"], carol["user"]["id"]]
    return alice, bob, carol, (await create_group(api, alice["tokens"], "trio", ids))["id"]


@contextlib.asynccontextmanager
async def devices(api: httpx.AsyncClient, *users: User) -> AsyncIterator[list[Device]]:
    async with sockets(api, *users) as opened:
        yield [Device(socket) for socket in opened]


async def test_the_senders_hear_delivered_and_no_one_else_does(
    api: httpx.AsyncClient, trio: tuple[User, User, User, str]
) -> None:
    alice, bob, carol, conversation_id = trio
    async with devices(api, alice, bob, carol) as (a, b, c):
        # seq 1 is the group's creation, a system message: it tells nobody of marks.
        await a.send(conversation_id)
        second = await a.send(conversation_id)
        await b.received(conversation_id, second)
        assert await a.next(is_delivered) == {
            "event": "delivered",
            "conversation_id": conversation_id,
            "user_id": bob["user"]["id"],
            "seq": second,
        }
        carols = await c.send(conversation_id)
        await b.received(conversation_id, carols)
        await c.next(is_delivered)
        third = await a.send(conversation_id)
        await b.received(conversation_id, third)
        await a.next(lambda f: is_delivered(f) and f["seq"] == third)
        bobs = await b.send(conversation_id)
        await c.received(conversation_id, bobs)
        await b.next(is_delivered)
        for device in (a, b, c):
            await device.settle()
    bob_id, carol_id = bob["user"]["id"], carol["user"]["id"]
    # Each hears only of marks over their own messages (carol's mark went from 0 to bob's
    # message, over alice's messages too); bob's marks never reach bob.
    assert a.delivered == [(bob_id, second), (bob_id, third), (carol_id, bobs)]
    assert c.delivered == [(bob_id, carols)]
    assert b.delivered == [(carol_id, bobs)]


async def test_a_sender_who_left_hears_nothing_more(
    api: httpx.AsyncClient, trio: tuple[User, User, User, str]
) -> None:
    alice, bob, carol, conversation_id = trio
    async with devices(api, alice, bob, carol) as (a, b, c):
        sent = await a.send(conversation_id)
        left = await api.delete(
            f"/api/v1/conversations/{conversation_id}/members/{alice['user']['id']}",
            headers=bearer(alice["tokens"]),
        )
        assert left.status_code == 204, left.text
        await b.received(conversation_id, sent)
        await c.send(conversation_id)
        carols = await b.next(lambda f: is_message(f) and f["sender_id"] == carol["user"]["id"])
        await b.received(conversation_id, carols["seq"])
        await c.next(is_delivered)
        await a.settle()
    assert a.delivered == []


async def test_senders_below_the_recent_cache_are_found_in_postgresql(
    api: httpx.AsyncClient, db: asyncpg.Connection, redis: Redis, pair: tuple[User, User, str]
) -> None:
    alice, bob, conversation_id = pair
    async with sockets(api, alice, bob) as (alice_ws, bob_ws):
        await send_messages(alice_ws, conversation_id, 2)
        # What the worker would do: store the messages, then trim them from the cache.
        key = keys.recent(uuid.UUID(conversation_id), 1)
        for raw in await redis.zrange(key, 0, -1):
            message = json.loads(raw)
            await db.execute(
                "INSERT INTO messages (id, conversation_id, seq, sender_id, content, sent_at)"
                " VALUES ($1, $2, $3, $4, $5, to_timestamp($6 / 1000.0))",
                uuid.UUID(message["id"]),
                uuid.UUID(message["conversation_id"]),
                message["seq"],
                uuid.UUID(message["sender_id"]),
                message["content"],
                message["sent_at"],
            )
        await redis.delete(key)
        await send_frame(bob_ws, event="received", conversation_id=conversation_id, seq=2)
        delivered = await next_frame(alice_ws, is_delivered)
    assert (delivered["user_id"], delivered["seq"]) == (bob["user"]["id"], 2)


async def test_receipts_list_every_member_for_members_only(
    api: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    alice, bob, stranger = await register(api), await register(api), await register(api)
    conversation_id = (await create_direct(api, alice["tokens"], bob["user"]["id"]))["id"]
    async with sockets(api, alice, bob) as (alice_ws, bob_ws):
        await send_messages(alice_ws, conversation_id, 4)
        await send_frame(bob_ws, event="received", conversation_id=conversation_id, seq=4)
        await send_frame(bob_ws, event="read", conversation_id=conversation_id, seq=3)
        await wait_for_mark(db, conversation_id, bob, 4)
    path = f"/api/v1/conversations/{conversation_id}/receipts"
    for member in (alice, bob):
        response = await api.get(path, headers=bearer(member["tokens"]))
        assert response.status_code == 200, response.text
        receipts = sorted(
            response.json()["receipts"], key=lambda r: r["user_id"] != alice["user"]["id"]
        )
        assert {"receipts": receipts} == {
            "receipts": [
                {
                    "user_id": alice["user"]["id"],
                    "username": alice["user"]["username"],
                    "delivered_seq": 0,
                    "read_seq": 0,
                },
                {
                    "user_id": bob["user"]["id"],
                    "username": bob["user"]["username"],
                    "delivered_seq": 4,
                    "read_seq": 3,
                },
            ]
        }
    refused = await api.get(path, headers=bearer(stranger["tokens"]))
    assert refused.status_code == 404
    assert refused.json() == {
        "error": {"code": "conversation_not_found", "message": "conversation not found"}
    }
    missing = await api.get(
        f"/api/v1/conversations/{uuid.uuid4()}/receipts", headers=bearer(alice["tokens"])
    )
    assert missing.status_code == 404
    # `api` keeps the cookies of the last registration: a fresh client has none.
    async with httpx.AsyncClient(base_url=api.base_url) as anonymous:
        assert (await anonymous.get(path)).status_code == 401


BAD_RECEIVED = [
    ('{"event": "received", "conversation_id": "%(c)s", "seq": "2"}', "invalid_field"),
    ('{"event": "received", "conversation_id": 5, "seq": 2}', "invalid_field"),
    ('{"event": "received", "conversation_id": "%(c)s", "seq": -1}', "invalid_field"),
    ('{"event": "received", "conversation_id": "%(c)s", "seq": 2.5}', "invalid_field"),
    ('{"event": "received", "conversation_id": "%(c)s", "seq": 9223372036854775808}',
     "invalid_field"),
    ('{"event": "received", "conversation_id": "%(c)s", "seq": 3}', "seq_ahead"),
    ('{"event": "received", "conversation_id": "%(c)s", "seq": 9223372036854775807}',
     "seq_ahead"),
    ('{"event": "received", "conversation_id": "%(c)s"}', "missing_field"),
    ('{"event": "received", "conversation_id": "%(unknown)s", "seq": 1}',
     "conversation_not_found"),
]  # fmt: skip


@pytest.mark.parametrize(("raw", "code"), BAD_RECEIVED)
async def test_a_bad_received_frame_gets_an_error_and_the_socket_stays_open(
    api: httpx.AsyncClient,
    db: asyncpg.Connection,
    pair: tuple[User, User, str],
    raw: str,
    code: str,
) -> None:
    alice, bob, conversation_id = pair
    async with sockets(api, alice, bob) as (alice_ws, bob_ws):
        await send_messages(alice_ws, conversation_id, 2)
        await bob_ws.send(raw % {"c": conversation_id, "unknown": uuid.uuid4()})
        error = await next_frame(bob_ws, lambda f: f.get("event") == "error")
        assert (error["code"], bool(error["message"])) == (code, True)
        await send_frame(bob_ws, event="ping")
        assert await next_frame(bob_ws, lambda f: f.get("event") == "pong")
        await send_frame(bob_ws, event="received", conversation_id=conversation_id, seq=1)
        await wait_for_mark(db, conversation_id, bob, 1)  # the refused frame moved nothing


async def test_a_stranger_cannot_move_a_members_mark_or_hear_of_it(
    api: httpx.AsyncClient, db: asyncpg.Connection, pair: tuple[User, User, str]
) -> None:
    alice, bob, conversation_id = pair
    mallory = await register(api)
    async with sockets(api, alice, mallory) as (alice_ws, mallory_ws):
        await send_messages(alice_ws, conversation_id, 1)
        await send_frame(mallory_ws, event="received", conversation_id=conversation_id, seq=1)
        error = await next_frame(mallory_ws)
    assert error["code"] == "conversation_not_found"
    rows = await db.fetch(
        "SELECT delivered_seq FROM conversation_members WHERE conversation_id = $1",
        uuid.UUID(conversation_id),
    )
    assert [row["delivered_seq"] for row in rows] == [0, 0]


async def test_many_received_frames_are_written_in_few_updates(
    api: httpx.AsyncClient, db: asyncpg.Connection, pair: tuple[User, User, str]
) -> None:
    alice, bob, conversation_id = pair
    # Counts every row an UPDATE writes to the marks, as it happens (pg_stat's counters
    # reach the view only when the server's backends report them, up to a second later).
    await db.execute(
        "CREATE TABLE mark_writes (n int);"
        " CREATE FUNCTION count_mark_write() RETURNS trigger LANGUAGE plpgsql AS"
        " $$ BEGIN INSERT INTO mark_writes VALUES (1); RETURN NEW; END $$;"
        " CREATE TRIGGER count_mark_writes AFTER UPDATE OF delivered_seq"
        " ON conversation_members FOR EACH ROW EXECUTE FUNCTION count_mark_write();"
    )
    async with sockets(api, alice, bob, bob) as (alice_ws, bob_ws, bob_phone):
        last = await send_messages(alice_ws, conversation_id, 100)
        # Two devices of bob's, each saying `received` for every message: 200 frames.
        for seq in range(1, last + 1):
            await send_frame(bob_ws, event="received", conversation_id=conversation_id, seq=seq)
            await send_frame(bob_phone, event="received", conversation_id=conversation_id, seq=seq)
        await wait_for_mark(db, conversation_id, bob, last)
    writes = await db.fetchval("SELECT count(*) FROM mark_writes")
    assert 1 <= writes <= 20, writes


async def test_marks_held_at_shutdown_are_written(
    database_url: str, redis_url: str, db: asyncpg.Connection
) -> None:
    # A flush interval longer than the test: only the shutdown can write the mark.
    env = server_environment(database_url, redis_url, DELIVERY_FLUSH_INTERVAL="1h")
    async with serve_app(load_settings(env)) as url, httpx.AsyncClient(base_url=url) as api:
        alice, bob = await register(api), await register(api)
        conversation_id = (await create_direct(api, alice["tokens"], bob["user"]["id"]))["id"]
        async with sockets(api, alice, bob) as (alice_ws, bob_ws):
            await send_messages(alice_ws, conversation_id, 2)
            await send_frame(bob_ws, event="received", conversation_id=conversation_id, seq=2)
            await send_frame(bob_ws, event="ping")
            await next_frame(bob_ws, lambda f: f.get("event") == "pong")
        assert await delivered_seq(db, conversation_id, bob) == 0
    assert await delivered_seq(db, conversation_id, bob) == 2
