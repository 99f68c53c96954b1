"""Presence: who is told when someone comes and goes, in which shape, and what REST says."""

from __future__ import annotations

import re
import uuid
from typing import Any

import asyncpg
import httpx
import pytest
from redis.asyncio import Redis

from gochat_py import times
from gochat_py.devstack.services import RedisServer
from gochat_py.ids import UserId
from gochat_py.realtime.events import Announcer, ReadEvent
from gochat_py.redis import keys
from gochat_py.redis.presence import PresenceStore
from gochat_py.settings import Settings, load_settings
from tests.harness import (
    bearer,
    connect,
    create_direct,
    next_frame,
    plain_connect,
    poll_until,
    register,
    serve_app,
    server_environment,
    ws_url,
)

TTL = 3.0  # seconds: short, so a socket nobody refreshes is swept within the test
MARKER_SEQ = 424242


@pytest.fixture
def settings(database_url: str, redis_url: str) -> Settings:
    """This module's servers (conftest's two_servers): presence entries live 3 s and are
    refreshed every second, so expiry and sweeps are quick to see."""
    return load_settings(
        server_environment(database_url, redis_url, PRESENCE_TTL="3s", PRESENCE_HEARTBEAT="1s")
    )


@pytest.fixture
async def people(
    two_servers: tuple[httpx.AsyncClient, httpx.AsyncClient],
) -> tuple[dict[str, Any], dict[str, Any], str]:
    """alice and bob, who share a direct conversation."""
    one, _ = two_servers
    alice, bob = await register(one), await register(one)
    conversation = await create_direct(one, alice["tokens"], bob["user"]["id"])
    return alice, bob, conversation["id"]


def token(person: dict[str, Any]) -> str:
    return str(person["tokens"]["access_token"])


def user_id(person: dict[str, Any]) -> UserId:
    return UserId(uuid.UUID(person["user"]["id"]))


def is_list(frame: dict[str, Any]) -> bool:
    """The online list a socket gets on connect, in gochat-py's shape; it comes once the
    socket's presence is recorded (and announced, if at all)."""
    return frame.get("event") == "presence_list"


def announced(frame: dict[str, Any]) -> bool:
    """A presence announcement, in either shape (not the list sent on connect)."""
    return "presence" in (frame.get("event"), frame.get("type"))


async def presence_until_marker(
    socket: Any, redis: Redis, person: dict[str, Any]
) -> list[dict[str, Any]]:
    """The presence announcements `socket` (of `person`) got before a marker published now
    on their own channel: whatever was published to them earlier arrives first."""
    marker = ReadEvent(conversation_id=uuid.uuid4(), user_id=uuid.uuid4(), seq=MARKER_SEQ)
    await Announcer(redis, 1).to_user(user_id(person), marker)
    seen = []
    while True:
        frame = await next_frame(socket, lambda f: announced(f) or f.get("seq") == MARKER_SEQ)
        if frame.get("seq") == MARKER_SEQ:
            return seen
        seen.append(frame)


async def told_while_online(
    socket: Any,
    person: dict[str, Any],
    redis: Redis,
    server: httpx.AsyncClient,
    other: dict[str, Any],
) -> list[dict[str, Any]]:
    """The presence announcements `socket` (of `person`) gets as `other` connects."""
    async with connect(ws_url(server, token(other))) as other_ws:
        await next_frame(other_ws, is_list)
        return await presence_until_marker(socket, redis, person)


async def sockets_on(server: httpx.AsyncClient) -> int:
    """Sockets the server holds, from its metrics: a closed one is gone once its close,
    presence announcement included, has run."""
    text = (await server.get("/metrics")).text
    match = re.search(r"^gochat_ws_connections (\S+)$", text, re.MULTILINE)
    assert match is not None
    return int(float(match.group(1)))


async def sockets_left(server: httpx.AsyncClient, count: int) -> None:
    """Wait until `server` holds `count` sockets: the closes before have been handled."""

    async def settled() -> bool:
        return await sockets_on(server) == count

    await poll_until(settled, what=f"{count} sockets left")


