"""A group's life: its settings, roles and owner change as system messages of its log, live
and in history; exactly one owner whatever runs at once; an owner who leaves hands it over;
a deleted group leaves nothing behind, in PostgreSQL, in Redis or in the dead letters."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import asyncpg
import httpx
from redis.asyncio import Redis

from gochat_py.ids import ConversationId, UserId
from gochat_py.redis import keys
from gochat_py.redis.publish import Publisher
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
from tests.integration.test_system_messages import line
from tests.message_requests import conversation_url, send, timeline
from tests.stream_traffic import running_consumer

User = dict[str, Any]


def uid(user: User) -> str:
    return str(user["user"]["id"])


async def patch_group(api: httpx.AsyncClient, user: User, group: str, **body: Any) -> Any:
    return await api.patch(conversation_url(group), json=body, headers=bearer(user["tokens"]))


async def set_role(
    api: httpx.AsyncClient, user: User, group: str, member: User, role: str
) -> httpx.Response:
    return await api.patch(
        conversation_url(group, f"/members/{uid(member)}"),
        json={"role": role},
        headers=bearer(user["tokens"]),
    )


async def transfer(api: httpx.AsyncClient, user: User, group: str, to: User) -> httpx.Response:
    return await api.post(
        conversation_url(group, "/owner"), json={"user_id": uid(to)}, headers=bearer(user["tokens"])
    )


async def leave(api: httpx.AsyncClient, user: User, group: str) -> httpx.Response:
    return await api.delete(
        conversation_url(group, f"/members/{uid(user)}"), headers=bearer(user["tokens"])
    )


def roles(view: dict[str, Any]) -> dict[str, str]:
    return {p["id"]: p["role"] for p in view["participants"]}


async def no_floor() -> int:
    """PostgreSQL's highest seq of a conversation it no longer holds."""
    return 0


def code(response: httpx.Response) -> tuple[int, str]:
    return response.status_code, response.json()["error"]["code"]


async def test_settings_roles_and_owner_are_in_the_log_between_the_right_messages(
    api: httpx.AsyncClient, settings: Settings, db: asyncpg.Connection
) -> None:
    alice, bob, carol = [await register(api) for _ in range(3)]
    group = (await create_group(api, alice["tokens"], "team", [uid(bob), uid(carol)]))["id"]
    a, b, c = (u["user"]["username"] for u in (alice, bob, carol))
    await send(api, alice, group, "first")
    changed = await patch_group(api, alice, group, name=" squad ", description="we ship")
    assert changed.status_code == 200, changed.text
    assert changed.json()["conversation"]["name"] == "squad"
    assert changed.json()["conversation"]["description"] == "we ship"
    await send(api, bob, group, "nice name")
    assert (await set_role(api, alice, group, bob, "admin")).status_code == 200
    # An admin may change the settings; the same name again records nothing.
    assert (await patch_group(api, bob, group, name="squad")).status_code == 200
    assert (await patch_group(api, bob, group, description=None)).status_code == 200
    handed = await transfer(api, alice, group, carol)
    assert handed.status_code == 200, handed.text
    assert roles(handed.json()) == {uid(alice): "admin", uid(bob): "admin", uid(carol): "owner"}
    await send(api, carol, group, "mine now")
    expected = [
        (1, "created", f'{a} created the group "team"'),
        (2, "text", "first"),
        (3, "renamed", f'{a} renamed the group to "squad"'),
        (4, "description_changed", f"{a} changed the group's description"),
        (5, "text", "nice name"),
        (6, "role_changed", f"{a} made {b} an admin"),
        (7, "description_changed", f"{b} changed the group's description"),
        (8, "ownership_transferred", f"{a} made {c} the owner"),
        (9, "text", "mine now"),
    ]
    assert [line(m) for m in await timeline(api, bob, group)] == expected
    async with running_consumer(settings.redis_url, settings.database_url):

        async def stored() -> bool:
            return await db.fetchval("SELECT count(*) FROM messages") == len(expected)

        await poll_until(stored, what="the worker to store the log")
    stored_log = await timeline(api, bob, group)
    assert [line(m) for m in stored_log] == expected
    assert stored_log[2]["system"]["name"] == "squad"
    assert stored_log[5]["system"] == {
        "action": "role_changed",
        "actor_id": uid(alice),
        "target_ids": [uid(bob)],
        "role": "admin",
    }
    assert stored_log[7]["system"]["target_ids"] == [uid(carol)]
    details = await api.get(conversation_url(group), headers=bearer(bob["tokens"]))
    assert details.json()["conversation"]["description"] is None
    listed = await api.get("/api/v1/conversations", headers=bearer(bob["tokens"]))
    [item] = listed.json()["conversations"]
    assert item["conversation"]["name"] == "squad" and roles(item)[uid(carol)] == "owner"


