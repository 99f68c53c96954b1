"""Resuming on a real server: the replay, the seam with live frames, members only, bad
resume frames and the bounds of holding."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, InvalidStatus

from gochat_py.devstack.services import RedisServer
from gochat_py.settings import load_settings
from tests.harness import (
    bearer,
    connect,
    create_direct,
    is_message,
    next_frame,
    poll_until,
    post_messages,
    register,
    send_frame,
    serve_app,
    server_environment,
    ws_url,
)

Pair = tuple[dict[str, Any], dict[str, Any], str]


def resume_url(api: httpx.AsyncClient, user: dict[str, Any], query: str = "resume=1") -> str:
    return f"{ws_url(api, user['tokens']['access_token'])}&{query}"


async def send_messages(
    api: httpx.AsyncClient, user: dict[str, Any], conversation: str, n: int
) -> None:
    await post_messages(api, user["tokens"], conversation, n)


async def until_resumed(socket: ClientConnection) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The frames before `resumed` (presence and errors left out), and `resumed`."""
    before = []
    while True:
        frame = await next_frame(socket)
        if frame.get("event") == "resumed":
            return before, frame
        before.append(frame)


async def test_a_resume_replays_what_came_after_the_position_then_says_so_then_goes_live(
    api: httpx.AsyncClient, pair: Pair
) -> None:
    alice, bob, conversation = pair
    await send_messages(api, alice, conversation, 5)
    async with connect(resume_url(api, bob)) as socket:
        await send_frame(socket, event="resume", positions={conversation: 2})
        replayed, resumed = await until_resumed(socket)
        await send_messages(api, alice, conversation, 1)
        live = await next_frame(socket, is_message)
    assert [(f["seq"], f["content"]) for f in replayed] == [(3, "m2"), (4, "m3"), (5, "m4")]
    assert resumed["conversations"] == [
        {"conversation_id": conversation, "recovered": True, "from_seq": 3, "to_seq": 5,
         "replayed": 3}
    ]  # fmt: skip
    assert resumed["not_found"] == []
    assert live["seq"] == 6
    metrics = (await api.get("/metrics")).text
    assert 'gochat_ws_resumed_conversations_total{recovered="true"} 1.0' in metrics
    assert "gochat_ws_replayed_frames_total 3.0" in metrics


async def test_frames_published_while_holding_come_once_after_the_replay_in_order(
    api: httpx.AsyncClient, pair: Pair
) -> None:
    alice, bob, conversation = pair
    await send_messages(api, alice, conversation, 2)
    async with connect(resume_url(api, bob)) as socket:
        # Published after the socket subscribed: both held and in the cache the replay reads.
        await send_messages(api, alice, conversation, 3)
        await send_frame(socket, event="resume", positions={conversation: 1})
        replayed, resumed = await until_resumed(socket)
        await send_messages(api, alice, conversation, 1)
        after = await next_frame(socket)
    assert [f["seq"] for f in replayed] == [2, 3, 4, 5]
    assert resumed["conversations"][0]["replayed"] == 4
    # The held copies of 3, 4 and 5 were dropped: the next frame is the next message.
    assert after["seq"] == 6


async def test_a_socket_holds_live_frames_until_its_first_frame(
    api: httpx.AsyncClient, pair: Pair
) -> None:
    alice, bob, conversation = pair
    async with connect(resume_url(api, bob)) as socket:
        await send_messages(api, alice, conversation, 1)
        with pytest.raises(TimeoutError):
            await next_frame(socket, timeout=0.5)
        # Any frame but a resume ends the hold with nothing replayed.
        await send_frame(socket, event="ping")
        first, second = await next_frame(socket), await next_frame(socket)
    assert {first.get("event"), second.get("event")} == {"pong", None}
    assert [f["seq"] for f in (first, second) if is_message(f)] == [1]


async def test_a_stranger_conversation_and_an_unknown_one_are_not_found_and_nothing_leaks(
    api: httpx.AsyncClient, pair: Pair
) -> None:
    alice, bob, conversation = pair
    mallory = await register(api)
    await send_messages(api, alice, conversation, 3)
    unknown = str(uuid.uuid4())
    async with connect(resume_url(api, mallory)) as socket:
        await send_frame(socket, event="resume", positions={conversation: 0, unknown: 0})
        replayed, resumed = await until_resumed(socket)
        await send_messages(api, alice, conversation, 1)
        with pytest.raises(TimeoutError):
            await next_frame(socket, timeout=0.3)
    assert replayed == []
    assert resumed["conversations"] == []
    assert sorted(resumed["not_found"]) == sorted([conversation, unknown])