async def presence_of(
    server: httpx.AsyncClient, asker: dict[str, Any], *people: str
) -> list[dict[str, Any]]:
    response = await server.get(
        "/api/v1/presence", params={"user_ids": ",".join(people)}, headers=bearer(asker["tokens"])
    )
    assert response.status_code == 200, response.text
    presence: list[dict[str, Any]] = response.json()["presence"]
    return presence


async def test_a_user_online_on_two_processes_is_announced_once_and_offline_when_the_last_goes(
    two_servers: tuple[httpx.AsyncClient, httpx.AsyncClient],
    people: tuple[dict[str, Any], dict[str, Any], str],
    redis: Redis,
) -> None:
    one, two = two_servers
    alice, bob, _ = people
    bob_id = bob["user"]["id"]
    async with connect(ws_url(one, token(alice))) as alice_ws:
        listed = await next_frame(alice_ws, is_list)
        assert listed["online_users"] == []
        async with connect(ws_url(one, token(bob))):
            online = await next_frame(alice_ws, announced)
            assert online == {
                "event": "presence",
                "user_id": bob_id,
                "username": bob["user"]["username"],
                "status": "online",
                "last_seen_at": None,
            }
            async with connect(ws_url(two, token(bob))) as laptop:
                # Its list comes once its presence is recorded (and announced, if at all).
                await next_frame(laptop, is_list)
                assert await presence_until_marker(alice_ws, redis, alice) == []
                assert (await presence_of(one, alice, bob_id))[0]["status"] == "online"

            await sockets_left(two, 0)
            assert await presence_until_marker(alice_ws, redis, alice) == []
        before = times.now_ms()
        offline = await next_frame(alice_ws, announced)
        assert (offline["user_id"], offline["status"]) == (bob_id, "offline")
        assert before - 1000 <= offline["last_seen_at"] <= times.now_ms()
        assert await presence_until_marker(alice_ws, redis, alice) == []
    [answer] = await presence_of(one, alice, bob_id)
    assert answer == {
        "user_id": bob_id,
        "status": "offline",
        "last_seen_at": offline["last_seen_at"],
    }


async def test_the_last_seen_time_is_stored_in_postgresql(
    two_servers: tuple[httpx.AsyncClient, httpx.AsyncClient],
    people: tuple[dict[str, Any], dict[str, Any], str],
    db: asyncpg.Connection,
    redis: Redis,
) -> None:
    one, _ = two_servers
    alice, bob, _ = people
    async with connect(ws_url(one, token(alice))) as alice_ws:
        async with connect(ws_url(one, token(bob))):
            await next_frame(alice_ws, lambda f: f.get("status") == "online")
        offline = await next_frame(alice_ws, lambda f: f.get("status") == "offline")

    async def stored() -> Any:
        return await db.fetchval("SELECT last_seen_at FROM users WHERE id = $1", user_id(bob))

    assert times.unix_ms(await poll_until(stored, what="last_seen_at")) == offline["last_seen_at"]
    # Redis keeps it for a while only; then it is read from PostgreSQL.
    await redis.delete(keys.presence_seen(user_id(bob)))
    [answer] = await presence_of(one, alice, bob["user"]["id"])
    assert answer["last_seen_at"] == offline["last_seen_at"]


