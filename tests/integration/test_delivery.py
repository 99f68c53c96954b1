"""Delivery under stress: lost counters, membership changes across instances, slow
readers, and a Redis restart under live sockets."""

from __future__ import annotations

import asyncio
import json
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import asyncpg
import httpx
import pytest
from redis.asyncio import Redis
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosedError

from gochat_py.devstack.services import RedisServer
from gochat_py.redis import keys
from gochat_py.settings import load_settings
from tests.harness import (
    bearer,
    connect,
    create_direct,
    create_group,
    is_message,
    live_subscribers,
    next_frame,
    poll_until,
    redis_commands_during,
    register,
    serve_app,
    server_environment,
    ws_url,
)


async def say(socket: ClientConnection, conversation_id: str, content: str) -> dict[str, Any]:
    await socket.send(json.dumps({"conversation_id": conversation_id, "content": content}))
    return await next_frame(socket, lambda f: f.get("event") in ("ack", "error"))


async def test_a_lost_counter_continues_above_postgres_never_from_one(
    api: httpx.AsyncClient, db: asyncpg.Connection, redis: Redis
) -> None:
    alice, bob = await register(api), await register(api)
    conversation = await create_direct(api, alice["tokens"], bob["user"]["id"])
    async with connect(ws_url(api, alice["tokens"]["access_token"])) as ws:
        assert (await say(ws, conversation["id"], "one"))["seq"] == 1
        # What the worker would have written before Redis lost everything:
        await db.execute(
            "UPDATE conversations SET last_seq = 41 WHERE id = $1::uuid", conversation["id"]
        )
        await redis.flushall()
        assert (await say(ws, conversation["id"], "after the loss"))["seq"] == 42
        assert (await say(ws, conversation["id"], "next"))["seq"] == 43


async def test_a_missing_counter_is_reseeded_above_the_recent_cache(
    api: httpx.AsyncClient, redis: Redis
) -> None:
    alice, bob = await register(api), await register(api)
    conversation = await create_direct(api, alice["tokens"], bob["user"]["id"])
    async with connect(ws_url(api, alice["tokens"]["access_token"])) as ws:
        for i in range(3):
            await say(ws, conversation["id"], f"m{i}")
        await redis.delete(keys.sequence(uuid.UUID(conversation["id"]), 1))
        # PostgreSQL has nothing yet (no worker): the cache still knows seq 3.
        assert (await say(ws, conversation["id"], "m3"))["seq"] == 4


@pytest.fixture
async def group_of_two(
    api: httpx.AsyncClient,
) -> AsyncIterator[tuple[ClientConnection, ClientConnection, str, str]]:
    """Alice's socket, Bob's socket, their group's id and Bob's id."""
    alice, bob = await register(api), await register(api)
    group = await create_group(api, alice["tokens"], "g", [bob["user"]["id"]])
    async with (
        connect(ws_url(api, alice["tokens"]["access_token"])) as alice_ws,
        connect(ws_url(api, bob["tokens"]["access_token"])) as bob_ws,
    ):
        yield alice_ws, bob_ws, group["id"], bob["user"]["id"]


async def test_a_removed_member_is_refused_at_once_where_removed_and_within_a_second_elsewhere(
    two_servers: tuple[httpx.AsyncClient, httpx.AsyncClient],
) -> None:
    one, two = two_servers
    owner, bob = await register(one), await register(one)
    group = await create_group(one, owner["tokens"], "g", [bob["user"]["id"]])
    async with (
        connect(ws_url(one, bob["tokens"]["access_token"])) as bob_on_one,
        connect(ws_url(two, bob["tokens"]["access_token"])) as bob_on_two,
    ):
        for socket in (bob_on_one, bob_on_two):
            assert "seq" in await say(socket, group["id"], "cached membership now")
        removed = await two.delete(
            f"/api/v1/conversations/{group['id']}/members/{bob['user']['id']}",
            headers=bearer(owner["tokens"]),
        )
        assert removed.status_code == 204
        # The instance that served the removal forgot the member before it answered.
        reply = await say(bob_on_two, group["id"], "still in?")
        assert (reply["event"], reply.get("code")) == ("error", "conversation_not_found"), reply

        # Another instance hears it over pub/sub: a moment, bounded well under a second.
        async def refused_on_one() -> bool:
            reply = await say(bob_on_one, group["id"], "still in over there?")
            return reply.get("code") == "conversation_not_found"

        await poll_until(refused_on_one, timeout=1.0, what="the other instance to refuse")