async def test_a_conversation_with_nothing_missed_is_recovered_with_an_empty_range(
    api: httpx.AsyncClient, pair: Pair
) -> None:
    alice, bob, conversation = pair
    quiet = (await create_direct(api, bob["tokens"], (await register(api))["user"]["id"]))["id"]
    await send_messages(api, alice, conversation, 2)
    async with connect(resume_url(api, bob)) as socket:
        await send_frame(socket, event="resume", positions={conversation: 2, quiet: 0})
        replayed, resumed = await until_resumed(socket)
    assert replayed == []
    assert resumed["conversations"] == [
        {"conversation_id": conversation, "recovered": True, "from_seq": 3, "to_seq": 2,
         "replayed": 0},
        {"conversation_id": quiet, "recovered": True, "from_seq": 1, "to_seq": 0, "replayed": 0},
    ]  # fmt: skip


async def test_edits_and_deletes_are_replayed_in_log_order_to_sockets_that_asked_for_them(
    api: httpx.AsyncClient, pair: Pair
) -> None:
    alice, bob, conversation = pair
    await send_messages(api, alice, conversation, 2)
    history = await api.get(
        f"/api/v1/conversations/{conversation}/messages", headers=bearer(alice["tokens"])
    )
    second, first = history.json()["messages"]
    url = f"/api/v1/conversations/{conversation}/messages"
    edited = await api.patch(
        f"{url}/{first['id']}", json={"content": "m0 fixed"}, headers=bearer(alice["tokens"])
    )
    assert edited.status_code == 200, edited.text
    await send_messages(api, alice, conversation, 1)
    deleted = await api.delete(f"{url}/{second['id']}", headers=bearer(alice["tokens"]))
    assert deleted.status_code == 204, deleted.text
    async with connect(resume_url(api, bob)) as socket:
        await send_frame(socket, event="resume", positions={conversation: 0})
        everything, resumed = await until_resumed(socket)
    assert [(f.get("event"), f["seq"]) for f in everything] == [
        (None, 1),
        (None, 2),
        ("message_updated", 3),
        (None, 4),
        ("message_deleted", 5),
    ]
    assert everything[2] == edited.json()
    assert resumed["conversations"][0]["replayed"] == 5
    async with connect(resume_url(api, bob, "resume=1&events=resume")) as socket:
        await send_frame(socket, event="resume", positions={conversation: 0})
        messages_only, resumed = await until_resumed(socket)
    assert [f["seq"] for f in messages_only] == [1, 2, 4]
    assert all(is_message(f) for f in messages_only)
    assert resumed["conversations"][0]["replayed"] == 3
    assert resumed["conversations"][0]["to_seq"] == 5


@pytest.mark.parametrize(
    ("positions", "code"),
    [
        ([1, 2], "invalid_field"),
        ({"CONVERSATION": "7"}, "invalid_field"),
        ({"CONVERSATION": -1}, "invalid_field"),
        ({"CONVERSATION": 2**63}, "invalid_field"),
        ({"not-a-uuid": 1}, "invalid_field"),
        (None, "missing_field"),
        ({str(uuid.UUID(int=i)): 0 for i in range(1001)}, "too_many_conversations"),
    ],
)
async def test_a_bad_resume_frame_gets_an_error_and_the_socket_goes_on(
    api: httpx.AsyncClient, pair: Pair, positions: Any, code: str
) -> None:
    alice, bob, conversation = pair
    frame: dict[str, Any] = {"event": "resume"}
    if positions is not None:
        frame["positions"] = json.loads(json.dumps(positions).replace("CONVERSATION", conversation))
    async with connect(resume_url(api, bob)) as socket:
        await send_messages(api, alice, conversation, 1)
        await socket.send(json.dumps(frame))
        error = await next_frame(socket, lambda f: f.get("event") == "error")
        # The refused resume ended the hold: the held message follows, nothing replayed.
        held = await next_frame(socket)
        await send_frame(socket, event="ping")
        assert (await next_frame(socket))["event"] == "pong"
    assert error["code"] == code
    assert held["seq"] == 1


async def test_a_resume_frame_needs_the_resume_event(api: httpx.AsyncClient, pair: Pair) -> None:
    _, bob, conversation = pair
    async with connect(f"{ws_url(api, bob['tokens']['access_token'])}&events=ack") as socket:
        await send_frame(socket, event="resume", positions={conversation: 0})
        error = await next_frame(socket)
    assert error["code"] == "not_negotiated"


@pytest.mark.parametrize("query", ["resume=1&events=ack", "resume=yes"])
async def test_resume_1_without_the_resume_event_or_with_another_value_is_refused(
    api: httpx.AsyncClient, pair: Pair, query: str
) -> None:
    _, bob, _ = pair
    with pytest.raises(InvalidStatus) as refused:
        async with connect(resume_url(api, bob, query)):
            pass
    assert refused.value.response.status_code == 403