async def test_a_gochat_client_gets_the_online_list_and_presence_in_gochats_shape(
    two_servers: tuple[httpx.AsyncClient, httpx.AsyncClient],
    people: tuple[dict[str, Any], dict[str, Any], str],
) -> None:
    one, two = two_servers
    alice, bob, _ = people
    bob_id = bob["user"]["id"]
    async with connect(ws_url(two, token(bob))) as bob_ws:
        await next_frame(bob_ws, is_list)
        async with plain_connect(ws_url(one, token(alice))) as gochat_ws:
            first = await next_frame(gochat_ws, lambda f: True)
            assert first == {"type": "presence_list", "online_users": [bob_id]}
            # The other way round: bob's rich socket hears alice in gochat-py's shape.
            came = await next_frame(bob_ws, announced)
            assert (came["event"], came["user_id"]) == ("presence", alice["user"]["id"])
        await bob_ws.close()

    async def bob_gone() -> bool:
        return bool((await presence_of(one, alice, bob_id))[0]["status"] == "offline")

    # Bob's server announces him offline after his close: a socket opened before that would
    # hear it ahead of its list.
    await poll_until(bob_gone, what="bob offline")
    async with plain_connect(ws_url(one, token(alice))) as gochat_ws:
        assert await next_frame(gochat_ws, lambda f: True) == {
            "type": "presence_list",
            "online_users": [],
        }
        async with connect(ws_url(two, token(bob))):
            online = await next_frame(gochat_ws, lambda f: True)
        offline = await next_frame(gochat_ws, lambda f: True)
    expected = {"type": "presence", "user_id": bob_id, "username": bob["user"]["username"]}
    assert online == {**expected, "status": "online"}
    assert offline == {**expected, "status": "offline"}


async def test_a_socket_that_asks_for_presence_by_name_gets_the_rich_shape(
    two_servers: tuple[httpx.AsyncClient, httpx.AsyncClient],
    people: tuple[dict[str, Any], dict[str, Any], str],
) -> None:
    one, _ = two_servers
    alice, bob, _ = people
    url = ws_url(one, token(alice)) + "&events=presence"
    async with plain_connect(url) as alice_ws:
        assert await next_frame(alice_ws, lambda f: True) == {
            "event": "presence_list",
            "online_users": [],
        }
        async with plain_connect(ws_url(one, token(bob))):
            online = await next_frame(alice_ws, lambda f: True)
    assert (online["event"], online["status"], online["last_seen_at"]) == (
        "presence",
        "online",
        None,
    )


async def test_a_socket_that_did_not_ask_for_presence_gets_none(
    two_servers: tuple[httpx.AsyncClient, httpx.AsyncClient],
    people: tuple[dict[str, Any], dict[str, Any], str],
    redis: Redis,
) -> None:
    one, _ = two_servers
    alice, bob, _ = people
    # It asks for read events only, so that the marker reaches it.
    async with plain_connect(ws_url(one, token(alice)) + "&events=read") as alice_ws:
        assert await told_while_online(alice_ws, alice, redis, one, bob) == []


async def test_a_user_who_hides_presence_is_never_announced_and_shows_offline(
    two_servers: tuple[httpx.AsyncClient, httpx.AsyncClient],
    people: tuple[dict[str, Any], dict[str, Any], str],
    redis: Redis,
    db: asyncpg.Connection,
) -> None:
    one, two = two_servers
    alice, bob, conversation_id = people
    bob_id = bob["user"]["id"]
    await db.execute("UPDATE users SET show_presence = false WHERE id = $1", user_id(bob))
    async with connect(ws_url(one, token(alice))) as alice_ws:
        async with connect(ws_url(two, token(bob))) as bob_ws:
            await next_frame(bob_ws, is_list)
            assert await presence_until_marker(alice_ws, redis, alice) == []
            assert await presence_of(one, alice, bob_id) == [
                {"user_id": bob_id, "status": "offline", "last_seen_at": None}
            ]
            online = await one.get(
                f"/api/v1/conversations/{conversation_id}/online", headers=bearer(alice["tokens"])
            )
            assert online.json()["status"][bob_id] is False
            # He sees himself as he is.
            assert (await presence_of(one, bob, bob_id))[0]["status"] == "online"
            async with connect(ws_url(one, token(alice))) as second:
                listed = await next_frame(second, is_list)
                assert listed["online_users"] == []

        await sockets_left(two, 0)
        assert await presence_until_marker(alice_ws, redis, alice) == []
    assert await presence_of(one, alice, bob_id) == [
        {"user_id": bob_id, "status": "offline", "last_seen_at": None}
    ]