async def test_members_see_each_change_live(api: httpx.AsyncClient) -> None:
    alice, bob = await register(api), await register(api)
    group = (await create_group(api, alice["tokens"], "live", [uid(bob)]))["id"]
    async with connect(ws_url(api, bob["tokens"]["access_token"])) as bob_ws:
        await patch_group(api, alice, group, name="renamed")
        renamed = await next_frame(bob_ws, is_message)
        assert renamed["system"] == {
            "action": "renamed",
            "actor_id": uid(alice),
            "name": "renamed",
        }
        await set_role(api, alice, group, bob, "admin")
        assert (await next_frame(bob_ws, is_message))["system"]["action"] == "role_changed"
        await transfer(api, alice, group, bob)
        handed = await next_frame(bob_ws, is_message)
        assert handed["system"]["action"] == "ownership_transferred"
        assert handed["seq"] == renamed["seq"] + 2


async def test_strangers_get_404_and_members_without_the_role_get_403(
    api: httpx.AsyncClient,
) -> None:
    owner, admin, member, stranger = [await register(api) for _ in range(4)]
    group = (await create_group(api, owner["tokens"], "g", [uid(admin), uid(member)]))["id"]
    assert (await set_role(api, owner, group, admin, "admin")).status_code == 200
    direct = (await create_direct(api, owner["tokens"], uid(member)))["id"]
    calls = {
        "rename": lambda u, g: patch_group(api, u, g, name="x"),
        "role": lambda u, g: set_role(api, u, g, member, "admin"),
        "transfer": lambda u, g: transfer(api, u, g, member),
        "delete": lambda u, g: api.delete(conversation_url(g), headers=bearer(u["tokens"])),
    }
    for name, call in calls.items():
        refused = await call(stranger, group)
        assert code(refused) == (404, "conversation_not_found"), name
        assert set(refused.json()) == {"error"}, name
        assert code(await call(owner, direct)) == (409, "direct_conversation"), name
        # An unknown conversation reads the same as one you are not in.
        assert code(await call(owner, str(uuid.uuid4()))) == (404, "conversation_not_found")
    assert code(await calls["rename"](member, group)) == (403, "not_a_manager")
    for name in ("role", "transfer", "delete"):
        assert code(await calls[name](member, group)) == (403, "not_the_owner"), name
        assert code(await calls[name](admin, group)) == (403, "not_the_owner"), name
    remove_owner = await api.delete(
        conversation_url(group, f"/members/{uid(owner)}"), headers=bearer(admin["tokens"])
    )
    assert code(remove_owner) == (403, "cannot_remove_owner")
    # Bad requests from the owner.
    assert code(await patch_group(api, owner, group)) == (422, "nothing_to_change")
    assert code(await patch_group(api, owner, group, name="  ")) == (422, "invalid_name")
    assert (await patch_group(api, owner, group, name="")).status_code == 422
    assert (await patch_group(api, owner, group, description="d" * 501)).status_code == 422
    assert (await patch_group(api, owner, group, colour="red")).status_code == 422
    assert (await set_role(api, owner, group, member, "owner")).status_code == 422
    assert code(await set_role(api, owner, group, owner, "member")) == (409, "owner_role")
    assert code(await transfer(api, owner, group, owner)) == (409, "already_owner")
    assert code(await transfer(api, owner, group, stranger)) == (422, "not_a_member")
    assert code(await set_role(api, owner, group, stranger, "admin")) == (422, "not_a_member")
    # Nothing of that changed the group or its log.
    view = (await api.get(conversation_url(group), headers=bearer(owner["tokens"]))).json()
    assert view["conversation"]["name"] == "g"
    assert roles(view) == {uid(owner): "owner", uid(admin): "admin", uid(member): "member"}
    actions = [m["system"]["action"] for m in await timeline(api, owner, group)]
    assert actions == ["created", "role_changed"]


