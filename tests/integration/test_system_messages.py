"""A group's changes are system messages in its own log: in order between the messages,
live on the members' devices (the one who leaves included), stored by the worker."""

from __future__ import annotations

from typing import Any

import asyncpg
import httpx

from gochat_py.settings import Settings
from tests.harness import (
    bearer,
    connect,
    create_direct,
    create_group,
    is_message,
    next_frame,
    poll_until,
    register,
    ws_url,
)
from tests.message_requests import conversation_url, send, timeline
from tests.stream_traffic import running_consumer


def line(message: dict[str, Any]) -> tuple[Any, ...]:
    system = message.get("system")
    if system is None:
        return (message["seq"], "text", message["content"])
    return (message["seq"], system["action"], message["content"])


async def test_joins_and_leaves_are_in_the_log_between_the_right_messages(
    api: httpx.AsyncClient, settings: Settings, db: asyncpg.Connection
) -> None:
    alice, bob, carol, dave = [await register(api) for _ in range(4)]
    group = await create_group(api, alice["tokens"], "team", [bob["user"]["id"]])
    a, b, c, d = (u["user"]["username"] for u in (alice, bob, carol, dave))
    await send(api, alice, group["id"], "hello bob")
    added = await api.post(
        conversation_url(group["id"], "/members"),
        json={"user_ids": [carol["user"]["id"], dave["user"]["id"]]},
        headers=bearer(alice["tokens"]),
    )
    assert added.status_code == 200, added.text
    await send(api, carol, group["id"], "hi all")
    left = await api.delete(
        conversation_url(group["id"], f"/members/{bob['user']['id']}"),
        headers=bearer(bob["tokens"]),
    )
    assert left.status_code == 204, left.text
    removed = await api.delete(
        conversation_url(group["id"], f"/members/{dave['user']['id']}"),
        headers=bearer(alice["tokens"]),
    )
    assert removed.status_code == 204, removed.text
    expected = [
        (1, "created", f'{a} created the group "team"'),
        (2, "text", "hello bob"),
        (
            3,
            "member_added",
            f"{a} added {c} and {d}",
        ),
        (4, "text", "hi all"),
        (5, "member_left", f"{b} left"),
        (6, "member_removed", f"{a} removed {d}"),
    ]
    # From the recent cache, then from PostgreSQL once the worker stored and trimmed it.
    assert [line(m) for m in await timeline(api, carol, group["id"])] == expected
    async with running_consumer(
        settings.redis_url, settings.database_url, recent_tail=1, recent_trim_step=1
    ):

        async def stored() -> bool:
            return await db.fetchval("SELECT count(*) FROM messages") == 6

        await poll_until(stored, what="the worker to store the log")
    stored_log = await timeline(api, carol, group["id"])
    assert [line(m) for m in stored_log] == expected
    created, _, joined, _, gone, kicked = stored_log
    assert created["type"] == "system" and created["sender_id"] == alice["user"]["id"]
    assert created["system"] == {
        "action": "created",
        "actor_id": alice["user"]["id"],
        "target_ids": [bob["user"]["id"]],
        "name": "team",
    }
    assert sorted(joined["system"]["target_ids"]) == sorted(
        [carol["user"]["id"], dave["user"]["id"]]
    )
    assert gone["system"] == {"action": "member_left", "actor_id": bob["user"]["id"]}
    assert kicked["system"]["target_ids"] == [dave["user"]["id"]]
    # Those who left read nothing more of it.
    assert (
        await api.get(conversation_url(group["id"], "/messages"), headers=bearer(bob["tokens"]))
    ).status_code == 404


async def test_members_see_changes_live_and_the_one_removed_sees_their_removal(
    api: httpx.AsyncClient,
) -> None:
    alice, bob, carol = [await register(api) for _ in range(3)]
    group = await create_group(api, alice["tokens"], "crew", [bob["user"]["id"]])
    async with (
        connect(ws_url(api, alice["tokens"]["access_token"])) as alice_ws,
        connect(ws_url(api, bob["tokens"]["access_token"])) as bob_ws,
    ):
        await api.post(
            conversation_url(group["id"], "/members"),
            json={"user_ids": [carol["user"]["id"]]},
            headers=bearer(alice["tokens"]),
        )
        joined = await next_frame(bob_ws, is_message)
        assert joined["type"] == "system" and joined["system"]["action"] == "member_added"
        assert await next_frame(alice_ws, is_message) == joined
        await api.delete(
            conversation_url(group["id"], f"/members/{bob['user']['id']}"),
            headers=bearer(alice["tokens"]),
        )
        removal = await next_frame(bob_ws, is_message)
        assert removal["system"]["action"] == "member_removed"
        assert removal["system"]["target_ids"] == [bob["user"]["id"]]
        assert await next_frame(alice_ws, is_message) == removal


async def test_system_messages_are_not_unread_and_a_direct_conversation_has_none(
    api: httpx.AsyncClient,
) -> None:
    alice, bob = await register(api), await register(api)
    group = await create_group(api, alice["tokens"], "quiet", [bob["user"]["id"]])
    direct = await create_direct(api, alice["tokens"], bob["user"]["id"])
    listed = await api.get("/api/v1/conversations", headers=bearer(bob["tokens"]))
    unread = {c["conversation"]["id"]: c["unread_count"] for c in listed.json()["conversations"]}
    assert unread == {group["id"]: 0, direct["id"]: 0}
    assert await timeline(api, bob, direct["id"]) == []
    [created] = await timeline(api, bob, group["id"])
    assert created["system"]["action"] == "created"