async def test_a_user_who_blocked_the_asker_shows_offline_to_them_only(
    two_servers: tuple[httpx.AsyncClient, httpx.AsyncClient],
    people: tuple[dict[str, Any], dict[str, Any], str],
    redis: Redis,
    db: asyncpg.Connection,
) -> None:
    one, _ = two_servers
    alice, bob, conversation_id = people
    carol = await register(one)
    bob_id = bob["user"]["id"]
    await db.execute(
        "INSERT INTO blocks (blocker_id, blocked_id) VALUES ($1, $2)", user_id(bob), user_id(alice)
    )
    async with connect(ws_url(one, token(bob))) as bob_ws:
        await next_frame(bob_ws, is_list)
        async with connect(ws_url(one, token(alice))) as alice_ws:
            listed = await next_frame(alice_ws, is_list)
            assert listed["online_users"] == []
            # Blocking is one way: the blocker still sees the one he blocked.
            came = await next_frame(bob_ws, announced)
            assert (came["user_id"], came["status"]) == (alice["user"]["id"], "online")
            assert await presence_of(one, alice, bob_id) == [
                {"user_id": bob_id, "status": "offline", "last_seen_at": None}
            ]
            online = await one.get(
                f"/api/v1/conversations/{conversation_id}/online", headers=bearer(alice["tokens"])
            )
            assert online.json() == {"online_users": [alice["user"]["id"]], "status": {
                alice["user"]["id"]: True, bob_id: False
            }}  # fmt: skip
            # Anyone else sees him.
            assert (await presence_of(one, carol, bob_id))[0]["status"] == "online"
            # Nor does his going reach her.
            await bob_ws.close()

            await sockets_left(one, 1)
            assert await presence_until_marker(alice_ws, redis, alice) == []


async def test_contacts_are_told_too(
    two_servers: tuple[httpx.AsyncClient, httpx.AsyncClient], db: asyncpg.Connection
) -> None:
    one, _ = two_servers
    alice, dave = await register(one), await register(one)
    await db.executemany(
        "INSERT INTO contacts (user_id, contact_id) VALUES ($1, $2)",
        [(user_id(alice), user_id(dave)), (user_id(dave), user_id(alice))],
    )
    async with connect(ws_url(one, token(alice))) as alice_ws:
        async with connect(ws_url(one, token(dave))):
            came = await next_frame(alice_ws, announced)
    assert (came["user_id"], came["status"]) == (dave["user"]["id"], "online")


async def test_group_members_who_are_not_contacts_are_not_told(
    two_servers: tuple[httpx.AsyncClient, httpx.AsyncClient], redis: Redis
) -> None:
    one, _ = two_servers
    alice, erin = await register(one), await register(one)
    response = await one.post(
        "/api/v1/conversations",
        json={"name": "group", "participant_ids": [erin["user"]["id"]]},
        headers=bearer(alice["tokens"]),
    )
    assert response.status_code == 201, response.text
    async with connect(ws_url(one, token(alice))) as alice_ws:
        assert await told_while_online(alice_ws, alice, redis, one, erin) == []


async def test_a_socket_nobody_refreshes_is_swept_and_announced_offline_once(
    two_servers: tuple[httpx.AsyncClient, httpx.AsyncClient],
    people: tuple[dict[str, Any], dict[str, Any], str],
    redis: Redis,
    settings: Settings,
) -> None:
    one, _ = two_servers
    alice, bob, _ = people
    async with connect(ws_url(one, token(alice))) as alice_ws:
        await next_frame(alice_ws, is_list)
        # A socket of bob's on a process that died: its deadline passed, nobody refreshes it.
        store = PresenceStore(redis, settings.presence_ttl)
        await store.connect(user_id(bob), ["ghost"], times.now_ms() - int(TTL * 1000) - 1)
        offline = await next_frame(alice_ws, announced, timeout=TTL + 5)
        assert (offline["user_id"], offline["status"]) == (bob["user"]["id"], "offline")
        assert await redis.exists(keys.presence(user_id(bob))) == 0

        async def unindexed() -> bool:
            return await redis.zscore(keys.PRESENCE_DEADLINES, str(user_id(bob))) is None

        await poll_until(unindexed, what="the sweeper to drop bob from the index")
        # Both servers sweep; only one announced.
        assert await presence_until_marker(alice_ws, redis, alice) == []


