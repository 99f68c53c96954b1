"""Broadcasts, over REST and as a socket frame, against a real server, PostgreSQL and Redis:
one ordinary message in the sender's direct conversation with each recipient, created when
missing; refusals skipped with their reason; idempotent by `client_broadcast_id`; rate
limited; the sends batched into a few Redis round trips."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest
from redis.asyncio import Redis
from websockets.asyncio.client import ClientConnection

from gochat_py.broadcasts import MAX_CLIENT_BROADCAST_ID, client_msg_id
from gochat_py.ids import uuid7
from gochat_py.redis import keys
from gochat_py.settings import load_settings
from tests.harness import (
    bearer,
    connect,
    create_direct,
    error_code,
    is_message,
    next_frame,
    plain_connect,
    poll_until,
    redis_commands_during,
    register,
    send_frame,
    serve_app,
    server_environment,
    ws_url,
)
from tests.message_requests import history
from tests.relationships import API, ask, block, decide
from tests.stream_traffic import running_consumer, stored_ids

BROADCASTS = f"{API}/broadcasts"
QUIET = 0.5  # seconds a socket must stay silent to show nothing more was delivered


def user_id(user: dict[str, Any]) -> str:
    return str(user["user"]["id"])


async def insert_users(db: asyncpg.Connection, count: int) -> list[str]:
    """`count` accounts made straight in SQL: registering them would meet the register
    rate limit, and they never log in."""
    ids = [uuid7() for _ in range(count)]
    await db.execute(
        "INSERT INTO users (id, email, username, password_hash)"
        " SELECT id, 'b' || replace(id::text, '-', '') || '@example.com',"
        " 'b_' || substr(replace(id::text, '-', ''), 3), 'x' FROM unnest($1::uuid[]) AS id",
        ids,
    )
    return [str(i) for i in ids]


async def post_broadcast(
    api: httpx.AsyncClient,
    sender: dict[str, Any],
    recipient_ids: list[str],
    content: str = "hello all",
    broadcast_id: str | None = None,
) -> httpx.Response:
    return await api.post(
        BROADCASTS,
        json={
            "recipient_ids": recipient_ids,
            "content": content,
            "client_broadcast_id": broadcast_id or uuid.uuid4().hex,
        },
        headers=bearer(sender["tokens"]),
    )


async def stream_length(redis: Redis) -> int:
    """Entries in the message stream: each message sent is one, whoever it went to."""
    return int(await redis.xlen(keys.stream(0)))


async def assert_no_message(socket: ClientConnection) -> None:
    with pytest.raises(TimeoutError):
        await next_frame(socket, is_message, timeout=QUIET)


async def test_a_broadcast_to_500_recipients_sends_497_and_skips_the_3_who_blocked_the_sender(
    api: httpx.AsyncClient,
    db: asyncpg.Connection,
    redis: Redis,
    redis_url: str,
    database_url: str,
) -> None:
    sender = await register(api)
    blockers = [await register(api) for _ in range(3)]
    for blocker in blockers:
        assert (await block(api, blocker, sender)).status_code == 201
    watched = [await register(api) for _ in range(4)]
    # Two of those watched already talk with the sender; the rest get a new conversation.
    existing = {
        user_id(w): (await create_direct(api, sender["tokens"], user_id(w)))["id"]
        for w in watched[:2]
    }
    others = await insert_users(db, 493)
    recipients = [user_id(b) for b in blockers] + [user_id(w) for w in watched] + others
    recipients = recipients[3:250] + recipients[:3] + recipients[250:]  # blockers in between
    assert len(recipients) == 500
    async with (
        connect(ws_url(api, watched[0]["tokens"]["access_token"])) as rich,
        plain_connect(ws_url(api, watched[1]["tokens"]["access_token"])) as plain,
        connect(ws_url(api, watched[2]["tokens"]["access_token"])) as fresh,
        plain_connect(ws_url(api, watched[3]["tokens"]["access_token"])) as fresh_plain,
    ):
        response = await post_broadcast(api, sender, recipients, "news for all", "launch")
        assert response.status_code == 201, response.text
        body = response.json()
        results = body["results"]
        assert (body["client_broadcast_id"], body["duplicate"]) == ("launch", False)
        assert [r["recipient_id"] for r in results] == recipients
        skipped = [r for r in results if r["status"] == "skipped"]
        assert skipped == [
            {"status": "skipped", "recipient_id": user_id(b), "reason": "blocked"} for b in blockers
        ]
        sent = {r["recipient_id"]: r for r in results if r["status"] == "sent"}
        assert len(sent) == 497
        assert len({r["conversation_id"] for r in sent.values()}) == 497
        assert len({r["message_id"] for r in sent.values()}) == 497
        for watched_user, conversation_id in existing.items():
            assert sent[watched_user]["conversation_id"] == conversation_id
        assert all(r["seq"] == 1 for r in sent.values())

        # Each device of a recipient gets its own message, once, and nothing else.
        for socket, person in zip((rich, plain, fresh, fresh_plain), watched, strict=True):
            frame = await next_frame(socket, is_message)
            mine = sent[user_id(person)]
            assert frame["id"] == mine["message_id"]
            assert frame["conversation_id"] == mine["conversation_id"]
            assert (frame["content"], frame["seq"]) == ("news for all", mine["seq"])
            assert frame["sender_id"] == user_id(sender)
            assert frame["client_msg_id"] == client_msg_id("launch")
        for socket in (rich, plain, fresh, fresh_plain):
            await assert_no_message(socket)

        # Each message is one entry of the log: in history at once, never twice.
        assert await stream_length(redis) == 497
        for person in watched:
            [message] = await history(api, person, sent[user_id(person)]["conversation_id"])
            assert message["id"] == sent[user_id(person)]["message_id"]

        # The missing conversations were created: direct, with the sender and the recipient.
        pairs = await db.fetch(
            "SELECT c.id, array_agg(m.user_id ORDER BY m.role) AS members FROM conversations c"
            " JOIN conversation_members m ON m.conversation_id = c.id"
            " WHERE c.kind = 'direct' GROUP BY c.id"
        )
        assert len(pairs) == 497
        for row in pairs:
            owner, member = (str(u) for u in row["members"])
            recipient = member if owner == user_id(sender) else owner
            assert sent[recipient]["conversation_id"] == str(row["id"])

        # A repeat answers with the first call's result and sends nothing.
        again = await post_broadcast(api, sender, recipients, "news for all", "launch")
        assert again.status_code == 200, again.text
        assert again.json() == {**body, "duplicate": True}
        assert await stream_length(redis) == 497
        await assert_no_message(rich)

    # The worker stores each message once, as any other.
    async with running_consumer(redis_url, database_url, batch_size=1000):

        async def all_stored() -> list[uuid.UUID]:
            ids = await stored_ids(db)
            return ids if len(ids) >= 497 else []

        stored = await poll_until(all_stored, timeout=30, what="497 messages in PostgreSQL")
    assert sorted(map(str, stored)) == sorted(r["message_id"] for r in sent.values())


async def test_a_recipient_on_another_server_gets_the_message_live(
    two_servers: tuple[httpx.AsyncClient, httpx.AsyncClient],
) -> None:
    one, two = two_servers
    sender, known, new = await register(one), await register(one), await register(one)
    direct = await create_direct(one, sender["tokens"], user_id(known))
    async with (
        connect(ws_url(two, known["tokens"]["access_token"])) as knowns,
        connect(ws_url(two, new["tokens"]["access_token"])) as news,
        connect(ws_url(two, sender["tokens"]["access_token"])) as senders,
    ):
        response = await post_broadcast(one, sender, [user_id(known), user_id(new)], "far")
        assert response.status_code == 201, response.text
        sent = response.json()["results"]
        frame = await next_frame(knowns, is_message)
        assert (frame["id"], frame["conversation_id"]) == (sent[0]["message_id"], direct["id"])
        # The conversation the broadcast created reaches the other server before its first
        # message does: the recipient there gets that message live.
        first = await next_frame(news, is_message)
        assert (first["id"], first["conversation_id"]) == (
            sent[1]["message_id"],
            sent[1]["conversation_id"],
        )
        # The sender's other device, on the other server, sees both copies.
        copies = {(await next_frame(senders, is_message))["id"] for _ in range(2)}
        assert copies == {sent[0]["message_id"], sent[1]["message_id"]}
    [message] = await history(two, new, sent[1]["conversation_id"])
    assert message["id"] == sent[1]["message_id"]


async def test_the_senders_socket_gets_all_of_a_broadcast_to_1000_and_stays_open(
    api: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    sender = await register(api)
    recipients = await insert_users(db, 1000)
    async with connect(ws_url(api, sender["tokens"]["access_token"])) as socket:
        await send_frame(
            socket,
            event="broadcast",
            recipient_ids=recipients,
            content="to all",
            client_broadcast_id="k",
        )
        # The copies and the result, in whichever order they come.
        copies, results = set(), []
        while len(copies) < 1000 or not results:
            frame = await next_frame(socket)
            if is_message(frame):
                copies.add(frame["id"])
            else:
                assert frame["event"] == "broadcast_result", frame
                results.append(frame)
        assert copies == {r["message_id"] for r in results[0]["results"]}
        await send_frame(socket, event="ping")
        assert (await next_frame(socket))["event"] == "pong"


async def test_the_sends_share_pipelined_redis_round_trips(
    api: httpx.AsyncClient, db: asyncpg.Connection, redis: Redis, redis_url: str
) -> None:
    sender = await register(api)
    recipients = await insert_users(db, 300)
    warm = await post_broadcast(api, sender, recipients[:1], "load the script")
    assert warm.status_code == 201, warm.text

    async def broadcast() -> None:
        response = await post_broadcast(api, sender, recipients, "counted")
        assert response.status_code == 201, response.text

    # What the broadcast asked of Redis: the session check, a claim, the rate limit, a
    # counter for each new conversation, one send script per recipient, the new
    # conversations announced, the result stored. Nothing asks PostgreSQL for a floor.
    commands = await redis_commands_during(redis, redis_url, broadcast)
    from_clients = [c["command"].split()[0].upper() for c in commands if c["client_type"] != "lua"]
    assert from_clients.count("EVALSHA") == 1 + 300
    new = 299  # the first recipient's conversation was made by the warm-up
    assert from_clients.count("PUBLISH") == new
    assert from_clients.count("SET") == 1 + new + 1
    assert len(from_clients) == 1 + 1 + 1 + new + 300 + new + 1, from_clients

    # Batched: Redis reads the 300 sends in a handful of reads, not one read per send.
    before = (await redis.info("stats"))["total_reads_processed"]
    await broadcast()
    reads = (await redis.info("stats"))["total_reads_processed"] - before
    assert reads < 60, f"{reads} reads for a broadcast to 300"


async def test_recipients_who_take_messages_from_contacts_only_are_skipped_unless_contacts(
    api: httpx.AsyncClient, db: asyncpg.Connection, redis: Redis
) -> None:
    sender, friend, picky, open_ = [await register(api) for _ in range(4)]
    request = (await ask(api, sender, friend)).json()
    assert (await decide(api, friend, request["id"], "accept")).status_code == 200
    for user in (friend, picky):
        changed = await api.patch(
            f"{API}/users/me", json={"dm_policy": "contacts"}, headers=bearer(user["tokens"])
        )
        assert changed.status_code == 200, changed.text
    unknown = str(uuid7())
    recipients = [user_id(picky), user_id(friend), unknown, user_id(sender), user_id(open_)]
    response = await post_broadcast(api, sender, recipients)
    assert response.status_code == 201, response.text
    assert [(r["status"], r.get("reason")) for r in response.json()["results"]] == [
        ("skipped", "not_a_contact"),
        ("sent", None),
        ("skipped", "unknown_user"),
        ("skipped", "self"),
        ("sent", None),
    ]
    assert await stream_length(redis) == 2
    # No conversation was opened with whom the sender may not write to.
    assert await db.fetchval("SELECT count(*) FROM conversations") == 2


async def test_a_block_made_after_a_broadcast_skips_the_recipient_of_the_next_one(
    api: httpx.AsyncClient, redis: Redis
) -> None:
    sender, other = await register(api), await register(api)
    first = await post_broadcast(api, sender, [user_id(other)], "before")
    assert first.json()["results"][0]["status"] == "sent"
    # The sender blocks (either side's block refuses both), with the conversation's roster
    # cached by the first broadcast.
    assert (await block(api, sender, other)).status_code == 201
    second = await post_broadcast(api, sender, [user_id(other)], "after")
    assert second.status_code == 201, second.text
    assert second.json()["results"] == [
        {"status": "skipped", "recipient_id": user_id(other), "reason": "blocked"}
    ]
    assert await stream_length(redis) == 1


async def test_a_retry_after_a_crash_midway_sends_only_the_messages_not_yet_sent(
    api: httpx.AsyncClient, db: asyncpg.Connection, redis: Redis
) -> None:
    sender = await register(api)
    recipients = await insert_users(db, 5)
    # What a crash leaves: the first two messages sent, under the broadcast's client_msg_id,
    # and the claim still held by the dead call.
    done = []
    for recipient in recipients[:2]:
        conversation = await create_direct(api, sender["tokens"], recipient)
        sent = await api.post(
            f"{API}/conversations/{conversation['id']}/messages",
            json={"content": "hi", "client_msg_id": client_msg_id("crashed")},
            headers=bearer(sender["tokens"]),
        )
        assert sent.status_code == 201, sent.text
        done.append(sent.json())
    claim = keys.broadcast(uuid.UUID(user_id(sender)), "crashed")
    await redis.set(claim, b"claimed:dead-process", px=30_000)

    busy = await post_broadcast(api, sender, recipients, "hi", "crashed")
    assert (busy.status_code, error_code(busy)) == (409, "broadcast_in_progress")
    assert busy.headers["Retry-After"] == "1"

    await redis.delete(claim)  # the dead call's claim lapses
    retried = await post_broadcast(api, sender, recipients, "hi", "crashed")
    assert retried.status_code == 201, retried.text
    results = retried.json()["results"]
    assert [r["message_id"] for r in results[:2]] == [m["id"] for m in done]
    assert all(r["status"] == "sent" for r in results)
    assert await stream_length(redis) == 5


async def test_two_concurrent_calls_with_one_id_send_once(
    api: httpx.AsyncClient, db: asyncpg.Connection, redis: Redis
) -> None:
    sender = await register(api)
    recipients = await insert_users(db, 200)
    first, second = await asyncio.gather(
        post_broadcast(api, sender, recipients, "once", "same"),
        post_broadcast(api, sender, recipients, "once", "same"),
    )
    statuses = sorted((first.status_code, second.status_code))
    assert statuses in ([200, 201], [201, 409]), (first.text, second.text)
    assert await stream_length(redis) == 200


async def test_past_three_broadcasts_a_minute_the_fourth_gets_429_but_repeats_are_answered(
    api: httpx.AsyncClient, redis: Redis
) -> None:
    sender, other = await register(api), await register(api)
    for n in range(3):
        response = await post_broadcast(api, sender, [user_id(other)], f"n{n}", f"id-{n}")
        assert response.status_code == 201, response.text
    refused = await post_broadcast(api, sender, [user_id(other)], "one more", "id-3")
    assert (refused.status_code, error_code(refused)) == (429, "rate_limited")
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert await stream_length(redis) == 3
    repeat = await post_broadcast(api, sender, [user_id(other)], "n0", "id-0")
    assert repeat.status_code == 200, repeat.text
    # The refused call claimed nothing: the same id goes through once the window allows.
    assert await redis.exists(keys.broadcast(uuid.UUID(user_id(sender)), "id-3")) == 0


@pytest.fixture
async def generous_api(database_url: str, redis_url: str) -> AsyncIterator[httpx.AsyncClient]:
    settings = load_settings(server_environment(database_url, redis_url, BROADCAST_RATE="2/1h"))
    async with serve_app(settings) as url, httpx.AsyncClient(base_url=url) as client:
        yield client


async def test_broadcast_rate_sets_the_count_and_window(generous_api: httpx.AsyncClient) -> None:
    sender, other = await register(generous_api), await register(generous_api)
    for _ in range(2):
        assert (await post_broadcast(generous_api, sender, [user_id(other)])).status_code == 201
    refused = await post_broadcast(generous_api, sender, [user_id(other)])
    assert refused.status_code == 429
    assert 3000 < int(refused.headers["Retry-After"]) <= 3600


@pytest.mark.parametrize(
    ("body", "code", "field"),
    [
        ({"recipient_ids": []}, "validation_failed", "recipient_ids"),
        ({"recipient_ids": "many"}, "validation_failed", "recipient_ids"),
        ({"recipient_ids": ["not-a-uuid"]}, "validation_failed", "recipient_ids[0]"),
        ({"content": ""}, "validation_failed", "content"),
        ({"content": "   "}, "empty_content", "content"),
        ({"content": "x" * 4001}, "validation_failed", "content"),
        ({"content": "a\u0000b"}, "validation_failed", "content"),
        ({"client_broadcast_id": ""}, "validation_failed", "client_broadcast_id"),
        (
            {"client_broadcast_id": "x" * (MAX_CLIENT_BROADCAST_ID + 1)},
            "validation_failed",
            "client_broadcast_id",
        ),
        ({"client_broadcast_id": None}, "validation_failed", "client_broadcast_id"),
    ],
)
async def test_a_bad_request_gets_a_422_naming_the_field_and_sends_nothing(
    api: httpx.AsyncClient, redis: Redis, body: dict[str, Any], code: str, field: str
) -> None:
    sender, other = await register(api), await register(api)
    request = {
        "recipient_ids": [user_id(other)],
        "content": "hi",
        "client_broadcast_id": "b",
        **body,
    }
    response = await api.post(BROADCASTS, json=request, headers=bearer(sender["tokens"]))
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert (error["code"], error.get("field")) == (code, field)
    assert await stream_length(redis) == 0


async def test_a_recipient_named_twice_or_more_than_1000_recipients_get_422(
    api: httpx.AsyncClient, redis: Redis
) -> None:
    sender, other = await register(api), await register(api)
    twice = await post_broadcast(api, sender, [user_id(other), user_id(other)])
    assert twice.status_code == 422, twice.text
    assert twice.json()["error"]["code"] == "duplicate_recipients"
    too_many = await post_broadcast(api, sender, [str(uuid7()) for _ in range(1001)])
    assert too_many.status_code == 422, too_many.text
    assert too_many.json()["error"]["field"] == "recipient_ids"
    exactly = await post_broadcast(
        api, sender, [str(uuid7()) for _ in range(999)] + [user_id(other)]
    )
    assert exactly.status_code == 201, exactly.text
    assert await stream_length(redis) == 1


async def test_a_broadcast_without_a_token_gets_401(api: httpx.AsyncClient) -> None:
    other = await register(api)
    api.cookies.clear()  # the session cookies register set
    response = await api.post(
        BROADCASTS,
        json={"recipient_ids": [user_id(other)], "content": "hi", "client_broadcast_id": "b"},
    )
    assert response.status_code == 401, response.text


async def broadcast_frame(socket: ClientConnection, **frame: Any) -> dict[str, Any]:
    await send_frame(socket, event="broadcast", **frame)
    return await next_frame(socket, lambda f: f.get("event") in ("broadcast_result", "error"))


async def test_the_broadcast_frame_is_answered_with_a_broadcast_result(
    api: httpx.AsyncClient, db: asyncpg.Connection, redis: Redis
) -> None:
    sender, blocker, friend = await register(api), await register(api), await register(api)
    assert (await block(api, blocker, sender)).status_code == 201
    others = await insert_users(db, 3)
    recipients = [user_id(friend), user_id(blocker), *others]
    async with (
        plain_connect(ws_url(api, sender["tokens"]["access_token"])) as socket,
        connect(ws_url(api, friend["tokens"]["access_token"])) as friends,
    ):
        frame: dict[str, Any] = {
            "recipient_ids": recipients,
            "content": "by socket",
            "client_broadcast_id": "ws-1",
        }
        result = await broadcast_frame(socket, **frame)
        assert (result["client_broadcast_id"], result["duplicate"]) == ("ws-1", False)
        assert [r["status"] for r in result["results"]] == ["sent", "skipped"] + ["sent"] * 3
        assert result["results"][1]["reason"] == "blocked"
        message = await next_frame(friends, is_message)
        assert message["id"] == result["results"][0]["message_id"]
        # The same over REST, or again on the socket: the first result, nothing sent.
        repeat = await post_broadcast(api, sender, recipients, "by socket", "ws-1")
        first = {k: v for k, v in result.items() if k != "event"}
        assert repeat.json() == {**first, "duplicate": True}
        assert (await broadcast_frame(socket, **frame))["duplicate"] is True
        assert await stream_length(redis) == 4
        await assert_no_message(friends)


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ({"recipient_ids": [], "content": "x", "client_broadcast_id": "g"}, "invalid_field"),
        ({"recipient_ids": "all", "content": "x", "client_broadcast_id": "g"}, "invalid_field"),
        ({"recipient_ids": [1, 2], "content": "x", "client_broadcast_id": "g"}, "invalid_field"),
        ({"content": "x", "client_broadcast_id": "g"}, "missing_field"),
        ({"recipient_ids": ["R"], "content": "", "client_broadcast_id": "g"}, "empty_content"),
        ({"recipient_ids": ["R"], "content": " ", "client_broadcast_id": "g"}, "empty_content"),
        (
            {"recipient_ids": ["R"], "content": "x" * 4001, "client_broadcast_id": "g"},
            "content_too_long",
        ),
        ({"recipient_ids": ["R"], "content": "x", "client_broadcast_id": 7}, "invalid_field"),
        ({"recipient_ids": ["R"], "content": "x"}, "missing_field"),
        (
            {"recipient_ids": ["R", "R"], "content": "x", "client_broadcast_id": "g"},
            "duplicate_recipients",
        ),
        (
            {"recipient_ids": ["R"], "content": {"nested": [[[]]]}, "client_broadcast_id": "g"},
            "invalid_field",
        ),
    ],
)
async def test_a_bad_broadcast_frame_gets_an_error_frame_and_the_socket_stays_open(
    api: httpx.AsyncClient, redis: Redis, frame: dict[str, Any], code: str
) -> None:
    sender, other = await register(api), await register(api)
    if "recipient_ids" in frame and isinstance(frame["recipient_ids"], list):
        frame = {
            **frame,
            "recipient_ids": [user_id(other) if r == "R" else r for r in frame["recipient_ids"]],
        }
    async with connect(ws_url(api, sender["tokens"]["access_token"])) as socket:
        error = await broadcast_frame(socket, **frame)
        assert (error["event"], error["code"]) == ("error", code), error
        expected_ref = frame.get("client_broadcast_id")
        assert error["ref"] == (expected_ref if isinstance(expected_ref, str) else None)
        await send_frame(socket, event="ping")
        assert (await next_frame(socket))["event"] == "pong"
    assert await stream_length(redis) == 0


async def test_a_broadcast_frame_past_the_rate_gets_a_rate_limited_error_frame(
    api: httpx.AsyncClient,
) -> None:
    sender, other = await register(api), await register(api)
    async with connect(ws_url(api, sender["tokens"]["access_token"])) as socket:
        for n in range(3):
            result = await broadcast_frame(
                socket, recipient_ids=[user_id(other)], content="x", client_broadcast_id=f"r{n}"
            )
            assert result["event"] == "broadcast_result", result
        error = await broadcast_frame(
            socket, recipient_ids=[user_id(other)], content="x", client_broadcast_id="r3"
        )
        assert (error["code"], error["ref"]) == ("rate_limited", "r3")
        assert 0 < error["retry_after"] <= 60


async def test_garbage_in_a_broadcast_frame_is_refused_and_the_socket_lives_on(
    api: httpx.AsyncClient,
) -> None:
    sender = await register(api)
    async with connect(ws_url(api, sender["tokens"]["access_token"])) as socket:
        for garbage in (
            '{"event": "broadcast"',
            '{"event": "broadcast", "recipient_ids": null}',
            '["broadcast"]',
            '{"event": "broadcast", "client_broadcast_id": {"a": 1}}',
            json.dumps({"event": "broadcast", "recipient_ids": [[]] * 2000}),
        ):
            await socket.send(garbage)
            error = await next_frame(socket)
            assert error["event"] == "error", (garbage, error)
        await send_frame(socket, event="ping")
        assert (await next_frame(socket))["event"] == "pong"
