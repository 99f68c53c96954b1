"""Notifications: made by membership changes, pushed to every device of their recipient on
every process, listed and marked read over REST by that recipient alone."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import httpx
import pytest
from redis.asyncio import Redis
from websockets.asyncio.client import ClientConnection

from gochat_py import cursors
from gochat_py.devstack.services import RedisServer
from gochat_py.ids import UserId
from gochat_py.metrics import Metrics
from gochat_py.notifications import ConversationNotice
from gochat_py.postgres.notifications import StoredNotifications
from gochat_py.realtime.events import Announcer, ReadEvent
from gochat_py.rest.conversations import ListCursor
from gochat_py.settings import Settings, load_settings
from gochat_py.usecases.notifications import Cursor, Notifications
from tests.harness import (
    bearer,
    connect,
    create_group,
    is_message,
    is_presence,
    next_frame,
    plain_connect,
    poll_until,
    register,
    send_frame,
    serve_app,
    server_environment,
    ws_url,
)

NOTIFICATIONS = "/api/v1/notifications"
READ = f"{NOTIFICATIONS}/read"
PROBE_SEQ = 424242
# The conversation list's cursor, also a number and an id: not a notifications cursor.
LIST_CURSOR = cursors.encode(ListCursor(1_764_636_539_000_000, uuid.uuid4()))
# Ours in shape, but past any date there is.
FAR_FUTURE_CURSOR = cursors.encode(Cursor(10**17, uuid.uuid4()))


def is_notification(frame: dict[str, Any]) -> bool:
    return frame.get("event") == "notification"


async def listed(
    api: httpx.AsyncClient, user: dict[str, Any], **params: str | int
) -> dict[str, Any]:
    response = await api.get(NOTIFICATIONS, params=params, headers=bearer(user["tokens"]))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def mark(api: httpx.AsyncClient, user: dict[str, Any], body: Any) -> httpx.Response:
    return await api.post(READ, json=body, headers=bearer(user["tokens"]))


async def add_member(
    api: httpx.AsyncClient, manager: dict[str, Any], group_id: str, user: dict[str, Any]
) -> None:
    response = await api.post(
        f"/api/v1/conversations/{group_id}/members",
        json={"user_ids": [user["user"]["id"]]},
        headers=bearer(manager["tokens"]),
    )
    assert response.status_code == 200, response.text


async def remove_member(
    api: httpx.AsyncClient, actor: dict[str, Any], group_id: str, user: dict[str, Any]
) -> None:
    response = await api.delete(
        f"/api/v1/conversations/{group_id}/members/{user['user']['id']}",
        headers=bearer(actor["tokens"]),
    )
    assert response.status_code == 204, response.text


async def nothing_before_probe(
    socket: ClientConnection, redis: Redis, settings: Settings, user: dict[str, Any]
) -> None:
    """Fail if `socket` got any frame but messages (a group's system messages come on the
    group's channel) before a probe published now on the user's own channel: anything
    published there earlier reaches the socket first."""
    user_id = uuid.UUID(user["user"]["id"])
    probe = ReadEvent(conversation_id=uuid.uuid4(), user_id=user_id, seq=PROBE_SEQ)
    await Announcer(redis, settings.stream_partitions).to_user(UserId(user_id), probe)
    frame = await next_frame(socket, lambda f: not is_message(f) and not is_presence(f))
    assert (frame.get("event"), frame.get("seq")) == ("read", PROBE_SEQ), frame


async def test_a_member_added_to_a_group_hears_it_on_every_device_on_every_process_and_lists_it(
    two_servers: tuple[httpx.AsyncClient, httpx.AsyncClient], redis: Redis, settings: Settings
) -> None:
    one, two = two_servers
    owner, carol, bob = await register(one), await register(one), await register(one)
    group = await create_group(one, owner["tokens"], "Weekend", [carol["user"]["id"]])
    async with (
        connect(ws_url(one, bob["tokens"]["access_token"])) as bob_phone,
        connect(ws_url(two, bob["tokens"]["access_token"])) as bob_laptop,
        connect(ws_url(one, owner["tokens"]["access_token"])) as owner_ws,
    ):
        await add_member(two, owner, group["id"], bob)
        frames = [await next_frame(device, is_notification) for device in (bob_phone, bob_laptop)]
        assert frames[0] == frames[1]
        pushed = frames[0]["notification"]
        assert pushed["type"] == "added_to_conversation"
        assert pushed["actor"] == {"id": owner["user"]["id"], "username": owner["user"]["username"]}
        assert pushed["data"] == {"conversation_id": group["id"], "conversation_name": "Weekend"}
        assert pushed["read_at"] is None
        # The actor is told nothing of what they did.
        await nothing_before_probe(owner_ws, redis, settings, owner)

    assert (await listed(one, bob))["notifications"] == [pushed]
    assert (await listed(two, owner))["notifications"] == []


async def test_creating_a_group_notifies_each_participant_but_not_the_creator(
    api: httpx.AsyncClient,
) -> None:
    owner, bob, carol = await register(api), await register(api), await register(api)
    ids = [bob["user"]["id"], carol["user"]["id"], owner["user"]["id"]]
    group = await create_group(api, owner["tokens"], "  Trip  ", ids)
    for member in (bob, carol):
        page = await listed(api, member)
        assert [(n["type"], n["data"]) for n in page["notifications"]] == [
            ("added_to_conversation", {"conversation_id": group["id"], "conversation_name": "Trip"})
        ]
        assert page["unread_count"] == 1
    assert (await listed(api, owner))["notifications"] == []


async def test_a_removed_member_is_notified_and_one_who_leaves_is_not(
    api: httpx.AsyncClient, redis: Redis, settings: Settings
) -> None:
    owner, bob, carol = await register(api), await register(api), await register(api)
    group = await create_group(api, owner["tokens"], "g", [bob["user"]["id"], carol["user"]["id"]])
    async with (
        connect(ws_url(api, bob["tokens"]["access_token"])) as bob_ws,
        connect(ws_url(api, carol["tokens"]["access_token"])) as carol_ws,
    ):
        await remove_member(api, owner, group["id"], bob)
        frame = await next_frame(bob_ws, is_notification)
        assert frame["notification"]["type"] == "removed_from_conversation"
        assert frame["notification"]["data"] == {
            "conversation_id": group["id"],
            "conversation_name": "g",
        }
        assert frame["notification"]["actor"]["id"] == owner["user"]["id"]

        await remove_member(api, carol, group["id"], carol)
        await nothing_before_probe(carol_ws, redis, settings, carol)
    assert [n["type"] for n in (await listed(api, bob))["notifications"]] == [
        "removed_from_conversation",
        "added_to_conversation",
    ]
    assert [n["type"] for n in (await listed(api, carol))["notifications"]] == [
        "added_to_conversation"
    ]


async def test_a_gochat_socket_gets_no_notification_frame_and_one_that_names_the_event_does(
    api: httpx.AsyncClient,
) -> None:
    owner, carol, bob = await register(api), await register(api), await register(api)
    group = await create_group(api, owner["tokens"], "g", [carol["user"]["id"]])
    url = ws_url(api, bob["tokens"]["access_token"])
    async with (
        plain_connect(url) as gochat_ws,
        plain_connect(f"{url}&events=notification") as asking_ws,
        connect(ws_url(api, owner["tokens"]["access_token"])) as owner_ws,
    ):
        await add_member(api, owner, group["id"], bob)
        assert (await next_frame(asking_ws))["notification"]["type"] == "added_to_conversation"
        # A message published after the notification reaches the gochat socket, and before it
        # only the group's system message of the add: the notification never came (gochat
        # would have shown it as a message).
        await send_frame(owner_ws, conversation_id=group["id"], content="after the add")
        joined = await next_frame(gochat_ws)
        assert joined.get("system", {}).get("action") == "member_added", joined
        frame = await next_frame(gochat_ws)
        assert is_message(frame) and frame["content"] == "after the add", frame


async def test_pages_walk_every_notification_newest_first_without_duplicates_or_gaps(
    api: httpx.AsyncClient,
) -> None:
    owner, bob = await register(api), await register(api)
    groups = [
        await create_group(api, owner["tokens"], f"g{i}", [bob["user"]["id"]]) for i in range(7)
    ]
    walked: list[dict[str, Any]] = []
    page = await listed(api, bob, limit=3)
    while True:
        assert page["unread_count"] == 7
        walked += page["notifications"]
        if page["next_cursor"] is None:
            break
        page = await listed(api, bob, limit=3, cursor=page["next_cursor"])
    assert len(walked) == 7
    assert [n["data"]["conversation_id"] for n in walked] == [g["id"] for g in reversed(groups)]
    assert [(n["created_at"], n["id"]) for n in walked] == sorted(
        ((n["created_at"], n["id"]) for n in walked), reverse=True
    )
    # A full last page still says whether more follow: none do.
    assert (await listed(api, bob, limit=7))["next_cursor"] is None
    assert (await listed(api, bob, limit=6))["next_cursor"] is not None


async def test_unread_only_lists_just_the_unread_and_pages_through_them(
    api: httpx.AsyncClient,
) -> None:
    owner, bob = await register(api), await register(api)
    for i in range(5):
        await create_group(api, owner["tokens"], f"g{i}", [bob["user"]["id"]])
    everything = (await listed(api, bob))["notifications"]
    read_ids = [everything[0]["id"], everything[3]["id"]]
    assert (await mark(api, bob, {"ids": read_ids})).json() == {"updated": 2, "unread_count": 3}

    first = await listed(api, bob, unread_only="true", limit=2)
    second = await listed(api, bob, unread_only="true", limit=2, cursor=first["next_cursor"])
    unread = first["notifications"] + second["notifications"]
    assert second["next_cursor"] is None
    assert [n["id"] for n in unread] == [n["id"] for n in everything if n["id"] not in read_ids]
    assert all(n["read_at"] is None for n in unread)
    assert first["unread_count"] == 3
    page = await listed(api, bob, unread_only="false")
    assert [n["read_at"] is not None for n in page["notifications"]] == [
        True,
        False,
        False,
        True,
        False,
    ]


async def test_marking_read_on_one_device_is_announced_to_every_device_of_the_user(
    two_servers: tuple[httpx.AsyncClient, httpx.AsyncClient], redis: Redis, settings: Settings
) -> None:
    one, two = two_servers
    owner, bob = await register(one), await register(one)
    for i in range(3):
        await create_group(one, owner["tokens"], f"g{i}", [bob["user"]["id"]])
    [newest, middle, oldest] = [n["id"] for n in (await listed(one, bob))["notifications"]]
    async with (
        connect(ws_url(one, bob["tokens"]["access_token"])) as phone,
        connect(ws_url(two, bob["tokens"]["access_token"])) as laptop,
    ):
        marked = await mark(one, bob, {"ids": [middle, str(uuid.uuid4())]})
        assert marked.json() == {"updated": 1, "unread_count": 2}
        for device in (phone, laptop):
            frame = await next_frame(device)
            assert frame == {
                "event": "notifications_read",
                "ids": [middle],
                "all": False,
                "unread_count": 2,
            }

        # Marking again changes nothing and announces nothing.
        assert (await mark(two, bob, {"ids": [middle]})).json() == {
            "updated": 0,
            "unread_count": 2,
        }
        await nothing_before_probe(laptop, redis, settings, bob)

        assert (await mark(two, bob, {"all": True})).json() == {"updated": 2, "unread_count": 0}
        for device in (phone, laptop):
            frame = await next_frame(device, lambda f: f.get("event") == "notifications_read")
            assert (frame["ids"], frame["all"], frame["unread_count"]) == ([], True, 0)
    page = await listed(two, bob)
    assert page["unread_count"] == 0
    assert {n["id"] for n in page["notifications"] if n["read_at"] is not None} == {
        newest,
        middle,
        oldest,
    }


async def test_a_stranger_can_neither_see_nor_mark_anothers_notifications(
    api: httpx.AsyncClient, redis: Redis, settings: Settings
) -> None:
    owner, bob, mallory = await register(api), await register(api), await register(api)
    await create_group(api, owner["tokens"], "g", [bob["user"]["id"]])
    [bobs] = [n["id"] for n in (await listed(api, bob))["notifications"]]
    async with connect(ws_url(api, bob["tokens"]["access_token"])) as bob_ws:
        by_id = await mark(api, mallory, {"ids": [bobs]})
        assert (by_id.status_code, by_id.json()) == (200, {"updated": 0, "unread_count": 0})
        everything = await mark(api, mallory, {"all": True})
        assert (everything.status_code, everything.json()) == (
            200,
            {"updated": 0, "unread_count": 0},
        )
        await nothing_before_probe(bob_ws, redis, settings, bob)
    assert (await listed(api, mallory)) == {
        "notifications": [],
        "next_cursor": None,
        "unread_count": 0,
    }
    assert (await listed(api, mallory, unread_only="true"))["notifications"] == []
    page = await listed(api, bob)
    assert page["unread_count"] == 1
    assert [(n["id"], n["read_at"]) for n in page["notifications"]] == [(bobs, None)]


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"limit": "0"}, "invalid_limit"),
        ({"limit": "101"}, "invalid_limit"),
        ({"limit": "ten"}, "invalid_limit"),
        ({"unread_only": "yes"}, "invalid_parameter"),
        ({"cursor": "not-a-cursor"}, "invalid_cursor"),
        ({"cursor": LIST_CURSOR}, "invalid_cursor"),
        ({"cursor": FAR_FUTURE_CURSOR}, "invalid_cursor"),
    ],
)
async def test_a_bad_query_is_a_400_naming_it(
    api: httpx.AsyncClient, params: dict[str, str], code: str
) -> None:
    bob = await register(api)
    response = await api.get(NOTIFICATIONS, params=params, headers=bearer(bob["tokens"]))
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == code


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"ids": ["not-a-uuid"]}, "validation_failed"),
        ({"ids": [str(uuid.uuid4()) for _ in range(101)]}, "validation_failed"),
        ({"ids": []}, "validation_failed"),
        ({"ids": [str(uuid.uuid4())], "all": True}, "ids_or_all"),
        ({}, "ids_or_all"),
        ({"all": False}, "ids_or_all"),
        ({"all": "yes"}, "validation_failed"),
        ({"ids": [str(uuid.uuid4())], "every": True}, "validation_failed"),
    ],
)
async def test_a_bad_read_request_is_a_422_and_marks_nothing(
    api: httpx.AsyncClient, body: dict[str, Any], code: str
) -> None:
    owner, bob = await register(api), await register(api)
    await create_group(api, owner["tokens"], "g", [bob["user"]["id"]])
    response = await mark(api, bob, body)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == code
    assert (await listed(api, bob))["unread_count"] == 1


async def test_a_hundred_ids_are_accepted(api: httpx.AsyncClient) -> None:
    bob = await register(api)
    response = await mark(api, bob, {"ids": [str(uuid.uuid4()) for _ in range(100)]})
    assert response.json() == {"updated": 0, "unread_count": 0}


async def test_notifications_need_a_token(api: httpx.AsyncClient) -> None:
    assert (await api.get(NOTIFICATIONS)).status_code == 401
    assert (await api.post(READ, json={"all": True})).status_code == 401


async def test_a_push_redis_refuses_fails_nothing_and_the_notification_is_listed(
    database_url: str, own_redis: RedisServer
) -> None:
    settings = load_settings(server_environment(database_url, own_redis.url))
    async with serve_app(settings) as base_url, httpx.AsyncClient(base_url=base_url) as api:
        owner, carol, bob = await register(api), await register(api), await register(api)
        group = await create_group(api, owner["tokens"], "g", [carol["user"]["id"]])
        admin = Redis.from_url(own_redis.url)
        # Every channel but the users' own: the membership announcement still goes out,
        # the notification's push is refused (NOPERM).
        await admin.execute_command("ACL", "SETUSER", "default", "resetchannels", "&gochat:[^u]*")
        try:
            await add_member(api, owner, group["id"], bob)
        finally:
            await admin.execute_command("ACL", "SETUSER", "default", "allchannels")
            await admin.aclose()
        page = await listed(api, bob)
        metrics = (await api.get("/metrics")).text
    assert [n["type"] for n in page["notifications"]] == ["added_to_conversation"]
    assert 'gochat_user_event_failures_total{event="notification"} 1.0' in metrics


async def test_a_notification_made_while_redis_is_down_is_stored_and_listed_once_it_is_back(
    database_url: str, own_redis: RedisServer
) -> None:
    settings = load_settings(server_environment(database_url, own_redis.url))
    async with serve_app(settings) as base_url, httpx.AsyncClient(base_url=base_url) as api:
        owner, bob = await register(api), await register(api)
        pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
        redis = Redis.from_url(own_redis.url, socket_connect_timeout=1)
        metrics = Metrics()
        notifications = Notifications(
            StoredNotifications(pool), Announcer(redis, settings.stream_partitions), metrics
        )
        notice = ConversationNotice(conversation_id=uuid.uuid4(), conversation_name="g")
        own_redis.stop()
        try:
            made = await notifications.notify(
                UserId(uuid.UUID(bob["user"]["id"])),
                "added_to_conversation",
                UserId(uuid.UUID(owner["user"]["id"])),
                notice,
            )
        finally:
            own_redis.start()
            await redis.aclose()
            await pool.close()
        failures = metrics.registry.get_sample_value(
            "gochat_user_event_failures_total", {"event": "notification"}
        )

        async def listed_once_back() -> dict[str, Any] | None:
            response = await api.get(NOTIFICATIONS, headers=bearer(bob["tokens"]))
            return response.json() if response.status_code == 200 else None

        page = await poll_until(listed_once_back, what="the listing once Redis is back")
    assert failures == 1
    assert [n["id"] for n in page["notifications"]] == [str(made.id)]
    assert page["notifications"][0]["data"] == {
        "conversation_id": str(notice.conversation_id),
        "conversation_name": "g",
    }


async def test_a_member_added_when_storing_the_notification_fails_is_still_routed_everywhere(
    two_servers: tuple[httpx.AsyncClient, httpx.AsyncClient], db: asyncpg.Connection
) -> None:
    one, two = two_servers
    owner, carol, bob = await register(one), await register(one), await register(one)
    group = await create_group(one, owner["tokens"], "g", [carol["user"]["id"]])
    await db.execute(
        "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS"
        " $$ BEGIN RAISE EXCEPTION 'refused'; END $$;"
        " CREATE TRIGGER refuse BEFORE INSERT ON notifications EXECUTE FUNCTION refuse()"
    )
    async with (
        connect(ws_url(two, bob["tokens"]["access_token"])) as bob_ws,
        connect(ws_url(one, owner["tokens"]["access_token"])) as owner_ws,
    ):
        response = await one.post(
            f"/api/v1/conversations/{group['id']}/members",
            json={"user_ids": [bob["user"]["id"]]},
            headers=bearer(owner["tokens"]),
        )
        assert response.status_code == 500
        # The member was added and the change announced: the other process routes the
        # group's messages to bob's socket.
        await send_frame(owner_ws, conversation_id=group["id"], content="still routed")
        frame = await next_frame(bob_ws, is_message)
        assert frame["content"] == "still routed"
    assert (await listed(one, bob))["notifications"] == []
