"""Edits and deletes: entries of the conversation's log, delivered live, shown in history
(from the recent cache here: no worker runs), refused to everyone but those allowed."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import httpx

from gochat_py.redis.recent import FIND_CHUNK
from gochat_py.settings import Settings
from tests.harness import (
    bearer,
    connect,
    create_group,
    is_message,
    next_frame,
    not_presence,
    plain_connect,
    poll_until,
    register,
    send_frame,
    ws_url,
)
from tests.message_requests import delete, edit, history, messages_url, send
from tests.stream_traffic import running_consumer

Pair = tuple[dict[str, Any], dict[str, Any], str]


def change_of(event: str) -> Any:
    return lambda frame: frame.get("event") == event


async def test_an_edit_reaches_every_device_that_asked_and_history_shows_the_new_text(
    api: httpx.AsyncClient, pair: Pair
) -> None:
    alice, bob, conversation_id = pair
    token = bob["tokens"]["access_token"]
    async with connect(ws_url(api, token)) as rich, plain_connect(ws_url(api, token)) as plain:
        original = await send(api, alice, conversation_id, "helo")
        assert await next_frame(rich, is_message) == original
        assert await next_frame(plain, is_message) == original
        response = await edit(api, alice, conversation_id, original["id"], "hello")
        assert response.status_code == 200, response.text
        change = response.json()
        assert await next_frame(rich, change_of("message_updated")) == change
        # gochat's client would take the change for a message: it never gets one.
        after = await send(api, alice, conversation_id, "next")
        assert await next_frame(plain, not_presence) == after
    assert change["event"] == "message_updated" and change["seq"] == 2
    updated = change["message"]
    assert (updated["id"], updated["seq"], updated["content"]) == (original["id"], 1, "hello")
    assert updated["edited_at"] >= original["sent_at"]
    newest, edited = await history(api, bob, conversation_id)
    assert newest["seq"] == 3  # the edit took seq 2: a message's seq skips it
    assert edited == updated


async def test_a_delete_leaves_a_tombstone_that_never_comes_back(
    api: httpx.AsyncClient, pair: Pair
) -> None:
    alice, bob, conversation_id = pair
    original = await send(api, alice, conversation_id, "oops, wrong chat")
    async with connect(ws_url(api, bob["tokens"]["access_token"])) as bob_ws:
        response = await delete(api, alice, conversation_id, original["id"])
        assert response.status_code == 204, response.text
        frame = await next_frame(bob_ws, change_of("message_deleted"))
        assert frame["message"]["deleted"] is True and frame["message"]["content"] == ""
        assert frame["seq"] == 2
        # Deleting again changes nothing and publishes nothing.
        assert (await delete(api, alice, conversation_id, original["id"])).status_code == 204
        refused = await edit(api, alice, conversation_id, original["id"], "back again")
        assert refused.status_code == 409 and refused.json()["error"]["code"] == "message_deleted"
        later = await send(api, alice, conversation_id, "later")
        assert await next_frame(bob_ws, not_presence) == later
    [newest, tombstone] = await history(api, bob, conversation_id)
    assert newest["seq"] == 3
    assert tombstone["deleted"] is True and tombstone["content"] == ""
    assert tombstone["id"] == original["id"] and tombstone["seq"] == 1


async def test_only_the_sender_edits_and_in_a_group_a_manager_may_also_delete(
    api: httpx.AsyncClient,
) -> None:
    owner, member, other = [await register(api) for _ in range(3)]
    group = await create_group(
        api, owner["tokens"], "team", [member["user"]["id"], other["user"]["id"]]
    )
    said = await send(api, member, group["id"], "member's words")
    refused = await edit(api, owner, group["id"], said["id"], "owner's words")
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "not_the_sender"
    refused = await delete(api, other, group["id"], said["id"])
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "not_the_sender"
    assert (await delete(api, owner, group["id"], said["id"])).status_code == 204
    tombstone, created = await history(api, other, group["id"])
    assert tombstone["deleted"] is True
    # The group's own record stays as it is, whoever asks.
    for response in (
        await delete(api, owner, group["id"], created["id"]),
        await edit(api, owner, group["id"], created["id"], "rewritten"),
    ):
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "system_message"


async def test_in_a_direct_conversation_nobody_deletes_the_other_ones_message(
    api: httpx.AsyncClient, pair: Pair
) -> None:
    alice, bob, conversation_id = pair
    said = await send(api, alice, conversation_id, "mine")
    refused = await delete(api, bob, conversation_id, said["id"])
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "not_the_sender"
    assert (await history(api, alice, conversation_id))[0]["content"] == "mine"


async def test_a_stranger_can_neither_edit_nor_delete_and_learns_nothing(
    api: httpx.AsyncClient, pair: Pair
) -> None:
    alice, _, conversation_id = pair
    said = await send(api, alice, conversation_id, "private")
    mallory = await register(api)
    for response in (
        await edit(api, mallory, conversation_id, said["id"], "mine now"),
        await delete(api, mallory, conversation_id, said["id"]),
    ):
        assert response.status_code == 404, response.text
        assert "private" not in response.text and said["id"] not in response.text
    # Her own conversation's id with the message's id: that message is not in it.
    own = await create_group(api, mallory["tokens"], "mine", [(await register(api))["user"]["id"]])
    moved = await edit(api, mallory, own["id"], said["id"], "mine now")
    assert moved.status_code == 404 and moved.json()["error"]["code"] == "message_not_found"
    assert (await history(api, alice, conversation_id))[0]["content"] == "private"


async def test_bad_edits_are_refused_with_their_reason(api: httpx.AsyncClient, pair: Pair) -> None:
    alice, _, conversation_id = pair
    said = await send(api, alice, conversation_id, "fine")
    cases = [
        ({"content": "   "}, 422, "empty_content"),
        ({"content": "x" * 4001}, 422, None),
        ({"content": 5}, 422, None),
        ({}, 422, None),
    ]
    for body, status, code in cases:
        response = await api.patch(
            messages_url(conversation_id, said["id"]), json=body, headers=bearer(alice["tokens"])
        )
        assert response.status_code == status, (body, response.text)
        if code is not None:
            assert response.json()["error"]["code"] == code
    unknown = await edit(api, alice, conversation_id, str(uuid.uuid4()), "x")
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "message_not_found"
    not_an_id = await api.patch(
        messages_url(conversation_id, "not-a-uuid"),
        json={"content": "x"},
        headers=bearer(alice["tokens"]),
    )
    assert not_an_id.status_code == 404
    async with httpx.AsyncClient(base_url=api.base_url) as cookieless:
        unauthenticated = await cookieless.patch(
            messages_url(conversation_id, said["id"]), json={"content": "x"}
        )
    assert unauthenticated.status_code == 401
    assert (await history(api, alice, conversation_id))[0]["content"] == "fine"


async def test_edits_and_deletes_over_the_socket_and_their_refusals(
    api: httpx.AsyncClient, pair: Pair
) -> None:
    alice, bob, conversation_id = pair
    said = await send(api, alice, conversation_id, "first")
    theirs = await send(api, bob, conversation_id, "bob's")
    async with (
        connect(ws_url(api, alice["tokens"]["access_token"])) as alice_ws,
        connect(ws_url(api, bob["tokens"]["access_token"])) as bob_ws,
    ):
        await send_frame(
            alice_ws,
            event="edit",
            conversation_id=conversation_id,
            message_id=said["id"],
            content="first, edited",
        )
        updated = await next_frame(bob_ws, change_of("message_updated"))
        assert updated["message"]["content"] == "first, edited"
        # The editor's own devices hear it too.
        assert await next_frame(alice_ws, change_of("message_updated")) == updated
        refusals = [
            ({"message_id": theirs["id"], "content": "x"}, "edit", "not_the_sender"),
            ({"message_id": str(uuid.uuid4()), "content": "x"}, "edit", "message_not_found"),
            ({"message_id": said["id"], "content": " "}, "edit", "empty_content"),
            ({"message_id": theirs["id"]}, "delete", "not_the_sender"),
            ({"message_id": "nope"}, "delete", "invalid_field"),
        ]
        for fields, event, code in refusals:
            await send_frame(alice_ws, event=event, conversation_id=conversation_id, **fields)
            error = await next_frame(alice_ws, change_of("error"))
            assert error["code"] == code, (fields, error)
        await send_frame(
            alice_ws, event="delete", conversation_id=conversation_id, message_id=said["id"]
        )
        deleted = await next_frame(bob_ws, change_of("message_deleted"))
        assert deleted["message"]["id"] == said["id"] and deleted["seq"] == 4
    contents = [m["content"] for m in await history(api, bob, conversation_id)]
    assert contents == ["bob's", ""]


async def test_history_and_the_list_read_changes_stored_or_still_waiting_for_the_worker(
    api: httpx.AsyncClient, pair: Pair, settings: Settings, db: asyncpg.Connection
) -> None:
    alice, bob, conversation_id = pair
    sent = [await send(api, alice, conversation_id, f"m{i}") for i in range(6)]
    assert (await edit(api, alice, conversation_id, sent[0]["id"], "m0 fixed")).status_code == 200
    assert (await delete(api, alice, conversation_id, sent[1]["id"])).status_code == 204
    # The worker stores all of it and trims the caches down to one entry.
    async with running_consumer(
        settings.redis_url, settings.database_url, recent_tail=1, recent_trim_step=1
    ):

        async def stored() -> bool:
            return await db.fetchval("SELECT last_seq FROM conversations") == 8

        await poll_until(stored, what="the messages and changes stored")
    # Changed after it was stored and trimmed, while no worker runs: only the cache knows.
    assert (await edit(api, alice, conversation_id, sent[2]["id"], "m2 late")).status_code == 200
    assert (await delete(api, alice, conversation_id, sent[5]["id"])).status_code == 204
    contents = [
        (m["content"], m.get("deleted", False)) for m in await history(api, bob, conversation_id)
    ]
    assert contents == [
        ("", True),
        ("m4", False),
        ("m3", False),
        ("m2 late", False),
        ("", True),
        ("m0 fixed", False),
    ]
    listed = await api.get("/api/v1/conversations", headers=bearer(bob["tokens"]))
    [item] = listed.json()["conversations"]
    assert item["last_message"]["deleted"] is True and item["last_message"]["content"] == ""
    assert item["conversation"]["last_seq"] == 10


async def test_an_old_message_the_worker_has_not_stored_is_found_past_the_first_chunk(
    api: httpx.AsyncClient, pair: Pair
) -> None:
    alice, bob, conversation_id = pair
    first = await send(api, alice, conversation_id, "the first")
    fillers = FIND_CHUNK + 50
    async with connect(ws_url(api, alice["tokens"]["access_token"])) as alice_ws:
        for i in range(fillers):
            await send_frame(
                alice_ws, conversation_id=conversation_id, content=f"f{i}", client_msg_id=f"f{i}"
            )
        for _ in range(fillers):
            await next_frame(alice_ws, change_of("ack"))
    response = await edit(api, alice, conversation_id, first["id"], "the first, fixed")
    assert response.status_code == 200, response.text
    page = await api.get(
        messages_url(conversation_id) + "?after_seq=0&limit=1", headers=bearer(bob["tokens"])
    )
    assert page.json()["messages"][0]["content"] == "the first, fixed"
