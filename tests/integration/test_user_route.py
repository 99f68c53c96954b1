"""The route to one user: every socket of theirs on every process, nobody else's."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from redis.asyncio import Redis

from gochat_py.ids import UserId
from gochat_py.realtime.events import Announcer, ReadEvent
from gochat_py.redis import keys
from tests.harness import (
    connect,
    next_frame,
    plain_connect,
    poll_until,
    register,
    ws_url,
)


def an_event(user_id: str) -> ReadEvent:
    return ReadEvent(conversation_id=uuid.uuid4(), user_id=uuid.UUID(user_id), seq=7)


async def subscribers(redis: Redis, user_id: str) -> int:
    channel = keys.user_channel(uuid.UUID(user_id))
    [(_, count)] = await redis.pubsub_numsub(channel)
    return int(count)


async def test_an_event_for_a_user_reaches_each_of_their_sockets_on_every_process_only(
    two_servers: tuple[httpx.AsyncClient, httpx.AsyncClient], redis: Redis, settings: Any
) -> None:
    one, two = two_servers
    alice, bob = await register(one), await register(one)
    announcer = Announcer(redis, settings.stream_partitions)
    async with (
        connect(ws_url(one, alice["tokens"]["access_token"])) as phone,
        connect(ws_url(two, alice["tokens"]["access_token"])) as laptop,
        connect(ws_url(one, bob["tokens"]["access_token"])) as bob_ws,
    ):
        await announcer.to_user(
            UserId(uuid.UUID(alice["user"]["id"])), an_event(alice["user"]["id"])
        )
        for device in (phone, laptop):
            frame = await next_frame(device)
            assert (frame["event"], frame["seq"]) == ("read", 7)
        # Bob's socket shares a process with alice's phone and hears nothing of it: the
        # next frame he gets is the answer to his ping.
        await bob_ws.send('{"event": "ping"}')
        assert (await next_frame(bob_ws))["event"] == "pong"


async def test_an_event_goes_only_to_sockets_that_asked_for_it(
    api: httpx.AsyncClient, redis: Redis, settings: Any
) -> None:
    alice = await register(api)
    announcer = Announcer(redis, settings.stream_partitions)
    url = ws_url(api, alice["tokens"]["access_token"])
    async with plain_connect(url) as gochat_ws, connect(url) as rich_ws:
        await announcer.to_user(
            UserId(uuid.UUID(alice["user"]["id"])), an_event(alice["user"]["id"])
        )
        assert (await next_frame(rich_ws))["event"] == "read"
        await gochat_ws.send('{"event": "ping"}')
        assert (await next_frame(gochat_ws))["event"] == "pong"


async def test_a_process_holds_a_users_channel_while_one_of_their_sockets_is_open(
    api: httpx.AsyncClient, redis: Redis
) -> None:
    alice = await register(api)
    user_id = alice["user"]["id"]
    url = ws_url(api, alice["tokens"]["access_token"])
    assert await subscribers(redis, user_id) == 0
    async with connect(url):
        assert await subscribers(redis, user_id) == 1
        async with connect(url):
            assert await subscribers(redis, user_id) == 1  # once per process, not per socket
        assert await subscribers(redis, user_id) == 1

    async def released() -> bool:
        return await subscribers(redis, user_id) == 0

    await poll_until(released, timeout=5, what="the channel released")


def test_a_users_channel_is_tagged_by_the_user() -> None:
    user = UserId(uuid.uuid4())
    assert keys.user_channel(user) == f"gochat:user:{{{user}}}:events"