async def test_a_sender_on_one_instance_reaches_a_reader_on_another(
    two_servers: tuple[httpx.AsyncClient, httpx.AsyncClient],
) -> None:
    one, two = two_servers
    alice, bob = await register(one), await register(one)
    conversation = await create_direct(one, alice["tokens"], bob["user"]["id"])
    async with (
        connect(ws_url(one, alice["tokens"]["access_token"])) as alice_ws,
        connect(ws_url(two, bob["tokens"]["access_token"])) as bob_ws,
        connect(ws_url(two, alice["tokens"]["access_token"])) as alice_other_device,
    ):
        await say(alice_ws, conversation["id"], "across instances")
        assert (await next_frame(bob_ws, is_message))["content"] == "across instances"
        assert (await next_frame(alice_other_device, is_message))["content"] == "across instances"


async def _add(api: httpx.AsyncClient, owner: dict[str, Any], group: str, user: str) -> None:
    response = await api.post(
        f"/api/v1/conversations/{group}/members",
        json={"user_ids": [user]},
        headers=bearer(owner["tokens"]),
    )
    assert response.status_code == 200, response.text


def _content(content: str) -> Callable[[dict[str, Any]], bool]:
    return lambda frame: is_message(frame) and frame["content"] == content


def _heard(
    sender: ClientConnection, reader: ClientConnection, conversation_id: str, content: str
) -> Callable[[], Awaitable[bool]]:
    """A probe for poll_until: one message sent, and whether `reader` got it."""

    async def probe() -> bool:
        await say(sender, conversation_id, content)
        try:
            await next_frame(reader, _content(content), timeout=0.5)
        except TimeoutError:
            return False
        return True

    return probe


async def test_a_member_added_while_connected_hears_the_next_message(
    two_servers: tuple[httpx.AsyncClient, httpx.AsyncClient],
) -> None:
    one, two = two_servers
    owner, bob, carol = await register(one), await register(one), await register(one)
    group = await create_group(one, owner["tokens"], "g", [bob["user"]["id"]])
    async with (
        connect(ws_url(one, owner["tokens"]["access_token"])) as owner_ws,
        connect(ws_url(one, carol["tokens"]["access_token"])) as carol_here,
        connect(ws_url(two, carol["tokens"]["access_token"])) as carol_there,
    ):
        await _add(one, owner, group["id"], carol["user"]["id"])
        # Added through the instance that sends: no wait, the very next message reaches her.
        await say(owner_ws, group["id"], "welcome")
        await next_frame(carol_here, _content("welcome"))

        # Her device on the other instance joins the conversation's channel when the
        # change reaches it; until then a message there can miss it (history has it).
        heard_there = _heard(owner_ws, carol_there, group["id"], "anyone there?")
        await poll_until(heard_there, timeout=5, what="the other instance to route the group")


async def test_a_new_conversation_reaches_members_who_were_already_connected(
    api: httpx.AsyncClient,
) -> None:
    alice, bob = await register(api), await register(api)
    async with (
        connect(ws_url(api, alice["tokens"]["access_token"])) as alice_ws,
        connect(ws_url(api, bob["tokens"]["access_token"])) as bob_ws,
    ):
        group = await create_group(api, alice["tokens"], "new", [bob["user"]["id"]])
        direct = await create_direct(api, bob["tokens"], alice["user"]["id"])
        await say(alice_ws, group["id"], "first in the group")
        await next_frame(bob_ws, _content("first in the group"))
        await say(bob_ws, direct["id"], "first in private")
        await next_frame(alice_ws, _content("first in private"))


async def test_the_first_message_of_a_new_conversation_reaches_a_member_on_another_instance(
    two_servers: tuple[httpx.AsyncClient, httpx.AsyncClient],
) -> None:
    one, two = two_servers
    alice, bob, carol = await register(one), await register(one), await register(one)
    async with (
        connect(ws_url(one, alice["tokens"]["access_token"])) as alice_ws,
        connect(ws_url(two, bob["tokens"]["access_token"])) as bob_ws,
        connect(ws_url(two, carol["tokens"]["access_token"])) as carol_ws,
    ):
        # Created on one, the first message sent at once: no poll, no second try.
        direct = await create_direct(one, alice["tokens"], bob["user"]["id"])
        await say(alice_ws, direct["id"], "first in private")
        await next_frame(bob_ws, _content("first in private"))
        group = await create_group(one, alice["tokens"], "g", [carol["user"]["id"]])
        await say(alice_ws, group["id"], "first in the group")
        await next_frame(carol_ws, _content("first in the group"))