async def test_concurrent_transfers_and_role_changes_keep_exactly_one_owner(
    api: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    people = [await register(api) for _ in range(4)]
    group = (await create_group(api, people[0]["tokens"], "race", [uid(p) for p in people[1:]]))[
        "id"
    ]
    for _ in range(8):
        # Everyone tries at once: the owner's requests win, whoever that is by then.
        await asyncio.gather(
            *(transfer(api, p, group, q) for p in people for q in people if p is not q),
            *(set_role(api, p, group, q, "member") for p in people for q in people),
        )
        owners = await db.fetchval(
            "SELECT count(*) FROM conversation_members WHERE conversation_id = $1"
            " AND role = 'owner'",
            uuid.UUID(group),
        )
        assert owners == 1


async def test_an_owner_who_leaves_hands_the_group_to_the_longest_standing_admin_else_member(
    api: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    alice, bob, carol, dave = [await register(api) for _ in range(4)]
    group = (await create_group(api, alice["tokens"], "heirs", [uid(bob)]))["id"]
    await api.post(
        conversation_url(group, "/members"),
        json={"user_ids": [uid(carol)]},
        headers=bearer(alice["tokens"]),
    )
    await api.post(
        conversation_url(group, "/members"),
        json={"user_ids": [uid(dave)]},
        headers=bearer(alice["tokens"]),
    )
    await set_role(api, alice, group, dave, "admin")
    await set_role(api, alice, group, carol, "admin")
    assert (await leave(api, alice, group)).status_code == 204
    view = (await api.get(conversation_url(group), headers=bearer(bob["tokens"]))).json()
    # carol and dave are admins; carol joined first. bob joined before both, as a member.
    assert roles(view) == {uid(bob): "member", uid(carol): "owner", uid(dave): "admin"}
    assert (await leave(api, carol, group)).status_code == 204
    assert (await leave(api, dave, group)).status_code == 204
    assert roles(
        (await api.get(conversation_url(group), headers=bearer(bob["tokens"]))).json()
    ) == {uid(bob): "owner"}
    tail = [line(m)[1:] for m in (await timeline(api, bob, group))[-6:]]
    a, c, d, b = (u["user"]["username"] for u in (alice, carol, dave, bob))
    assert tail == [
        ("ownership_transferred", f"{a} made {c} the owner"),
        ("member_left", f"{a} left"),
        ("ownership_transferred", f"{c} made {d} the owner"),
        ("member_left", f"{c} left"),
        ("ownership_transferred", f"{d} made {b} the owner"),
        ("member_left", f"{d} left"),
    ]
    # The last member leaving ends the group, its history with it.
    async with connect(ws_url(api, bob["tokens"]["access_token"])) as bob_ws:
        assert (await leave(api, bob, group)).status_code == 204
        ended = await next_frame(bob_ws, lambda f: f.get("event") == "conversation_deleted")
        assert ended == {
            "event": "conversation_deleted",
            "conversation_id": group,
            "actor_id": uid(bob),
        }
    assert (
        await db.fetchval("SELECT count(*) FROM conversations WHERE id = $1", uuid.UUID(group)) == 0
    )
    assert (
        await api.get(conversation_url(group), headers=bearer(bob["tokens"]))
    ).status_code == 404


async def test_a_deleted_group_leaves_nothing_behind_once_the_stopped_worker_starts(
    api: httpx.AsyncClient, settings: Settings, db: asyncpg.Connection, redis: Redis
) -> None:
    alice, bob = await register(api), await register(api)
    group = (await create_group(api, alice["tokens"], "doomed", [uid(bob)]))["id"]
    kept = (await create_direct(api, alice["tokens"], uid(bob)))["id"]
    first = await send(api, bob, group, "soon gone")
    edited = await api.patch(
        conversation_url(group, f"/messages/{first['id']}"),
        json={"content": "edited"},
        headers=bearer(bob["tokens"]),
    )
    assert edited.status_code == 200, edited.text
    await send(api, alice, kept, "stays")
    partitions = settings.stream_partitions
    conversation = uuid.UUID(group)
    own_keys = [
        keys.recent(conversation, partitions),
        keys.recent_changes(conversation, partitions),
        keys.sequence(conversation, partitions),
    ]
    assert await redis.exists(*own_keys) == 3
    async with connect(ws_url(api, bob["tokens"]["access_token"])) as bob_ws:
        deleted = await api.delete(conversation_url(group), headers=bearer(alice["tokens"]))
        assert deleted.status_code == 204, deleted.text
        ended = await next_frame(bob_ws, lambda f: f.get("event") == "conversation_deleted")
        assert ended["actor_id"] == uid(alice)
        # Members lose it at once: no reading, no sending, not in the list.
        await send(api, alice, kept, "after")
        assert (await next_frame(bob_ws, is_message))["content"] == "after"
    for user in (alice, bob):
        assert (
            await api.get(conversation_url(group, "/messages"), headers=bearer(user["tokens"]))
        ).status_code == 404
        refused = await api.post(
            conversation_url(group, "/messages"),
            json={"content": "x"},
            headers=bearer(user["tokens"]),
        )
        assert refused.status_code == 404
        listed = await api.get("/api/v1/conversations", headers=bearer(user["tokens"]))
        assert [c["conversation"]["id"] for c in listed.json()["conversations"]] == [kept]
    assert await redis.exists(*own_keys) == 0
    assert await db.fetchval("SELECT count(*) FROM conversations WHERE id = $1", conversation) == 0
    # A send that passed its membership check just before the deletion was announced writes
    # the keys anew.
    publisher = Publisher(redis, partitions, lambda _: no_floor(), recent_max=100)
    alice_id = UserId(uuid.UUID(uid(alice)))
    raced = await publisher.send(
        ConversationId(conversation), frozenset({alice_id}), alice_id, "alice", "raced", None
    )
    assert raced.message.seq == 1  # its counter had been erased too
    assert await redis.exists(*own_keys) == 2
    # Its entries (created, the message, the edit, the raced send) wait for the worker.
    async with running_consumer(settings.redis_url, settings.database_url) as running:

        async def drained() -> bool:
            return await db.fetchval("SELECT count(*) FROM messages") == 2

        await poll_until(drained, what="the worker to store the kept conversation")
        for partition in range(partitions):

            async def settled(p: int = partition) -> bool:
                pending = await redis.xpending(keys.stream(p), keys.CONSUMER_GROUP)
                return int(pending["pending"]) == 0

            await poll_until(settled, what="every entry acknowledged")
            assert await redis.xlen(keys.dead_letters(partition)) == 0
        assert running.metrics.entries_dropped._value.get() == 4
    stored = await db.fetch("SELECT conversation_id, content FROM messages ORDER BY seq")
    assert {row["conversation_id"] for row in stored} == {uuid.UUID(kept)}
    assert await redis.exists(*own_keys) == 0
    # What the caches hold counts the kept conversation's two messages only.
    held = [int(await redis.get(keys.recent_held(p)) or 0) for p in range(partitions)]
    assert sum(held) == 2