async def test_live_sockets_are_refreshed_and_outlive_the_ttl(
    two_servers: tuple[httpx.AsyncClient, httpx.AsyncClient],
    people: tuple[dict[str, Any], dict[str, Any], str],
    redis: Redis,
) -> None:
    one, two = two_servers
    alice, bob, _ = people
    async with connect(ws_url(one, token(alice))) as alice_ws:
        async with connect(ws_url(two, token(bob))):
            await next_frame(alice_ws, announced)
            first = await redis.zrange(keys.presence(user_id(bob)), 0, -1, withscores=True)

            async def refreshed() -> bool:
                now = await redis.zrange(keys.presence(user_id(bob)), 0, -1, withscores=True)
                return bool(now) and now[0][1] > first[0][1]

            await poll_until(refreshed, timeout=TTL, what="a heartbeat")
            await poll_until(refreshed, timeout=TTL, what="a heartbeat")
            # Two TTLs on: still online, nothing announced since.
            assert (await presence_of(one, alice, bob["user"]["id"]))[0]["status"] == "online"
            assert await presence_until_marker(alice_ws, redis, alice) == []


async def test_presence_of_users_asked_by_id_in_the_order_asked(
    two_servers: tuple[httpx.AsyncClient, httpx.AsyncClient],
    people: tuple[dict[str, Any], dict[str, Any], str],
) -> None:
    one, _ = two_servers
    alice, bob, _ = people
    carol = await register(one)
    unknown = str(uuid.uuid4())
    ids = [carol["user"]["id"], unknown, bob["user"]["id"], carol["user"]["id"]]
    async with connect(ws_url(one, token(bob))) as bob_ws:
        await next_frame(bob_ws, is_list)
        answer = await presence_of(one, alice, *ids)
    # Unknown users look like anyone offline who was never seen: existence is not revealed.
    assert answer == [
        {"user_id": carol["user"]["id"], "status": "offline", "last_seen_at": None},
        {"user_id": unknown, "status": "offline", "last_seen_at": None},
        {"user_id": bob["user"]["id"], "status": "online", "last_seen_at": None},
    ]


@pytest.mark.parametrize(
    "user_ids",
    [None, "", "not-a-uuid", "{id},", ",".join(str(uuid.uuid4()) for _ in range(101))],
)
async def test_presence_refuses_a_missing_malformed_or_too_long_list(
    two_servers: tuple[httpx.AsyncClient, httpx.AsyncClient],
    people: tuple[dict[str, Any], dict[str, Any], str],
    user_ids: str | None,
) -> None:
    one, _ = two_servers
    alice, _, _ = people
    params = {} if user_ids is None else {"user_ids": user_ids.format(id=alice["user"]["id"])}
    response = await one.get("/api/v1/presence", params=params, headers=bearer(alice["tokens"]))
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "invalid_user_ids"


async def test_presence_takes_up_to_a_hundred_ids_and_needs_a_token(
    two_servers: tuple[httpx.AsyncClient, httpx.AsyncClient],
    people: tuple[dict[str, Any], dict[str, Any], str],
) -> None:
    one, _ = two_servers
    alice, _, _ = people
    ids = [str(uuid.uuid4()) for _ in range(100)]
    assert len(await presence_of(one, alice, *ids)) == 100
    async with httpx.AsyncClient(base_url=one.base_url) as without_cookies:
        anonymous = await without_cookies.get("/api/v1/presence", params={"user_ids": ids[0]})
    assert anonymous.status_code == 401