async def test_a_removed_member_stops_receiving_on_every_instance(
    two_servers: tuple[httpx.AsyncClient, httpx.AsyncClient],
) -> None:
    one, two = two_servers
    owner, bob, carol = await register(one), await register(one), await register(one)
    group = await create_group(one, owner["tokens"], "g", [bob["user"]["id"], carol["user"]["id"]])
    async with (
        connect(ws_url(one, owner["tokens"]["access_token"])) as owner_ws,
        connect(ws_url(two, bob["tokens"]["access_token"])) as bob_ws,
        connect(ws_url(two, carol["tokens"]["access_token"])) as carol_ws,
    ):
        await say(owner_ws, group["id"], "all three")
        await next_frame(bob_ws, _content("all three"))
        removed = await one.delete(
            f"/api/v1/conversations/{group['id']}/members/{bob['user']['id']}",
            headers=bearer(owner["tokens"]),
        )
        assert removed.status_code == 204
        await say(owner_ws, group["id"], "without bob")
        # Carol shares bob's instance: once she has it, bob would have it too if it were his.
        await next_frame(carol_ws, _content("without bob"))
        with pytest.raises(TimeoutError):
            await next_frame(bob_ws, _content("without bob"), timeout=0.5)


async def test_a_lost_pubsub_connection_reloads_the_conversations_of_local_users(
    api: httpx.AsyncClient, redis: Redis, db: asyncpg.Connection
) -> None:
    alice, bob = await register(api), await register(api)
    async with (
        connect(ws_url(api, alice["tokens"]["access_token"])) as alice_ws,
        connect(ws_url(api, bob["tokens"]["access_token"])) as bob_ws,
    ):
        # A membership no announcement told anyone about, as if it came while the server
        # was cut off from pub/sub: only the reload after reconnecting can route it.
        group = uuid.uuid4()
        await db.execute(
            "INSERT INTO conversations (id, kind, name, created_by) VALUES ($1, 'group', 'g', $2)",
            group,
            uuid.UUID(alice["user"]["id"]),
        )
        await db.executemany(
            "INSERT INTO conversation_members (conversation_id, user_id) VALUES ($1, $2)",
            [(group, uuid.UUID(alice["user"]["id"])), (group, uuid.UUID(bob["user"]["id"]))],
        )
        await redis.client_kill_filter(_type="pubsub")

        heard = _heard(alice_ws, bob_ws, str(group), "after the reload")
        await poll_until(heard, timeout=10, what="the hub to reconnect and reload its routes")


async def test_sends_go_on_after_redis_forgets_its_scripts(
    redis: Redis, group_of_two: tuple[ClientConnection, ClientConnection, str, str]
) -> None:
    alice_ws, bob_ws, group_id, _ = group_of_two
    # seq 1 is the group's creation (a system message).
    assert (await say(alice_ws, group_id, "before"))["seq"] == 2
    await redis.script_flush()
    assert (await say(alice_ws, group_id, "after"))["seq"] == 3
    await next_frame(bob_ws, _content("after"))


async def test_garbage_on_the_live_channels_does_not_stop_delivery(
    redis: Redis, group_of_two: tuple[ClientConnection, ClientConnection, str, str]
) -> None:
    alice_ws, bob_ws, group_id, bob_id = group_of_two
    [channel] = await redis.pubsub_channels(f"*:conversation:{group_id}")
    for garbage in [b"", b"no header", b"\xff\xfe\n\xff", bob_id.encode() + b"\n\xff\xfe"]:
        await redis.publish(channel, garbage)
    for garbage in [b"", b"{", b'{"conversation_id": 7}', b"\xff"]:
        await redis.publish(keys.MEMBERSHIP_CHANNEL, garbage)
    await say(alice_ws, group_id, "still here")
    await next_frame(bob_ws, _content("still here"))


async def test_a_slow_reader_is_closed_with_1013_while_a_fast_one_gets_everything(
    database_url: str, redis_url: str
) -> None:
    env = server_environment(database_url, redis_url, WS_SEND_QUEUE="16")
    async with serve_app(load_settings(env)) as url, httpx.AsyncClient(base_url=url) as api:
        sender, fast, slow = [await register(api) for _ in range(3)]
        group = await create_group(
            api, sender["tokens"], "g", [fast["user"]["id"], slow["user"]["id"]]
        )
        total = 1500
        async with (
            connect(ws_url(api, sender["tokens"]["access_token"])) as sender_ws,
            connect(ws_url(api, fast["tokens"]["access_token"])) as fast_ws,
            connect(
                ws_url(api, slow["tokens"]["access_token"]), max_queue=1, close_timeout=1
            ) as slow_ws,
        ):
            # The slow client never reads; shrink its receive buffer so TCP fills quickly.
            raw = slow_ws.transport.get_extra_info("socket")
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            received: list[int] = []

            async def read_fast() -> None:
                while len(received) < total:
                    frame = await next_frame(fast_ws, is_message, timeout=30)
                    received.append(frame["seq"])

            async def drain_sender() -> None:
                async for _ in sender_ws:
                    pass

            async def slow_counted() -> bool:
                metrics = (await api.get("/metrics")).text
                return "gochat_ws_slow_consumers_total 1.0" in metrics

            async def read_slow_once_cut_off() -> None:
                # Once the server has given up on it, the slow client reads at full speed, so
                # the close frame queued behind its backlog reaches it within the server's
                # session.CLOSE_TIMEOUT (after which the server stops trying). A buffer raised
                # after the handshake keeps the small window until the clamp is raised too.
                await poll_until(slow_counted, timeout=20, what="the slow reader to be cut off")
                raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
                raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_WINDOW_CLAMP, 1 << 20)
                async for _ in slow_ws:
                    pass

            reader = asyncio.create_task(read_fast())
            drainer = asyncio.create_task(drain_sender())
            cut_off = asyncio.create_task(read_slow_once_cut_off())
            for i in range(total):
                await sender_ws.send(
                    json.dumps({"conversation_id": group["id"], "content": f"{i:04d}" + "x" * 3000})
                )
            await reader
            drainer.cancel()
            with pytest.raises(ConnectionClosedError):
                await cut_off
        assert (slow_ws.close_code, slow_ws.close_reason) == (1013, "send queue full")
        assert received == list(range(2, total + 2))  # after the group's creation


