"""Blocking over REST, and what a block refuses: requests, direct conversations and sends
into them (REST and WebSocket, on every server process at once)."""

from __future__ import annotations

import json
import uuid

import httpx

from tests.harness import (
    bearer,
    connect,
    create_direct,
    create_group,
    error_code,
    next_frame,
    register,
    ws_url,
)
from tests.relationships import (
    API,
    CONTACT_EVENTS,
    ask,
    block,
    contact_ids,
    decide,
    pending,
    post_message,
    say,
    unblock,
)


async def test_blocking_is_listed_idempotent_and_lifted(api: httpx.AsyncClient) -> None:
    alice, bob = await register(api), await register(api)
    made = await block(api, alice, bob)
    assert made.status_code == 201, made.text
    assert made.json()["user"] == {"id": bob["user"]["id"], "username": bob["user"]["username"]}
    again = await block(api, alice, bob)
    assert (again.status_code, again.json()) == (200, made.json())
    listed = await api.get(f"{API}/blocks", headers=bearer(alice["tokens"]))
    assert listed.json() == {"blocks": [made.json()], "next_cursor": None}
    assert "email" not in listed.text
    # Bob sees only whom he blocked: nobody.
    theirs = await api.get(f"{API}/blocks", headers=bearer(bob["tokens"]))
    assert theirs.json()["blocks"] == []
    assert (await unblock(api, alice, bob)).status_code == 204
    gone = await unblock(api, alice, bob)
    assert (gone.status_code, error_code(gone)) == (404, "block_not_found")
    assert (await api.get(f"{API}/blocks", headers=bearer(alice["tokens"]))).json()["blocks"] == []


async def test_blocking_yourself_or_nobody_is_refused(api: httpx.AsyncClient) -> None:
    alice = await register(api)
    own = await block(api, alice, alice)
    assert (own.status_code, error_code(own)) == (422, "cannot_block_self")
    unknown = await block(api, alice, {"user": {"id": str(uuid.uuid4())}})
    assert (unknown.status_code, error_code(unknown)) == (404, "user_not_found")


async def test_a_stranger_cannot_lift_someone_elses_block(api: httpx.AsyncClient) -> None:
    alice, bob, mallory = await register(api), await register(api), await register(api)
    await block(api, alice, bob)
    lifted = await unblock(api, mallory, bob)
    assert (lifted.status_code, set(lifted.json())) == (404, {"error"})
    # Nor by the blocked user: they lift nothing, and still cannot ask.
    assert (await unblock(api, bob, alice)).status_code == 404
    assert error_code(await ask(api, bob, alice)) == "blocked"


async def test_a_block_ends_the_friendship_and_pending_requests_both_ways(
    api: httpx.AsyncClient,
) -> None:
    alice, bob, carol, dave = [await register(api) for _ in range(4)]
    friendship = (await ask(api, alice, bob)).json()
    await decide(api, bob, friendship["id"], "accept")
    await ask(api, carol, alice)  # to the blocker
    await ask(api, alice, dave)  # from the blocker
    for other in (bob, carol, dave):
        assert (await block(api, alice, other)).status_code == 201
    assert await contact_ids(api, alice) == []
    assert await contact_ids(api, bob) == []
    for user in (alice, carol, dave):
        for direction in ("incoming", "outgoing"):
            assert await pending(api, user, direction) == []


async def test_the_blocked_user_cannot_ask_and_the_blocker_must_unblock_first(
    api: httpx.AsyncClient,
) -> None:
    alice, bob = await register(api), await register(api)
    await block(api, alice, bob)
    refused = await ask(api, bob, alice)
    assert (refused.status_code, error_code(refused)) == (403, "blocked")
    assert refused.json()["error"]["message"] == "you cannot add this user"
    own = await ask(api, alice, bob)
    assert (own.status_code, error_code(own)) == (409, "unblock_first")
    await unblock(api, alice, bob)
    assert (await ask(api, bob, alice)).status_code == 201


async def test_neither_side_of_a_block_can_open_a_direct_conversation(
    api: httpx.AsyncClient,
) -> None:
    alice, bob = await register(api), await register(api)
    await block(api, alice, bob)
    for sender, other in ((bob, alice), (alice, bob)):
        opened = await api.post(
            f"{API}/conversations",
            json={"participant_id": other["user"]["id"]},
            headers=bearer(sender["tokens"]),
        )
        assert (opened.status_code, error_code(opened)) == (403, "blocked"), opened.text
    await unblock(api, alice, bob)
    await create_direct(api, bob["tokens"], alice["user"]["id"])


async def test_neither_side_can_write_into_their_direct_conversation_but_groups_go_on(
    api: httpx.AsyncClient,
) -> None:
    alice, bob = await register(api), await register(api)
    direct = await create_direct(api, alice["tokens"], bob["user"]["id"])
    group = await create_group(api, alice["tokens"], "g", [bob["user"]["id"]])
    async with connect(ws_url(api, bob["tokens"]["access_token"])) as bob_ws:
        assert "seq" in await say(bob_ws, direct["id"], "before")  # cached as allowed
        await block(api, alice, bob)
        reply = await say(bob_ws, direct["id"], "after")
        assert (reply["event"], reply["code"]) == ("error", "blocked"), reply
        for sender in (bob, alice):
            refused = await post_message(api, sender, direct["id"], "over REST")
            assert (refused.status_code, error_code(refused)) == (403, "blocked")
            sent = await post_message(api, sender, group["id"], "in the group")
            assert sent.status_code == 201, sent.text
        assert "seq" in await say(bob_ws, group["id"], "the group still hears me")
        # What was said before stays readable.
        history = await api.get(
            f"{API}/conversations/{direct['id']}/messages", headers=bearer(bob["tokens"])
        )
        assert [m["content"] for m in history.json()["messages"]] == ["before"]
        await unblock(api, alice, bob)
        assert "seq" in await say(bob_ws, direct["id"], "unblocked")


async def test_a_block_on_one_server_refuses_the_very_next_send_on_another_silently(
    two_servers: tuple[httpx.AsyncClient, httpx.AsyncClient],
) -> None:
    one, two = two_servers
    alice, bob = await register(one), await register(one)
    friendship = (await ask(one, alice, bob)).json()
    await decide(one, bob, friendship["id"], "accept")
    direct = await create_direct(one, alice["tokens"], bob["user"]["id"])
    async with connect(ws_url(two, bob["tokens"]["access_token"])) as bob_ws:
        assert "seq" in await say(bob_ws, direct["id"], "cached on the second server")
        assert (await block(one, alice, bob)).status_code == 201
        reply = await say(bob_ws, direct["id"], "the very next one")
        assert (reply["event"], reply["code"]) == ("error", "blocked"), reply
        # The block ended the friendship without a word to the blocked user: a ping's pong
        # comes, and no contact event before it.
        await bob_ws.send(json.dumps({"event": "ping"}))
        frame = await next_frame(bob_ws, lambda f: f.get("event") in (*CONTACT_EVENTS, "pong"))
        assert frame == {"event": "pong"}