async def test_who_is_online_in_a_conversation_is_for_its_members_only(
    two_servers: tuple[httpx.AsyncClient, httpx.AsyncClient],
    people: tuple[dict[str, Any], dict[str, Any], str],
) -> None:
    one, two = two_servers
    alice, bob, conversation_id = people
    carol = await register(one)
    path = f"/api/v1/conversations/{conversation_id}/online"
    async with connect(ws_url(two, token(bob))) as bob_ws:
        await next_frame(bob_ws, is_list)
        member = await one.get(path, headers=bearer(alice["tokens"]))
        stranger = await one.get(path, headers=bearer(carol["tokens"]))
        missing = await one.get(
            f"/api/v1/conversations/{uuid.uuid4()}/online", headers=bearer(alice["tokens"])
        )
    assert member.status_code == 200, member.text
    assert member.json() == {
        "online_users": [bob["user"]["id"]],
        "status": {alice["user"]["id"]: False, bob["user"]["id"]: True},
    }
    for refused in (stranger, missing):
        assert refused.status_code == 404
        assert refused.json()["error"]["code"] == "conversation_not_found"


async def failures(server: httpx.AsyncClient, step: str) -> float:
    text = (await server.get("/metrics")).text
    match = re.search(rf'^gochat_presence_failures_total{{step="{step}"}} (\S+)$', text, re.M)
    return float(match.group(1)) if match else 0.0


async def test_a_redis_outage_leaves_sockets_open_and_presence_is_repaired_after(
    database_url: str, own_redis: RedisServer
) -> None:
    settings = load_settings(
        server_environment(database_url, own_redis.url, PRESENCE_TTL="3s", PRESENCE_HEARTBEAT="1s")
    )
    async with serve_app(settings) as url, httpx.AsyncClient(base_url=url) as api:
        alice, bob = await register(api), await register(api)
        await create_direct(api, alice["tokens"], bob["user"]["id"])
        async with connect(ws_url(api, token(alice))) as alice_ws:
            bob_ws = await connect(ws_url(api, token(bob)))
            await next_frame(alice_ws, announced)
            own_redis.stop()

            async def refresh_failed() -> bool:
                return await failures(api, "refresh") > 0

            await poll_until(refresh_failed, what="a heartbeat to fail")
            await bob_ws.close()  # its presence cannot be removed now
            await alice_ws.send('{"event": "ping"}')
            assert (await next_frame(alice_ws))["event"] == "pong"
            own_redis.start()

            async def repaired() -> bool:
                try:
                    answer = await presence_of(api, alice, alice["user"]["id"], bob["user"]["id"])
                except AssertionError:
                    return False  # REST needs Redis too: not back yet
                return [p["status"] for p in answer] == ["online", "offline"]

            await poll_until(repaired, timeout=20, what="presence to be repaired")
            assert await failures(api, "disconnect") > 0


async def test_hiding_or_showing_presence_while_online_is_announced_at_once(
    two_servers: tuple[httpx.AsyncClient, httpx.AsyncClient],
    people: tuple[dict[str, Any], dict[str, Any], str],
    redis: Redis,
) -> None:
    one, two = two_servers
    alice, bob, _ = people
    bob_id = bob["user"]["id"]
    async with connect(ws_url(one, token(alice))) as alice_ws:
        await next_frame(alice_ws, is_list)
        async with connect(ws_url(two, token(bob))) as bob_ws:
            await next_frame(bob_ws, is_list)
            came = await presence_until_marker(alice_ws, redis, alice)
            assert [(f["user_id"], f["status"]) for f in came] == [(bob_id, "online")]
            for shown, status in ((False, "offline"), (True, "online")):
                changed = await two.patch(
                    "/api/v1/users/me", json={"show_presence": shown}, headers=bearer(bob["tokens"])
                )
                assert changed.status_code == 200, changed.text
                told = await presence_until_marker(alice_ws, redis, alice)
                assert [(f["user_id"], f["status"], f["last_seen_at"]) for f in told] == [
                    (bob_id, status, None)
                ]