async def test_sockets_are_served_again_after_redis_restarts(
    database_url: str, own_redis: RedisServer
) -> None:
    settings = load_settings(server_environment(database_url, own_redis.url))
    async with serve_app(settings) as url, httpx.AsyncClient(base_url=url) as api:
        alice, bob = await register(api), await register(api)
        conversation = await create_direct(api, alice["tokens"], bob["user"]["id"])
        async with (
            connect(ws_url(api, alice["tokens"]["access_token"])) as alice_ws,
            connect(ws_url(api, bob["tokens"]["access_token"])) as bob_ws,
        ):
            assert (await say(alice_ws, conversation["id"], "before"))["seq"] == 1
            await next_frame(bob_ws, is_message)
            own_redis.stop()
            down = await say(alice_ws, conversation["id"], "while down")
            assert down["event"] == "error" and down["code"] == "unavailable"
            own_redis.start()

            async def delivered_again() -> bool:
                reply = await say(alice_ws, conversation["id"], "after")
                if reply.get("event") != "ack":
                    return False
                try:
                    frame = await next_frame(bob_ws, is_message, timeout=1)
                except TimeoutError:
                    return False  # published before the hub resubscribed: pub/sub does not keep it
                return bool(frame["content"] == "after")

            await poll_until(delivered_again, timeout=20, what="delivery after the Redis restart")
        # The counter survived in the AOF: no seq was handed out twice.
        history = await api.get(
            f"/api/v1/conversations/{conversation['id']}/messages", headers=bearer(bob["tokens"])
        )
        seqs = [m["seq"] for m in history.json()["messages"]]
        assert len(seqs) == len(set(seqs)) and seqs[-1] == 1


async def test_each_message_costs_one_redis_command_however_many_members(
    api: httpx.AsyncClient, redis: Redis, redis_url: str
) -> None:
    sender = await register(api)
    others = [await register(api) for _ in range(5)]
    group = await create_group(api, sender["tokens"], "g", [o["user"]["id"] for o in others])
    async with connect(ws_url(api, sender["tokens"]["access_token"])) as ws:
        await say(ws, group["id"], "warm the membership cache and load the script")

        async def sends() -> None:
            for i in range(20):
                await say(ws, group["id"], f"counted {i}")

        commands = await redis_commands_during(redis, redis_url, sends)
    # Commands issued by a client (not from inside the script) during the 20 sends:
    from_clients = [c for c in commands if c.get("client_type") != "lua"]
    assert [c["command"].split()[0].upper() for c in from_clients] == ["EVALSHA"] * 20
    # One PUBLISH per message, not per member: it names all six members for their devices.
    publishes = [c for c in commands if c["command"].upper().startswith("PUBLISH")]
    assert len(publishes) == 20
    member_ids = {sender["user"]["id"], *(o["user"]["id"] for o in others)}
    for publish in publishes:
        assert all(member in publish["command"] for member in member_ids)


async def test_a_socket_opens_only_once_its_conversations_are_subscribed(
    api: httpx.AsyncClient, redis: Redis
) -> None:
    for _ in range(10):
        user, other = await register(api), await register(api)
        direct = await create_direct(api, user["tokens"], other["user"]["id"])
        group = await create_group(api, other["tokens"], "g", [user["user"]["id"]])
        async with connect(ws_url(api, user["tokens"]["access_token"])):
            # No polling: the moment the handshake completes, Redis must know the channel of
            # every conversation of the user, or a message published now would miss it.
            assert await live_subscribers(redis, direct["id"]) == 1
            assert await live_subscribers(redis, group["id"]) == 1
