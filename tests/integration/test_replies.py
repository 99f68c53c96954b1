"""Replies: `reply_to` on a send, over REST and the socket; the quote travels live, in
history (from the recent cache and from PostgreSQL) and in a resume; an id that is not a
message of the conversation is refused before anything is published, and tells nothing."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import httpx
from redis.asyncio import Redis

from gochat_py.redis import keys
from gochat_py.settings import Settings
from tests.harness import (
    bearer,
    connect,
    create_group,
    is_message,
    next_frame,
    poll_until,
    register,
    send_frame,
    ws_url,
)
from tests.message_requests import history, messages_url, post_message, send
from tests.stream_traffic import running_consumer

Pair = tuple[dict[str, Any], dict[str, Any], str]


async def stream_length(redis: Redis, settings: Settings) -> int:
    return sum([int(await redis.xlen(keys.stream(p))) for p in range(settings.stream_partitions)])


def quote_of(message: dict[str, Any], content: str | None = None) -> dict[str, Any]:
    return {
        "id": message["id"],
        "sender_id": message["sender_id"],
        "sender_username": message["sender_username"],
        "content": message["content"] if content is None else content,
        "deleted": False,
    }


async def test_a_reply_carries_its_quote_live_in_a_resume_and_in_history_cached_and_stored(
    api: httpx.AsyncClient, pair: Pair, settings: Settings, redis: Redis, db: asyncpg.Connection
) -> None:
    alice, bob, conversation_id = pair
    long_text = "é" * 100 + "x" * 100  # the quote keeps the first 140 characters
    original = await send(api, alice, conversation_id, long_text)
    async with connect(ws_url(api, alice["tokens"]["access_token"])) as alice_ws:
        reply = await send(api, bob, conversation_id, "agreed", reply_to=original["id"])
        assert await next_frame(alice_ws, is_message) == reply
    assert reply["reply_to"] == quote_of(original, long_text[:140])
    assert "mentions" not in reply and "reply_to" not in original
    assert (await history(api, alice, conversation_id))[0] == reply  # from the recent cache
    resume_url = ws_url(api, alice["tokens"]["access_token"]) + "&resume=1"
    async with connect(resume_url) as resuming:
        await send_frame(resuming, event="resume", positions={conversation_id: 1})
        assert await next_frame(resuming) == reply
    later = await send(api, alice, conversation_id, "later")
    # The worker stores all three and trims the cache down to the newest: the reply is then
    # read from PostgreSQL.
    cache = keys.recent(uuid.UUID(conversation_id), settings.stream_partitions)
    async with running_consumer(
        settings.redis_url, settings.database_url, recent_tail=1, recent_trim_step=1
    ):

        async def trimmed() -> bool:
            return bool(await redis.zcard(cache) == 1)

        await poll_until(trimmed, what="the messages stored and the cache trimmed")
    reply_id = uuid.UUID(reply["id"])
    assert await db.fetchval("SELECT reply_to FROM messages WHERE id = $1", reply_id) is not None
    assert await history(api, alice, conversation_id) == [later, reply, original]


async def test_a_reply_over_the_socket_is_acknowledged_and_delivered_with_its_quote(
    api: httpx.AsyncClient, pair: Pair
) -> None:
    alice, bob, conversation_id = pair
    original = await send(api, alice, conversation_id, "lunch?")
    async with (
        connect(ws_url(api, alice["tokens"]["access_token"])) as alice_ws,
        connect(ws_url(api, bob["tokens"]["access_token"])) as bob_ws,
    ):
        frame = {
            "conversation_id": conversation_id,
            "content": "yes",
            "client_msg_id": "r1",
            "reply_to": original["id"],
        }
        await send_frame(bob_ws, **frame)
        ack = await next_frame(bob_ws, lambda f: f.get("event") == "ack")
        delivered = await next_frame(alice_ws, is_message)
        # A resend with the same client_msg_id is the first message, not a second one.
        await send_frame(bob_ws, **frame)
        again = await next_frame(bob_ws, lambda f: f.get("event") == "ack")
    assert delivered["id"] == ack["id"] and delivered["reply_to"] == quote_of(original)
    assert again["duplicate"] is True and again["id"] == ack["id"]
    assert [m["id"] for m in await history(api, bob, conversation_id)] == [
        ack["id"],
        original["id"],
    ]


async def test_a_reply_to_a_deleted_message_is_sent_and_its_quote_says_deleted(
    api: httpx.AsyncClient, pair: Pair
) -> None:
    alice, bob, conversation_id = pair
    original = await send(api, alice, conversation_id, "regrettable")
    deleted = await api.delete(
        messages_url(conversation_id, original["id"]), headers=bearer(alice["tokens"])
    )
    assert deleted.status_code == 204
    reply = await send(api, bob, conversation_id, "what did it say?", reply_to=original["id"])
    assert reply["reply_to"] == {**quote_of(original, ""), "deleted": True}


async def test_a_reply_to_an_edited_message_quotes_it_as_it_reads_now(
    api: httpx.AsyncClient, pair: Pair
) -> None:
    alice, bob, conversation_id = pair
    original = await send(api, alice, conversation_id, "helo")
    edited = await api.patch(
        messages_url(conversation_id, original["id"]),
        json={"content": "hello"},
        headers=bearer(alice["tokens"]),
    )
    assert edited.status_code == 200
    reply = await send(api, bob, conversation_id, "hi", reply_to=original["id"])
    assert reply["reply_to"]["content"] == "hello"


async def test_a_reply_to_what_is_not_a_message_of_the_conversation_is_refused_unpublished(
    api: httpx.AsyncClient, pair: Pair, settings: Settings, redis: Redis
) -> None:
    alice, bob, conversation_id = pair
    elsewhere = await create_group(api, alice["tokens"], "other", [bob["user"]["id"]])
    other = await send(api, alice, elsewhere["id"], "in the other one")
    before = await stream_length(redis, settings)
    answers = []
    for reply_to in [other["id"], str(uuid.uuid4()), "not-an-id", "", "x" * 5000]:
        response = await post_message(api, bob, conversation_id, content="re", reply_to=reply_to)
        assert response.status_code == 422, (reply_to, response.text)
        answers.append(response.json())
    # The same answer whatever the id was: another conversation's message is not told apart.
    assert all(answer == answers[0] for answer in answers)
    assert answers[0]["error"]["code"] == "reply_not_found"
    assert answers[0]["error"]["field"] == "reply_to"
    wrong_type = await post_message(api, bob, conversation_id, content="re", reply_to=5)
    assert wrong_type.status_code == 422
    async with connect(ws_url(api, bob["tokens"]["access_token"])) as bob_ws:
        await send_frame(
            bob_ws,
            conversation_id=conversation_id,
            content="re",
            client_msg_id="c1",
            reply_to=other["id"],
        )
        error = await next_frame(bob_ws, lambda f: f.get("event") == "error")
    assert (error["code"], error["ref"]) == ("reply_not_found", "c1")
    assert await stream_length(redis, settings) == before
    assert [m["content"] for m in await history(api, bob, conversation_id)] == []


async def test_a_stranger_cannot_read_another_conversations_message_through_a_reply(
    api: httpx.AsyncClient, pair: Pair, settings: Settings, redis: Redis
) -> None:
    alice, _, conversation_id = pair
    secret = await send(api, alice, conversation_id, "the secret")
    mallory, friend = await register(api), await register(api)
    own = await create_group(api, mallory["tokens"], "mine", [friend["user"]["id"]])
    before = await stream_length(redis, settings)
    # In her own conversation, naming the other one's message: as unknown as a random id.
    through_own = await post_message(api, mallory, own["id"], content="re", reply_to=secret["id"])
    unknown = await post_message(api, mallory, own["id"], content="re", reply_to=str(uuid.uuid4()))
    assert through_own.status_code == 422 and through_own.json() == unknown.json()
    # Into the conversation itself: not a member, nothing to see.
    into_it = await post_message(api, mallory, conversation_id, content="re", reply_to=secret["id"])
    assert into_it.status_code == 404
    for response in (through_own, into_it):
        assert "the secret" not in response.text and alice["user"]["id"] not in response.text
    assert await stream_length(redis, settings) == before
