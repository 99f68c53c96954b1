"""Mentions: `@username`s of members resolved at send time into `mentions`, a `mention`
notification for each member named (live and listed), none for anyone else; edits keep
the mentions and notify nobody; the usernames are looked up only for a message with '@',
once per member set."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import msgspec
import pytest
from redis.asyncio import Redis

from gochat_py.ids import ConversationId, UserId
from gochat_py.metrics import Metrics
from gochat_py.postgres.conversations import Conversations
from gochat_py.postgres.notifications import StoredNotifications
from gochat_py.postgres.users import Users
from gochat_py.realtime.events import Announcer
from gochat_py.redis import keys
from gochat_py.redis.webhook_queue import BODY_FIELD, TYPE_FIELD, USER_FIELD
from gochat_py.settings import Settings
from gochat_py.usecases.mentions import Mentions
from gochat_py.usecases.notifications import Notifications
from tests.harness import (
    bearer,
    connect,
    create_group,
    is_message,
    next_frame,
    register,
    serve_app,
    ws_url,
)
from tests.message_requests import send

Group = tuple[dict[str, Any], dict[str, Any], dict[str, Any], str]


@pytest.fixture
async def group(api: httpx.AsyncClient) -> Group:
    """alice (the owner), bob and carol, in the group "Trip"."""
    alice, bob, carol = [await register(api) for _ in range(3)]
    made = await create_group(
        api, alice["tokens"], "Trip", [bob["user"]["id"], carol["user"]["id"]]
    )
    return alice, bob, carol, made["id"]


async def mentions_listed(api: httpx.AsyncClient, user: dict[str, Any]) -> list[Any]:
    response = await api.get("/api/v1/notifications", headers=bearer(user["tokens"]))
    assert response.status_code == 200, response.text
    return [n for n in response.json()["notifications"] if n["type"] == "mention"]


async def frames_until(socket: Any, message_id: str) -> list[dict[str, Any]]:
    """Every frame up to the message `message_id`, which is left out."""
    frames = []
    while True:
        frame = await next_frame(socket)
        if is_message(frame) and frame["id"] == message_id:
            return frames
        frames.append(frame)


def is_notification(frame: dict[str, Any]) -> bool:
    return frame.get("event") == "notification"


def username(user: dict[str, Any]) -> str:
    name: str = user["user"]["username"]
    return name


def uid(user: dict[str, Any]) -> str:
    user_id: str = user["user"]["id"]
    return user_id


def uid_of(user: dict[str, Any]) -> UserId:
    return UserId(uuid.UUID(uid(user)))


async def test_only_members_other_than_the_sender_are_mentioned_in_order_once_each(
    api: httpx.AsyncClient, group: Group
) -> None:
    alice, bob, carol, group_id = group
    dave = await register(api)  # not a member
    text = (
        f"@{username(carol).upper()} and @{username(dave)}, me @{username(alice)}, "
        f"@{username(bob)} @{username(carol)} mail {username(bob)}@example.com "
        f"@{username(bob)}x"
    )
    async with connect(ws_url(api, bob["tokens"]["access_token"])) as bob_ws:
        sent = await send(api, alice, group_id, text)
        assert await next_frame(bob_ws, is_message) == sent
    assert sent["mentions"] == [uid(carol), uid(bob)]
    nobody = await send(api, alice, group_id, f"@{username(dave)} @{username(alice)} @ @x")
    assert "mentions" not in nobody
    [newest, before, *_] = (
        await api.get(f"/api/v1/conversations/{group_id}/messages", headers=bearer(bob["tokens"]))
    ).json()["messages"]
    assert (newest, before) == (nobody, sent)


async def test_each_member_named_gets_one_mention_notification_live_and_listed_and_no_one_else(
    api: httpx.AsyncClient, group: Group
) -> None:
    alice, bob, carol, group_id = group
    dave = await register(api)
    text = f"@{username(bob)} @{username(carol)} @{username(bob)} @{username(dave)} look"
    async with (
        connect(ws_url(api, bob["tokens"]["access_token"])) as bob_ws,
        connect(ws_url(api, carol["tokens"]["access_token"])) as carol_ws,
        connect(ws_url(api, alice["tokens"]["access_token"])) as alice_ws,
    ):
        sent = await send(api, alice, group_id, text)
        # Anything the send published comes before a message sent after it.
        probe = await send(api, alice, group_id, "probe")
        live = {
            name: [f for f in await frames_until(ws, probe["id"]) if is_notification(f)]
            for name, ws in (("bob", bob_ws), ("carol", carol_ws), ("alice", alice_ws))
        }
    assert live["alice"] == []
    for user, name in ((bob, "bob"), (carol, "carol")):
        [pushed] = live[name]
        notification = pushed["notification"]
        assert notification["type"] == "mention"
        assert notification["actor"] == {"id": uid(alice), "username": username(alice)}
        assert notification["data"] == {
            "conversation_id": group_id,
            "conversation_name": "Trip",
            "message_id": sent["id"],
            "seq": sent["seq"],
            "preview": text,
        }
        assert await mentions_listed(api, user) == [notification]
    assert await mentions_listed(api, alice) == []
    assert await mentions_listed(api, dave) == []


async def test_an_edit_keeps_the_mentions_it_was_sent_with_and_notifies_nobody(
    api: httpx.AsyncClient, group: Group
) -> None:
    alice, bob, carol, group_id = group
    sent = await send(api, alice, group_id, f"hi @{username(bob)}")
    response = await api.patch(
        f"/api/v1/conversations/{group_id}/messages/{sent['id']}",
        json={"content": f"hi @{username(carol)}"},
        headers=bearer(alice["tokens"]),
    )
    assert response.status_code == 200, response.text
    assert response.json()["message"]["mentions"] == [uid(bob)]
    assert len(await mentions_listed(api, bob)) == 1
    assert await mentions_listed(api, carol) == []


async def test_a_member_added_later_can_be_mentioned_and_one_removed_no_longer(
    api: httpx.AsyncClient, group: Group
) -> None:
    alice, bob, _, group_id = group
    erin = await register(api)
    before = await send(api, alice, group_id, f"@{username(erin)} soon")
    assert "mentions" not in before
    added = await api.post(
        f"/api/v1/conversations/{group_id}/members",
        json={"user_ids": [uid(erin)]},
        headers=bearer(alice["tokens"]),
    )
    assert added.status_code == 200, added.text
    after = await send(api, alice, group_id, f"@{username(erin)} welcome")
    assert after["mentions"] == [uid(erin)]
    removed = await api.delete(
        f"/api/v1/conversations/{group_id}/members/{uid(bob)}", headers=bearer(alice["tokens"])
    )
    assert removed.status_code in (200, 204), removed.text
    gone = await send(api, alice, group_id, f"@{username(bob)} @{username(erin)}")
    assert gone["mentions"] == [uid(erin)]
    assert len(await mentions_listed(api, erin)) == 2  # welcome, and the last one


async def test_a_mention_in_a_direct_conversation_names_the_other_one(
    api: httpx.AsyncClient, pair: tuple[dict[str, Any], dict[str, Any], str]
) -> None:
    alice, bob, conversation_id = pair
    sent = await send(api, alice, conversation_id, f"@{username(bob)}!")
    assert sent["mentions"] == [uid(bob)]
    [notification] = await mentions_listed(api, bob)
    assert notification["data"]["conversation_name"] is None


async def test_a_member_named_while_offline_gets_the_mention_through_the_webhook(
    settings: Settings, redis: Redis
) -> None:
    hooked = msgspec.structs.replace(settings, notify_webhook_url="http://127.0.0.1:9/hook")
    async with serve_app(hooked) as url, httpx.AsyncClient(base_url=url) as api:
        alice, bob, carol = [await register(api) for _ in range(3)]
        made = await create_group(api, alice["tokens"], "T", [uid(bob), uid(carol)])
        await redis.delete(keys.WEBHOOK_STREAM)  # the group's own notifications
        async with connect(ws_url(api, carol["tokens"]["access_token"])):
            sent = await send(api, alice, made["id"], f"@{username(bob)} @{username(carol)}")
    entries = await redis.xrange(keys.WEBHOOK_STREAM)
    # Carol had a socket open: her mention went there only.
    [(_, fields)] = [(i, f) for i, f in entries if f[TYPE_FIELD.encode()] == b"notification"]
    assert fields[USER_FIELD.encode()].decode() == uid(bob)
    notification = msgspec.json.decode(fields[BODY_FIELD.encode()])["notification"]
    assert notification["type"] == "mention"
    assert notification["data"]["message_id"] == sent["id"]


class CountingUsernames:
    """Users.usernames, counting its calls: the lookups a mention costs."""

    def __init__(self, users: Users) -> None:
        self._users = users
        self.calls = 0

    async def __call__(self, user_ids: list[UserId]) -> dict[UserId, str]:
        self.calls += 1
        return await self._users.usernames(user_ids)


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    async with asyncpg.create_pool(database_url, min_size=0, max_size=2) as made:
        yield made


async def test_usernames_are_read_only_for_an_at_sign_and_once_per_member_set(
    api: httpx.AsyncClient, group: Group, pool: asyncpg.Pool, redis: Redis
) -> None:
    alice, bob, carol, group_id = group
    lookups = CountingUsernames(Users(pool))
    notifications = Notifications(StoredNotifications(pool), Announcer(redis, 1), Metrics())
    mentions = Mentions(lookups, Conversations(pool).name, notifications)
    conversation = ConversationId(group_id)
    sender = uid_of(alice)
    members = frozenset(uid_of(u) for u in (alice, bob, carol))
    assert await mentions.resolve(conversation, members, sender, "no one, a@b.c") is None
    assert lookups.calls == 0
    named = f"@{username(bob)}"
    assert await mentions.resolve(conversation, members, sender, named) == [uid_of(bob)]
    # The same set read again (the membership cache's TTL): no lookup either.
    again = frozenset(members)
    assert await mentions.resolve(conversation, again, sender, named) == [uid_of(bob)]
    assert lookups.calls == 1
    fewer = members - {uid_of(bob)}
    assert await mentions.resolve(conversation, fewer, sender, named) is None
    assert lookups.calls == 2
