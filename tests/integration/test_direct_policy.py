"""`dm_policy: "contacts"`: a direct conversation with such a user, to start or to write in,
needs their friendship; groups are unaffected. And the cost of a send stays one Redis
command, in a direct conversation too."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

import asyncpg
import httpx
import pytest
from redis.asyncio import Redis

from gochat_py.ids import UserId
from gochat_py.postgres.conversations import Conversations
from gochat_py.realtime.membership import Membership
from tests.harness import (
    bearer,
    connect,
    create_direct,
    create_group,
    error_code,
    poll_until,
    redis_commands_during,
    register,
    ws_url,
)
from tests.relationships import (
    API,
    ask,
    decide,
    post_message,
    say,
)

ContactsOnly = Callable[[dict[str, Any]], Coroutine[Any, Any, None]]


@pytest.fixture
async def contacts_only(database_url: str, redis: Redis) -> AsyncIterator[ContactsOnly]:
    """Sets a user's dm_policy to "contacts" as PATCH /users/me will: the row, then
    Membership.invalidate_direct_of, which every server process hears."""
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    conversations = Conversations(pool)
    membership = Membership(conversations.roster, redis, conversations.direct_ids)

    async def set_policy(user: dict[str, Any]) -> None:
        user_id = UserId(uuid.UUID(user["user"]["id"]))
        await pool.execute("UPDATE users SET dm_policy = 'contacts' WHERE id = $1", user_id)
        await membership.invalidate_direct_of(user_id)

    yield set_policy
    await pool.close()


async def open_direct(
    api: httpx.AsyncClient, sender: dict[str, Any], other: dict[str, Any]
) -> httpx.Response:
    return await api.post(
        f"{API}/conversations",
        json={"participant_id": other["user"]["id"]},
        headers=bearer(sender["tokens"]),
    )


async def befriend(api: httpx.AsyncClient, one: dict[str, Any], other: dict[str, Any]) -> None:
    request = (await ask(api, one, other)).json()
    assert (await decide(api, other, request["id"], "accept")).status_code == 200


async def test_only_contacts_can_start_a_direct_conversation_with_a_contacts_only_user(
    api: httpx.AsyncClient, contacts_only: ContactsOnly
) -> None:
    picky, stranger, friend = await register(api), await register(api), await register(api)
    await befriend(api, picky, friend)
    await contacts_only(picky)
    refused = await open_direct(api, stranger, picky)
    assert (refused.status_code, error_code(refused)) == (403, "not_a_contact")
    assert (await open_direct(api, friend, picky)).status_code == 201
    # The policy is theirs alone: they may start one with a stranger who takes everyone.
    assert (await open_direct(api, picky, stranger)).status_code == 201


async def test_an_existing_direct_conversation_refuses_a_non_contact_until_they_are_friends(
    two_servers: tuple[httpx.AsyncClient, httpx.AsyncClient], contacts_only: ContactsOnly
) -> None:
    one, two = two_servers
    picky, stranger = await register(one), await register(one)
    direct = await create_direct(one, stranger["tokens"], picky["user"]["id"])
    group = await create_group(one, stranger["tokens"], "g", [picky["user"]["id"]])
    async with connect(ws_url(two, stranger["tokens"]["access_token"])) as ws:
        assert "seq" in await say(ws, direct["id"], "cached as allowed")
        await contacts_only(picky)
        reply = await say(ws, direct["id"], "now?")
        assert (reply["event"], reply["code"]) == ("error", "not_a_contact"), reply
        refused = await post_message(one, stranger, direct["id"], "over REST")
        assert (refused.status_code, error_code(refused)) == (403, "not_a_contact")
        assert "seq" in await say(ws, group["id"], "groups are unaffected")
        # The picky user may still write to the stranger, who takes everyone.
        assert (await post_message(one, picky, direct["id"], "hello")).status_code == 201

        # Accepted on the first server: the second lets the new friend write at once.
        await befriend(one, stranger, picky)
        assert "seq" in await say(ws, direct["id"], "friends now")
        ended = await one.delete(
            f"{API}/contacts/{stranger['user']['id']}", headers=bearer(picky["tokens"])
        )
        assert ended.status_code == 204
        reply = await say(ws, direct["id"], "and now?")
        assert reply.get("code") == "not_a_contact", reply


async def test_a_send_into_a_permitted_direct_conversation_costs_one_redis_command(
    api: httpx.AsyncClient, redis: Redis, redis_url: str, contacts_only: ContactsOnly
) -> None:
    picky, friend = await register(api), await register(api)
    await befriend(api, picky, friend)
    await contacts_only(picky)
    direct = await create_direct(api, friend["tokens"], picky["user"]["id"])
    async with connect(ws_url(api, friend["tokens"]["access_token"])) as ws:
        await say(ws, direct["id"], "warm the membership cache and load the script")

        async def sends() -> None:
            for i in range(10):
                assert "seq" in await say(ws, direct["id"], f"counted {i}")

        commands = await redis_commands_during(redis, redis_url, sends)
    from_clients = [c for c in commands if c.get("client_type") != "lua"]
    assert [c["command"].split()[0].upper() for c in from_clients] == ["EVALSHA"] * 10


async def test_a_policy_set_with_patch_users_me_is_enforced_at_once_on_every_server(
    two_servers: tuple[httpx.AsyncClient, httpx.AsyncClient],
) -> None:
    one, two = two_servers
    picky, stranger = await register(one), await register(one)
    direct = await create_direct(one, stranger["tokens"], picky["user"]["id"])
    async with connect(ws_url(two, stranger["tokens"]["access_token"])) as ws:
        assert "seq" in await say(ws, direct["id"], "cached as allowed")
        changed = await one.patch(
            f"{API}/users/me", json={"dm_policy": "contacts"}, headers=bearer(picky["tokens"])
        )
        assert changed.status_code == 200, changed.text

        # Every process forgets the pair's permission when the change reaches it over
        # pub/sub, which may come a moment after the PATCH's answer reaches this client.
        async def refused() -> dict[str, Any] | None:
            reply = await say(ws, direct["id"], "now?")
            return reply if reply.get("code") == "not_a_contact" else None

        await poll_until(refused, timeout=2, what="the other server to refuse the send")
        await one.patch(
            f"{API}/users/me", json={"dm_policy": "everyone"}, headers=bearer(picky["tokens"])
        )
        assert "seq" in await say(ws, direct["id"], "open again")
