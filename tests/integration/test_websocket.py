"""The WebSocket protocol against a real server: delivery, acks, idempotency, bad frames."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis
from websockets.exceptions import ConnectionClosed, InvalidStatus

from gochat_py.settings import load_settings
from tests.harness import (
    connect,
    create_direct,
    is_message,
    live_subscribers,
    next_frame,
    poll_until,
    register,
    send_frame,
    serve_app,
    server_environment,
    ws_url,
)


async def test_the_gochat_quick_test_flow(api: httpx.AsyncClient) -> None:
    alice, bob = await register(api, "alice_" + uuid.uuid4().hex[:6]), await register(api)
    conversation = await create_direct(api, alice["tokens"], bob["user"]["id"])
    async with (
        connect(ws_url(api, alice["tokens"]["access_token"])) as alice_ws,
        connect(ws_url(api, bob["tokens"]["access_token"])) as bob_ws,
    ):
        await send_frame(alice_ws, conversation_id=conversation["id"], content="Hey Bob!")
        received = await next_frame(bob_ws, is_message)
    assert received["content"] == "Hey Bob!"
    assert received["conversation_id"] == conversation["id"]
    assert received["sender_id"] == alice["user"]["id"]
    assert received["sender_username"] == alice["user"]["username"]
    assert received["type"] == "text"
    assert received["seq"] == 1
    assert isinstance(received["sent_at"], int) and received["sent_at"] > 1_700_000_000_000
    uuid.UUID(received["id"])


async def test_the_sender_gets_an_ack_and_its_own_message(
    api: httpx.AsyncClient, pair: tuple[dict[str, Any], dict[str, Any], str]
) -> None:
    alice, _, conversation_id = pair
    async with connect(ws_url(api, alice["tokens"]["access_token"])) as socket:
        await send_frame(socket, conversation_id=conversation_id, content="hi", client_msg_id="c-1")
        # Either may come first: the echo travels by pub/sub, the ack by the send's reply.
        first, second = await next_frame(socket), await next_frame(socket)
    [ack] = [f for f in (first, second) if f.get("event") == "ack"]
    [echo] = [f for f in (first, second) if is_message(f)]
    assert ack["client_msg_id"] == "c-1"
    assert ack["duplicate"] is False
    assert (ack["id"], ack["seq"], ack["sent_at"]) == (echo["id"], echo["seq"], echo["sent_at"])


async def test_every_device_of_every_member_receives_the_message(
    api: httpx.AsyncClient, pair: tuple[dict[str, Any], dict[str, Any], str]
) -> None:
    alice, bob, conversation_id = pair
    alice_token, bob_token = alice["tokens"]["access_token"], bob["tokens"]["access_token"]
    async with (
        connect(ws_url(api, alice_token)) as alice_phone,
        connect(ws_url(api, alice_token)) as alice_laptop,
        connect(ws_url(api, bob_token)) as bob_phone,
        connect(ws_url(api, bob_token)) as bob_laptop,
    ):
        await send_frame(alice_phone, conversation_id=conversation_id, content="to all devices")
        for socket in (alice_phone, alice_laptop, bob_phone, bob_laptop):
            frame = await next_frame(socket, is_message)
            assert frame["content"] == "to all devices"


async def test_the_authorization_header_works_like_the_query_token(
    api: httpx.AsyncClient, pair: tuple[dict[str, Any], dict[str, Any], str]
) -> None:
    alice, _, _ = pair
    headers = {"Authorization": f"Bearer {alice['tokens']['access_token']}"}
    async with connect(ws_url(api), additional_headers=headers) as socket:
        await send_frame(socket, event="ping")
        assert (await next_frame(socket))["event"] == "pong"


@pytest.mark.parametrize("token", [None, "garbage", "eyJhbGciOiJub25lIn0.e30."])
async def test_a_missing_or_bad_token_is_refused(api: httpx.AsyncClient, token: str | None) -> None:
    with pytest.raises(InvalidStatus) as refused:
        async with connect(ws_url(api, token)):
            pass
    assert refused.value.response.status_code == 403


async def test_a_refresh_token_is_refused(
    api: httpx.AsyncClient, pair: tuple[dict[str, Any], dict[str, Any], str]
) -> None:
    alice, _, _ = pair
    with pytest.raises(InvalidStatus) as refused:
        async with connect(ws_url(api, alice["tokens"]["refresh_token"])):
            pass
    assert refused.value.response.status_code == 403


async def test_a_resend_with_the_same_client_msg_id_is_not_a_duplicate(
    api: httpx.AsyncClient, pair: tuple[dict[str, Any], dict[str, Any], str]
) -> None:
    alice, bob, conversation_id = pair
    async with (
        connect(ws_url(api, alice["tokens"]["access_token"])) as alice_ws,
        connect(ws_url(api, bob["tokens"]["access_token"])) as bob_ws,
    ):
        for _ in range(3):
            await send_frame(
                alice_ws, conversation_id=conversation_id, content="once", client_msg_id="k"
            )
        acks = [await next_frame(alice_ws, lambda f: f.get("event") == "ack") for _ in range(3)]
        await send_frame(
            alice_ws, conversation_id=conversation_id, content="after", client_msg_id="k2"
        )
        first = await next_frame(bob_ws, is_message)
        second = await next_frame(bob_ws, is_message)
    assert len({a["id"] for a in acks}) == 1
    assert [a["duplicate"] for a in acks] == [False, True, True]
    assert (first["content"], second["content"]) == ("once", "after")
    assert second["seq"] == first["seq"] + 1
    history = await api.get(
        f"/api/v1/conversations/{conversation_id}/messages",
        headers={"Authorization": f"Bearer {bob['tokens']['access_token']}"},
    )
    assert [m["content"] for m in history.json()["messages"]] == ["after", "once"]


async def test_seq_increases_by_one_per_message_in_a_conversation(
    api: httpx.AsyncClient, pair: tuple[dict[str, Any], dict[str, Any], str]
) -> None:
    alice, _, conversation_id = pair
    async with connect(ws_url(api, alice["tokens"]["access_token"])) as socket:
        for i in range(20):
            await send_frame(socket, conversation_id=conversation_id, content=f"m{i}")
        acks = [await next_frame(socket, lambda f: f.get("event") == "ack") for _ in range(20)]
    assert [a["seq"] for a in acks] == list(range(1, 21))


BAD_FRAMES = [
    ("not json at all", "invalid_json"),
    ("[1, 2, 3]", "invalid_frame"),
    ('{"conversation_id": 5, "content": "x"}', "invalid_field"),
    ('{"conversation_id": "not-a-uuid", "content": "x"}', "invalid_field"),
    ('{"content": "no conversation"}', "missing_field"),
    ('{"conversation_id": "%(c)s"}', "missing_field"),
    ('{"conversation_id": "%(c)s", "content": ""}', "empty_content"),
    ('{"conversation_id": "%(c)s", "content": "   "}', "empty_content"),
    ('{"conversation_id": "%(c)s", "content": "%(long)s"}', "content_too_long"),
    ('{"conversation_id": "%(c)s", "content": 42}', "invalid_field"),
    ('{"event": "dance", "conversation_id": "%(c)s"}', "unknown_event"),
    ('{"event": 7}', "invalid_frame"),
    ('{"event": "read", "conversation_id": "%(c)s", "seq": -1}', "invalid_field"),
    ('{"conversation_id": "%(unknown)s", "content": "x", "client_msg_id": "r1"}',
     "conversation_not_found"),
]  # fmt: skip


@pytest.mark.parametrize(("raw", "code"), BAD_FRAMES)
async def test_a_bad_frame_gets_an_error_frame_and_the_connection_stays_open(
    api: httpx.AsyncClient,
    pair: tuple[dict[str, Any], dict[str, Any], str],
    raw: str,
    code: str,
) -> None:
    alice, _, conversation_id = pair
    frame = raw % {"c": conversation_id, "unknown": uuid.uuid4(), "long": "x" * 4001}
    async with connect(ws_url(api, alice["tokens"]["access_token"])) as socket:
        await socket.send(frame)
        error = await next_frame(socket)
        assert error["event"] == "error"
        assert error["code"] == code
        assert error["message"]
        await send_frame(socket, conversation_id=conversation_id, content="still here")
        assert (await next_frame(socket, lambda f: f.get("event") == "ack"))["seq"] == 1


async def test_an_error_frame_carries_the_client_reference(
    api: httpx.AsyncClient, pair: tuple[dict[str, Any], dict[str, Any], str]
) -> None:
    alice, _, _ = pair
    async with connect(ws_url(api, alice["tokens"]["access_token"])) as socket:
        await send_frame(
            socket, conversation_id=str(uuid.uuid4()), content="x", client_msg_id="ref-9"
        )
        error = await next_frame(socket)
    assert (error["code"], error["ref"]) == ("conversation_not_found", "ref-9")


async def test_a_non_member_cannot_send_and_nothing_is_published(
    api: httpx.AsyncClient, pair: tuple[dict[str, Any], dict[str, Any], str]
) -> None:
    alice, bob, conversation_id = pair
    mallory = await register(api)
    async with (
        connect(ws_url(api, mallory["tokens"]["access_token"])) as mallory_ws,
        connect(ws_url(api, bob["tokens"]["access_token"])) as bob_ws,
        connect(ws_url(api, alice["tokens"]["access_token"])) as alice_ws,
    ):
        await send_frame(mallory_ws, conversation_id=conversation_id, content="let me in")
        error = await next_frame(mallory_ws)
        await send_frame(alice_ws, conversation_id=conversation_id, content="legit")
        first_for_bob = await next_frame(bob_ws, is_message)
    assert error["code"] == "conversation_not_found"
    assert first_for_bob["content"] == "legit"
    assert first_for_bob["seq"] == 1


async def test_a_frame_over_64_kib_closes_with_1009(
    api: httpx.AsyncClient, pair: tuple[dict[str, Any], dict[str, Any], str]
) -> None:
    alice, _, conversation_id = pair
    async with connect(ws_url(api, alice["tokens"]["access_token"]), max_size=None) as socket:
        await send_frame(socket, conversation_id=conversation_id, content="x" * (65 * 1024))
        with pytest.raises(ConnectionClosed) as closed:
            await next_frame(socket)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009


async def test_typing_reaches_the_other_members_only(
    api: httpx.AsyncClient, pair: tuple[dict[str, Any], dict[str, Any], str]
) -> None:
    alice, bob, conversation_id = pair
    async with (
        connect(ws_url(api, alice["tokens"]["access_token"])) as alice_ws,
        connect(ws_url(api, bob["tokens"]["access_token"])) as bob_ws,
    ):
        await send_frame(alice_ws, event="typing", conversation_id=conversation_id)
        typing = await next_frame(bob_ws)
        # Her message follows on the same channel: an echo of her typing would come first.
        await send_frame(alice_ws, conversation_id=conversation_id, content="after typing")
        first = await next_frame(alice_ws, lambda f: f.get("event") == "typing" or is_message(f))
        assert is_message(first), first
    assert typing == {
        "event": "typing",
        "conversation_id": conversation_id,
        "user_id": alice["user"]["id"],
        "username": alice["user"]["username"],
    }


async def test_a_read_mark_is_stored_and_announced(
    api: httpx.AsyncClient, pair: tuple[dict[str, Any], dict[str, Any], str]
) -> None:
    alice, bob, conversation_id = pair
    async with (
        connect(ws_url(api, alice["tokens"]["access_token"])) as alice_ws,
        connect(ws_url(api, bob["tokens"]["access_token"])) as bob_ws,
    ):
        for i in range(3):
            await send_frame(alice_ws, conversation_id=conversation_id, content=f"m{i}")
        for _ in range(3):
            await next_frame(bob_ws, is_message)
        await send_frame(bob_ws, event="read", conversation_id=conversation_id, seq=2)
        seen = await next_frame(alice_ws, lambda f: f.get("event") == "read")
    assert seen == {"event": "read", "conversation_id": conversation_id,
                    "user_id": bob["user"]["id"], "seq": 2}  # fmt: skip
    listed = await api.get(
        f"/api/v1/conversations/{conversation_id}",
        headers={"Authorization": f"Bearer {bob['tokens']['access_token']}"},
    )
    assert listed.json()["unread_count"] == 1


async def test_a_flood_gets_retry_after_errors_and_then_a_1008_close(
    database_url: str, redis_url: str
) -> None:
    env = server_environment(database_url, redis_url, WS_RATE="20", WS_BURST="40")
    async with serve_app(load_settings(env)) as url, httpx.AsyncClient(base_url=url) as api:
        alice = await register(api)
        await flood(ws_url(api, alice["tokens"]["access_token"]))


@pytest.mark.parametrize("setting", [None, "true"])
async def test_permessage_deflate_is_offered_only_when_switched_on(
    database_url: str, redis_url: str, setting: str | None
) -> None:
    extra = {"WS_PER_MESSAGE_DEFLATE": setting} if setting else {}
    env = server_environment(database_url, redis_url, **extra)
    async with serve_app(load_settings(env)) as url, httpx.AsyncClient(base_url=url) as api:
        alice = await register(api)
        # The client offers compression; the server takes it up only when configured to.
        async with connect(ws_url(api, alice["tokens"]["access_token"])) as socket:
            extensions = socket.response.headers.get("Sec-WebSocket-Extensions") or ""
            # Frames both ways, compressed when it was agreed.
            await send_frame(socket, event="ping", padding="x" * 2000)
            assert (await next_frame(socket))["event"] == "pong"
    assert ("permessage-deflate" in extensions) == (setting == "true")


async def flood(url: str) -> None:
    async with connect(url) as socket:
        for _ in range(400):
            try:
                await send_frame(socket, event="ping")
            except ConnectionClosed:
                break
        frames: list[dict[str, Any]] = []
        with pytest.raises(ConnectionClosed) as closed:
            async with asyncio.timeout(10):
                while True:
                    frames.append(json.loads(await socket.recv()))
    limited = [f for f in frames if f.get("code") == "rate_limited"]
    assert limited and all(f["retry_after"] > 0 for f in limited)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008


async def test_a_peer_that_stops_answering_pings_is_reaped(
    database_url: str, redis_url: str
) -> None:
    env = server_environment(database_url, redis_url, WS_PING_INTERVAL="300ms")
    async with serve_app(load_settings(env)) as url, httpx.AsyncClient(base_url=url) as api:
        alice = await register(api)

        async def open_sockets() -> float:
            for line in (await api.get("/metrics")).text.splitlines():
                if line.startswith("gochat_ws_connections "):
                    return float(line.split()[1])
            raise AssertionError("no gochat_ws_connections metric")

        async with connect(ws_url(api, alice["tokens"]["access_token"]), close_timeout=0.1) as ws:
            assert await open_sockets() == 1
            ws.transport.pause_reading()  # a vanished peer: no pongs come back

            async def reaped() -> bool:
                return await open_sockets() == 0

            await poll_until(reaped, timeout=10, what="the server to drop the silent peer")


async def test_a_conversations_channel_is_subscribed_once_while_any_members_socket_is_open(
    api: httpx.AsyncClient, redis: Redis, pair: tuple[dict[str, Any], dict[str, Any], str]
) -> None:
    alice, bob, conversation_id = pair

    async def subscribers() -> int:
        return await live_subscribers(redis, conversation_id)

    async with connect(ws_url(api, alice["tokens"]["access_token"])) as first:
        await poll_until(lambda: _equals(subscribers(), 1), what="the first socket to subscribe")
        async with (
            connect(ws_url(api, alice["tokens"]["access_token"])),
            connect(ws_url(api, bob["tokens"]["access_token"])),
        ):
            await send_frame(first, event="ping")
            await next_frame(first)
            assert await subscribers() == 1  # one subscription per process, not per socket
        await send_frame(first, event="ping")
        await next_frame(first)
        assert await subscribers() == 1
    await poll_until(lambda: _equals(subscribers(), 0), what="the last socket to unsubscribe")


async def _equals(value: Awaitable[int], expected: int) -> bool:
    return await value == expected
