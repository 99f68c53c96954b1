"""Sending and marking read over REST: the same use cases, and the same effects, as the socket."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import pytest

from gochat_py.devstack.services import RedisServer
from gochat_py.settings import load_settings
from tests.harness import (
    bearer,
    connect,
    create_direct,
    is_message,
    next_frame,
    poll_until,
    register,
    serve_app,
    server_environment,
    ws_url,
)


def messages_url(conversation_id: str) -> str:
    return f"/api/v1/conversations/{conversation_id}/messages"


async def test_a_message_sent_over_rest_is_delivered_live_and_in_history(
    api: httpx.AsyncClient, pair: tuple[dict[str, Any], dict[str, Any], str]
) -> None:
    alice, bob, conversation_id = pair
    async with connect(ws_url(api, bob["tokens"]["access_token"])) as bob_ws:
        response = await api.post(
            messages_url(conversation_id),
            json={"content": "over REST", "client_msg_id": "r-1"},
            headers=bearer(alice["tokens"]),
        )
        assert response.status_code == 201, response.text
        live = await next_frame(bob_ws, is_message)
    sent = response.json()
    assert live == sent
    assert sent["content"] == "over REST" and sent["seq"] == 1
    assert sent["sender_id"] == alice["user"]["id"]
    assert sent["sender_username"] == alice["user"]["username"]
    assert sent["client_msg_id"] == "r-1"
    history = await api.get(messages_url(conversation_id), headers=bearer(bob["tokens"]))
    assert history.json()["messages"] == [sent]


async def test_a_rest_resend_with_the_same_client_msg_id_is_the_same_message(
    api: httpx.AsyncClient, pair: tuple[dict[str, Any], dict[str, Any], str]
) -> None:
    alice, _, conversation_id = pair
    body = {"content": "once", "client_msg_id": "same"}
    first = await api.post(
        messages_url(conversation_id), json=body, headers=bearer(alice["tokens"])
    )
    again = await api.post(
        messages_url(conversation_id), json=body, headers=bearer(alice["tokens"])
    )
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json() == again.json()
    history = await api.get(messages_url(conversation_id), headers=bearer(alice["tokens"]))
    assert [m["id"] for m in history.json()["messages"]] == [first.json()["id"]]


async def test_a_stranger_cannot_send_over_rest_and_learns_nothing(
    api: httpx.AsyncClient, pair: tuple[dict[str, Any], dict[str, Any], str]
) -> None:
    alice, _, conversation_id = pair
    mallory = await register(api)
    stranger = await api.post(
        messages_url(conversation_id), json={"content": "hi"}, headers=bearer(mallory["tokens"])
    )
    unknown = await api.post(
        messages_url(str(uuid.uuid4())), json={"content": "hi"}, headers=bearer(mallory["tokens"])
    )
    assert stranger.status_code == unknown.status_code == 404
    assert stranger.json() == unknown.json()
    assert stranger.json()["error"]["code"] == "conversation_not_found"
    history = await api.get(messages_url(conversation_id), headers=bearer(alice["tokens"]))
    assert history.json()["messages"] == []


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"content": "   "}, 422, "empty_content"),
        ({"content": ""}, 422, "empty_content"),
        ({"content": "x" * 4001}, 422, "validation_failed"),
        ({"content": 5}, 422, "validation_failed"),
        # PostgreSQL's text cannot hold U+0000: acked, it could never be stored.
        ({"content": "nul \u0000 byte"}, 422, "validation_failed"),
        ({}, 422, "validation_failed"),
        ({"content": "ok", "client_msg_id": "k" * 65}, 422, "validation_failed"),
        ([], 422, "validation_failed"),
        ("{not json", 400, "malformed_json"),
    ],
)
async def test_a_bad_rest_send_is_refused_with_its_reason_and_sends_nothing(
    api: httpx.AsyncClient,
    pair: tuple[dict[str, Any], dict[str, Any], str],
    body: Any,
    status: int,
    code: str,
) -> None:
    alice, _, conversation_id = pair
    raw = body if isinstance(body, str) else json.dumps(body)
    response = await api.post(
        messages_url(conversation_id),
        content=raw,
        headers={**bearer(alice["tokens"]), "Content-Type": "application/json"},
    )
    assert (response.status_code, response.json()["error"]["code"]) == (status, code)
    history = await api.get(messages_url(conversation_id), headers=bearer(alice["tokens"]))
    assert history.json()["messages"] == []


async def test_a_rest_send_without_a_token_is_refused(
    api: httpx.AsyncClient, pair: tuple[dict[str, Any], dict[str, Any], str]
) -> None:
    _, _, conversation_id = pair
    api.cookies.clear()  # registering left session cookies in the client: send none
    response = await api.post(messages_url(conversation_id), json={"content": "hi"})
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "missing_token"


async def test_a_read_mark_over_rest_is_announced_like_one_over_the_socket(
    api: httpx.AsyncClient, pair: tuple[dict[str, Any], dict[str, Any], str]
) -> None:
    alice, bob, conversation_id = pair
    for i in range(2):
        await api.post(
            messages_url(conversation_id),
            json={"content": f"m{i}"},
            headers=bearer(alice["tokens"]),
        )
    async with (
        connect(ws_url(api, alice["tokens"]["access_token"])) as alice_ws,
        connect(ws_url(api, bob["tokens"]["access_token"])) as bob_other_device,
    ):
        response = await api.post(
            f"/api/v1/conversations/{conversation_id}/read",
            json={"seq": 2},
            headers=bearer(bob["tokens"]),
        )
        assert response.json() == {"conversation_id": conversation_id, "last_read_seq": 2}
        expected = {"event": "read", "conversation_id": conversation_id,
                    "user_id": bob["user"]["id"], "seq": 2}  # fmt: skip
        assert await next_frame(alice_ws, lambda f: f.get("event") == "read") == expected
        assert await next_frame(bob_other_device, lambda f: f.get("event") == "read") == expected


async def test_a_stranger_cannot_mark_read_over_rest(
    api: httpx.AsyncClient, pair: tuple[dict[str, Any], dict[str, Any], str]
) -> None:
    _, _, conversation_id = pair
    mallory = await register(api)
    response = await api.post(
        f"/api/v1/conversations/{conversation_id}/read",
        json={"seq": 1},
        headers=bearer(mallory["tokens"]),
    )
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "conversation_not_found"


async def test_a_rest_send_while_redis_is_down_is_a_503_and_a_resend_later_delivers_once(
    database_url: str, own_redis: RedisServer
) -> None:
    settings = load_settings(server_environment(database_url, own_redis.url))
    async with serve_app(settings) as base_url, httpx.AsyncClient(base_url=base_url) as api:
        alice, bob = await register(api), await register(api)
        conversation = await create_direct(api, alice["tokens"], bob["user"]["id"])
        url = messages_url(conversation["id"])
        body = {"content": "through an outage", "client_msg_id": "o-1"}
        own_redis.stop()
        try:
            down = await api.post(url, json=body, headers=bearer(alice["tokens"]))
        finally:
            own_redis.start()
        assert down.status_code == 503
        assert down.json()["error"]["code"] == "unavailable"
        assert down.headers["retry-after"] == "1"

        async def resent() -> httpx.Response | None:
            response = await api.post(url, json=body, headers=bearer(alice["tokens"]))
            return response if response.status_code in (200, 201) else None

        first = await poll_until(resent, what="the send to succeed once Redis is back")
        again = await api.post(url, json=body, headers=bearer(alice["tokens"]))
        history = await api.get(url, headers=bearer(alice["tokens"]))
    assert (first.status_code, again.status_code) == (201, 200)
    assert [m["id"] for m in history.json()["messages"]] == [first.json()["id"]]