async def test_a_resume_on_a_socket_that_did_not_hold_replays_and_then_goes_live_once(
    api: httpx.AsyncClient, pair: Pair
) -> None:
    alice, bob, conversation = pair
    async with connect(ws_url(api, bob["tokens"]["access_token"])) as socket:
        await send_messages(api, alice, conversation, 2)
        assert [(await next_frame(socket, is_message))["seq"] for _ in range(2)] == [1, 2]
        await send_frame(socket, event="resume", positions={conversation: 1})
        replayed, resumed = await until_resumed(socket)
        await send_messages(api, alice, conversation, 1)
        after = await next_frame(socket)
    assert [f["seq"] for f in replayed] == [2]
    assert resumed["conversations"][0]["recovered"] is True
    assert after["seq"] == 3


@pytest.fixture
async def hold_limits(
    database_url: str, redis_url: str
) -> AsyncIterator[tuple[httpx.AsyncClient, Pair]]:
    """A server whose resuming sockets hold for 0.5 s at most, or 5 frames, and a pair."""
    env = server_environment(database_url, redis_url, WS_RESUME_HOLD="500ms", WS_SEND_QUEUE="5")
    async with serve_app(load_settings(env)) as url, httpx.AsyncClient(base_url=url) as client:
        alice, bob = await register(client), await register(client)
        conversation = (await create_direct(client, alice["tokens"], bob["user"]["id"]))["id"]
        yield client, (alice, bob, conversation)


async def test_past_the_hold_time_the_held_frames_go_out_as_if_no_resume_came(
    hold_limits: tuple[httpx.AsyncClient, Pair],
) -> None:
    api, (alice, bob, conversation) = hold_limits
    async with connect(resume_url(api, bob)) as socket:
        opened = time.monotonic()
        await send_messages(api, alice, conversation, 2)
        first = await next_frame(socket, timeout=5)
        waited = time.monotonic() - opened
        second = await next_frame(socket)
        # A resume after that still answers, without holding anything back.
        await send_frame(socket, event="resume", positions={conversation: 2})
        _, resumed = await until_resumed(socket)
    assert waited >= 0.45
    assert [first["seq"], second["seq"]] == [1, 2]
    assert resumed["conversations"][0]["recovered"] is True


async def test_a_socket_holding_more_frames_than_its_send_queue_is_closed_with_1013(
    hold_limits: tuple[httpx.AsyncClient, Pair],
) -> None:
    api, (alice, bob, conversation) = hold_limits
    async with connect(resume_url(api, bob)) as socket:
        await send_messages(api, alice, conversation, 6)
        received = []
        with pytest.raises(ConnectionClosed) as closed:
            async with asyncio.timeout(5):
                while True:
                    received.append(json.loads(await socket.recv()))
    assert not any(is_message(frame) for frame in received)
    assert closed.value.rcvd is not None
    assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (1013, "resume_hold_full")


async def test_a_resume_that_meets_a_redis_outage_is_answered_unavailable_and_holds_nothing_after(
    database_url: str, own_redis: RedisServer
) -> None:
    settings = load_settings(server_environment(database_url, own_redis.url))
    async with serve_app(settings) as url, httpx.AsyncClient(base_url=url) as api:
        alice, bob = await register(api), await register(api)
        conversation = (await create_direct(api, alice["tokens"], bob["user"]["id"]))["id"]
        async with connect(resume_url(api, bob)) as socket:
            own_redis.stop()
            await send_frame(socket, event="resume", positions={conversation: 0})
            error = await next_frame(socket)
            own_redis.start()

            async def delivered_live() -> bool:
                # Sent until the hub has resubscribed: pub/sub keeps nothing published before.
                response = await api.post(
                    f"/api/v1/conversations/{conversation}/messages",
                    json={"content": "after"},
                    headers=bearer(alice["tokens"]),
                )
                if response.status_code != 201:
                    return False
                try:
                    return is_message(await next_frame(socket, timeout=1))
                except TimeoutError:
                    return False

            await poll_until(delivered_live, timeout=20, what="a live message after the outage")
    assert (error["event"], error["code"]) == ("error", "unavailable")


async def test_a_resume_moves_the_devices_delivered_mark(
    api: httpx.AsyncClient, pair: Pair, db: asyncpg.Connection
) -> None:
    alice, bob, conversation = pair
    await send_messages(api, alice, conversation, 4)
    async with connect(resume_url(api, bob)) as socket:
        await send_frame(socket, event="resume", positions={conversation: 1})
        await until_resumed(socket)

    async def marked() -> bool:
        mark = await db.fetchval(
            "SELECT delivered_seq FROM conversation_members"
            " WHERE conversation_id = $1 AND user_id = $2",
            uuid.UUID(conversation),
            uuid.UUID(bob["user"]["id"]),
        )
        return mark == 4

    await poll_until(marked, what="the resume to count as delivery up to seq 4")
