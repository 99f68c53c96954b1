"""Which frames a socket gets: gochat's by default, more when the client asks."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from websockets.exceptions import InvalidStatus

from gochat_py.websocket.negotiation import SUBPROTOCOL
from tests.harness import (
    connect,
    is_message,
    next_frame,
    plain_connect,
    send_frame,
    ws_url,
)


async def test_a_gochat_client_gets_messages_only_never_typing_read_or_unasked_acks(
    api: httpx.AsyncClient, pair: tuple[dict[str, Any], dict[str, Any], str]
) -> None:
    alice, bob, conversation_id = pair
    async with (
        plain_connect(ws_url(api, alice["tokens"]["access_token"])) as gochat_ws,
        connect(ws_url(api, bob["tokens"]["access_token"])) as bob_ws,
    ):
        assert gochat_ws.subprotocol is None
        await send_frame(bob_ws, conversation_id=conversation_id, content="one")
        await send_frame(bob_ws, event="typing", conversation_id=conversation_id)
        await send_frame(bob_ws, event="read", conversation_id=conversation_id, seq=1)
        await next_frame(bob_ws, lambda f: f.get("event") == "typing" or f.get("event") == "read")
        await send_frame(gochat_ws, conversation_id=conversation_id, content="mine")
        await next_frame(bob_ws, lambda f: f.get("content") == "mine")
        await send_frame(bob_ws, conversation_id=conversation_id, content="two")
        # Everything above travels before "two" on the same channel, or is answered before
        # it on this socket: whatever she was sent arrives first.
        frames = [await next_frame(gochat_ws) for _ in range(2)]
    assert [(f.get("event"), f.get("content")) for f in frames] == [(None, "one"), (None, "two")]


async def test_a_gochat_clients_own_send_comes_back_to_its_other_devices_only(
    api: httpx.AsyncClient, pair: tuple[dict[str, Any], dict[str, Any], str]
) -> None:
    alice, _, conversation_id = pair
    url = ws_url(api, alice["tokens"]["access_token"])
    async with plain_connect(url) as phone, plain_connect(url) as laptop:
        await send_frame(phone, conversation_id=conversation_id, content="from the phone")
        await send_frame(laptop, conversation_id=conversation_id, content="from the laptop")
        on_laptop = await next_frame(laptop)
        on_phone = await next_frame(phone)
        # Each device shows its own send already: the other's is all it is handed.
        await send_frame(phone, event="ping")
        assert (await next_frame(phone))["event"] == "pong"
    assert on_laptop["content"] == "from the phone"
    assert on_phone["content"] == "from the laptop"


async def test_a_gochat_client_that_names_its_send_gets_the_ack(
    api: httpx.AsyncClient, pair: tuple[dict[str, Any], dict[str, Any], str]
) -> None:
    alice, _, conversation_id = pair
    async with plain_connect(ws_url(api, alice["tokens"]["access_token"])) as socket:
        await send_frame(socket, conversation_id=conversation_id, content="hi", client_msg_id="c-9")
        ack = await next_frame(socket, lambda f: f.get("event") == "ack")
    assert ack["client_msg_id"] == "c-9"


async def test_errors_say_error_true_as_gochat_clients_check(
    api: httpx.AsyncClient, pair: tuple[dict[str, Any], dict[str, Any], str]
) -> None:
    alice, _, _ = pair
    async with plain_connect(ws_url(api, alice["tokens"]["access_token"])) as socket:
        await socket.send("not json")
        error = await next_frame(socket)
    assert error["error"] is True
    assert (error["event"], error["code"]) == ("error", "invalid_json")


async def test_the_subprotocol_is_answered_and_brings_typing_read_and_every_ack(
    api: httpx.AsyncClient, pair: tuple[dict[str, Any], dict[str, Any], str]
) -> None:
    alice, bob, conversation_id = pair
    async with (
        connect(ws_url(api, alice["tokens"]["access_token"])) as alice_ws,
        connect(ws_url(api, bob["tokens"]["access_token"])) as bob_ws,
    ):
        assert alice_ws.subprotocol == SUBPROTOCOL
        await send_frame(alice_ws, conversation_id=conversation_id, content="unnamed")
        ack = await next_frame(alice_ws, lambda f: f.get("event") == "ack")
        await send_frame(bob_ws, event="typing", conversation_id=conversation_id)
        typing = await next_frame(alice_ws, lambda f: f.get("event") == "typing")
    assert ack["client_msg_id"] is None
    assert typing["user_id"] == bob["user"]["id"]


async def test_events_narrows_to_what_is_named(
    api: httpx.AsyncClient, pair: tuple[dict[str, Any], dict[str, Any], str]
) -> None:
    alice, bob, conversation_id = pair
    url = ws_url(api, alice["tokens"]["access_token"]) + "&events=read,echo"
    async with (
        connect(url) as alice_ws,
        connect(ws_url(api, bob["tokens"]["access_token"])) as bob_ws,
    ):
        assert alice_ws.subprotocol == SUBPROTOCOL
        await send_frame(bob_ws, conversation_id=conversation_id, content="one")
        await next_frame(alice_ws, is_message)
        await send_frame(bob_ws, event="typing", conversation_id=conversation_id)
        await send_frame(bob_ws, event="read", conversation_id=conversation_id, seq=1)
        await send_frame(alice_ws, conversation_id=conversation_id, content="unnamed")
        frames = [await next_frame(alice_ws) for _ in range(2)]
    # No typing and no ack: the read mark and her own message, in either order (two sockets).
    assert sorted(str(f.get("event")) for f in frames) == ["None", "read"], frames


@pytest.mark.parametrize("events", ["typing,nonsense", "x" * 600])
async def test_an_unknown_event_refuses_the_handshake(
    api: httpx.AsyncClient, pair: tuple[dict[str, Any], dict[str, Any], str], events: str
) -> None:
    alice, _, _ = pair
    url = ws_url(api, alice["tokens"]["access_token"]) + f"&events={events}"
    with pytest.raises(InvalidStatus) as refused:
        async with plain_connect(url):
            pass
    assert refused.value.response.status_code == 403
