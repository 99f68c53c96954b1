"""Friend requests and contacts over REST, and their events live on every device."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import asyncpg
import httpx
import pytest
from loguru import logger
from redis.asyncio import Redis
from websockets.asyncio.client import ClientConnection

from gochat_py.redis import keys
from gochat_py.settings import Settings, load_settings
from tests.harness import (
    bearer,
    connect,
    error_code,
    next_frame,
    plain_connect,
    register,
    serve_app,
    server_environment,
    ws_url,
)
from tests.relationships import (
    API,
    CONTACT_EVENTS,
    ask,
    contact_ids,
    decide,
    pending,
    ref,
)


async def test_a_request_accepted_makes_both_contacts_and_leaves_nothing_pending(
    api: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    alice, bob = await register(api), await register(api)
    sent = await ask(api, alice, bob)
    assert sent.status_code == 201, sent.text
    request = sent.json()
    assert request["status"] == "pending"
    assert (request["from"], request["to"]) == (ref(alice), ref(bob))
    assert "email" not in sent.text
    assert await pending(api, bob, "incoming") == [request["id"]]
    assert await pending(api, alice, "outgoing") == [request["id"]]
    assert await pending(api, alice, "incoming") == []

    accepted = await decide(api, bob, request["id"], "accept")
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["status"] == "accepted"
    assert accepted.json()["decided_at"] is not None
    assert await contact_ids(api, alice) == [bob["user"]["id"]]
    assert await contact_ids(api, bob) == [alice["user"]["id"]]
    assert await pending(api, bob, "incoming") == []
    rows = await db.fetch(
        "SELECT user_id, contact_id FROM contacts WHERE $1::uuid IN (user_id, contact_id)",
        alice["user"]["id"],
    )
    assert len(rows) == 2  # one per direction


async def test_asking_someone_who_asked_you_accepts_their_request_at_once(
    api: httpx.AsyncClient,
) -> None:
    alice, bob = await register(api), await register(api)
    first = (await ask(api, alice, bob)).json()
    mutual = await ask(api, bob, alice)
    assert mutual.status_code == 200, mutual.text
    assert mutual.json()["id"] == first["id"]
    assert mutual.json()["status"] == "accepted"
    assert await contact_ids(api, alice) == [bob["user"]["id"]]
    assert await contact_ids(api, bob) == [alice["user"]["id"]]


async def test_a_rejected_request_makes_no_friendship_and_can_be_asked_again(
    api: httpx.AsyncClient,
) -> None:
    alice, bob = await register(api), await register(api)
    request = (await ask(api, alice, bob)).json()
    rejected = await decide(api, bob, request["id"], "reject")
    assert (rejected.status_code, rejected.json()["status"]) == (200, "rejected")
    assert await contact_ids(api, alice) == []
    again = await decide(api, bob, request["id"], "accept")
    assert (again.status_code, error_code(again)) == (409, "request_not_pending")
    assert (await ask(api, alice, bob)).status_code == 201


async def test_the_sender_cancels_and_the_request_is_gone_for_both(
    api: httpx.AsyncClient,
) -> None:
    alice, bob = await register(api), await register(api)
    request = (await ask(api, alice, bob)).json()
    cancelled = await api.delete(
        f"{API}/contacts/requests/{request['id']}", headers=bearer(alice["tokens"])
    )
    assert cancelled.status_code == 204
    assert await pending(api, bob, "incoming") == []
    assert await pending(api, alice, "outgoing") == []
    late = await decide(api, bob, request["id"], "accept")
    assert (late.status_code, error_code(late)) == (409, "request_not_pending")


async def test_duplicates_self_and_unknown_users_are_refused(api: httpx.AsyncClient) -> None:
    alice, bob = await register(api), await register(api)
    request = (await ask(api, alice, bob)).json()
    again = await ask(api, alice, bob)
    assert (again.status_code, error_code(again)) == (409, "request_pending")
    await decide(api, bob, request["id"], "accept")
    for sender, recipient in ((alice, bob), (bob, alice)):
        friends = await ask(api, sender, recipient)
        assert (friends.status_code, error_code(friends)) == (409, "already_contacts")
    own = await ask(api, alice, alice)
    assert (own.status_code, error_code(own)) == (422, "cannot_add_self")
    nobody = {"user": {"id": str(uuid.uuid4())}}
    unknown = await ask(api, alice, nobody)
    assert (unknown.status_code, error_code(unknown)) == (404, "user_not_found")


async def test_ending_a_friendship_ends_it_for_both_and_twice_is_not_found(
    api: httpx.AsyncClient,
) -> None:
    alice, bob = await register(api), await register(api)
    request = (await ask(api, alice, bob)).json()
    await decide(api, bob, request["id"], "accept")
    ended = await api.delete(f"{API}/contacts/{alice['user']['id']}", headers=bearer(bob["tokens"]))
    assert ended.status_code == 204
    assert await contact_ids(api, alice) == []
    assert await contact_ids(api, bob) == []
    again = await api.delete(f"{API}/contacts/{bob['user']['id']}", headers=bearer(alice["tokens"]))
    assert (again.status_code, error_code(again)) == (404, "contact_not_found")


async def test_a_stranger_or_the_wrong_side_gets_not_found_and_no_data(
    api: httpx.AsyncClient,
) -> None:
    alice, bob, mallory = await register(api), await register(api), await register(api)
    request = (await ask(api, alice, bob)).json()
    attempts = [
        (mallory, "POST", f"{API}/contacts/requests/{request['id']}/accept"),
        (mallory, "POST", f"{API}/contacts/requests/{request['id']}/reject"),
        (mallory, "DELETE", f"{API}/contacts/requests/{request['id']}"),
        # Only the recipient decides, only the sender cancels.
        (alice, "POST", f"{API}/contacts/requests/{request['id']}/accept"),
        (alice, "POST", f"{API}/contacts/requests/{request['id']}/reject"),
        (bob, "DELETE", f"{API}/contacts/requests/{request['id']}"),
        (mallory, "DELETE", f"{API}/contacts/{alice['user']['id']}"),
    ]
    for user, method, path in attempts:
        response = await api.request(method, path, headers=bearer(user["tokens"]))
        assert response.status_code == 404, (user["user"]["username"], method, path)
        assert set(response.json()) == {"error"}
        assert alice["user"]["username"] not in response.text
    for direction in ("incoming", "outgoing"):
        assert await pending(api, mallory, direction) == []
    assert await pending(api, bob, "incoming") == [request["id"]]  # untouched


async def test_lists_page_with_cursors_newest_first(api: httpx.AsyncClient) -> None:
    hub = await register(api)
    askers = [await register(api) for _ in range(3)]
    ids = [(await ask(api, asker, hub)).json()["id"] for asker in askers]
    seen: list[str] = []
    cursor: str | None = None
    while True:
        params = {"direction": "incoming", "limit": "2", **({"cursor": cursor} if cursor else {})}
        page = await api.get(
            f"{API}/contacts/requests", params=params, headers=bearer(hub["tokens"])
        )
        assert page.status_code == 200, page.text
        seen += [r["id"] for r in page.json()["requests"]]
        cursor = page.json()["next_cursor"]
        if cursor is None:
            break
    assert seen == ids[::-1]
    for request_id in ids:
        await decide(api, hub, request_id, "accept")
    first = await api.get(f"{API}/contacts", params={"limit": "2"}, headers=bearer(hub["tokens"]))
    rest = await api.get(
        f"{API}/contacts",
        params={"limit": "2", "cursor": first.json()["next_cursor"]},
        headers=bearer(hub["tokens"]),
    )
    listed = [c["user"]["id"] for c in first.json()["contacts"] + rest.json()["contacts"]]
    assert listed == [a["user"]["id"] for a in askers][::-1]
    assert rest.json()["next_cursor"] is None
    bad = await api.get(f"{API}/contacts", params={"cursor": "x"}, headers=bearer(hub["tokens"]))
    assert (bad.status_code, error_code(bad)) == (400, "invalid_cursor")
    odd = await api.get(
        f"{API}/contacts/requests", params={"direction": "sideways"}, headers=bearer(hub["tokens"])
    )
    assert (odd.status_code, error_code(odd)) == (400, "invalid_direction")


@pytest.fixture
def strict_settings(database_url: str, redis_url: str) -> Settings:
    return load_settings(server_environment(database_url, redis_url, CONTACT_REQUEST_LIMIT="3"))


@pytest.fixture
async def strict_api(strict_settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with serve_app(strict_settings) as url, httpx.AsyncClient(base_url=url) as client:
        yield client


async def test_requests_past_the_limit_are_refused_with_retry_after(
    strict_api: httpx.AsyncClient,
) -> None:
    sender = await register(strict_api)
    others = [await register(strict_api) for _ in range(4)]
    for other in others[:3]:
        assert (await ask(strict_api, sender, other)).status_code == 201
    refused = await ask(strict_api, sender, others[3])
    assert (refused.status_code, error_code(refused)) == (429, "rate_limited")
    assert 0 < float(refused.headers["Retry-After"]) <= 3600
    # The limit is the sender's own: someone else still asks.
    assert (await ask(strict_api, others[3], sender)).status_code == 201


async def contact_event(socket: ClientConnection) -> dict[str, Any]:
    return await next_frame(socket, lambda f: f.get("event") in CONTACT_EVENTS)


async def test_two_users_with_two_devices_each_on_two_servers_hear_request_accept_and_removal(
    two_servers: tuple[httpx.AsyncClient, httpx.AsyncClient],
) -> None:
    one, two = two_servers
    alice, bob = await register(one), await register(one)
    async with (
        connect(ws_url(one, alice["tokens"]["access_token"])) as alice_one,
        connect(ws_url(two, alice["tokens"]["access_token"])) as alice_two,
        connect(ws_url(one, bob["tokens"]["access_token"])) as bob_one,
        connect(ws_url(two, bob["tokens"]["access_token"])) as bob_two,
    ):
        devices = [alice_one, alice_two, bob_one, bob_two]
        request = (await ask(one, alice, bob)).json()
        heard = await asyncio.gather(*map(contact_event, devices))
        assert all(frame == {"event": "contact_request", "request": request} for frame in heard)

        accepted = (await decide(two, bob, request["id"], "accept")).json()
        heard = await asyncio.gather(*map(contact_event, devices))
        expected = {"event": "contact_request_updated", "request": accepted}
        assert all(frame == expected for frame in heard)
        assert accepted["status"] == "accepted"

        await two.delete(f"{API}/contacts/{bob['user']['id']}", headers=bearer(alice["tokens"]))
        heard = await asyncio.gather(*map(contact_event, devices))
        assert [frame["event"] for frame in heard] == ["contact_removed"] * 4
        assert [frame["user_id"] for frame in heard] == [bob["user"]["id"]] * 2 + [
            alice["user"]["id"]
        ] * 2


async def test_a_gochat_client_that_asked_for_nothing_gets_no_contact_events(
    api: httpx.AsyncClient,
) -> None:
    alice, bob = await register(api), await register(api)
    async with plain_connect(ws_url(api, bob["tokens"]["access_token"])) as bare:
        await ask(api, alice, bob)
        with pytest.raises(TimeoutError):
            await next_frame(bare, timeout=0.5)


async def notifications_of(api: httpx.AsyncClient, user: dict[str, Any]) -> list[tuple[str, str]]:
    response = await api.get("/api/v1/notifications", headers=bearer(user["tokens"]))
    assert response.status_code == 200, response.text
    return [(n["type"], n["actor"]["id"]) for n in response.json()["notifications"]]


async def test_a_request_notifies_its_recipient_and_its_acceptance_the_requester(
    api: httpx.AsyncClient,
) -> None:
    alice, bob, carol = await register(api), await register(api), await register(api)
    request = (await ask(api, alice, bob)).json()
    assert await notifications_of(api, bob) == [("contact_request", alice["user"]["id"])]
    await decide(api, bob, request["id"], "accept")
    assert await notifications_of(api, alice) == [("contact_accepted", bob["user"]["id"])]
    # Asking someone who asked you first accepts their request: they are told, as above.
    await ask(api, carol, alice)
    await ask(api, alice, carol)
    assert await notifications_of(api, carol) == [("contact_accepted", alice["user"]["id"])]
    notified = await api.get("/api/v1/notifications", headers=bearer(bob["tokens"]))
    assert notified.json()["notifications"][0]["data"] == {"request_id": request["id"]}


async def test_contacts_are_listed_with_their_presence(api: httpx.AsyncClient) -> None:
    alice, bob = await register(api), await register(api)
    request = (await ask(api, alice, bob)).json()
    await decide(api, bob, request["id"], "accept")

    async def bobs_presence() -> dict[str, Any]:
        listed = await api.get(f"{API}/contacts", headers=bearer(alice["tokens"]))
        [contact] = listed.json()["contacts"]
        assert contact["user"]["id"] == bob["user"]["id"]
        presence: dict[str, Any] = contact["presence"]
        return presence

    async def becomes(status: str) -> dict[str, Any]:
        # The server records a socket's presence just after the handshake, and its end just
        # after the close: poll rather than race them.
        for _ in range(50):
            presence = await bobs_presence()
            if presence["status"] == status:
                return presence
            await asyncio.sleep(0.1)
        raise AssertionError(f"bob never became {status}: {presence}")

    assert (await bobs_presence())["status"] == "offline"
    async with connect(ws_url(api, bob["tokens"]["access_token"])):
        online = await becomes("online")
        assert online == {"user_id": bob["user"]["id"], "status": "online", "last_seen_at": None}
    assert (await becomes("offline"))["last_seen_at"] is not None


@pytest.fixture
def warnings_logged(api: httpx.AsyncClient) -> Iterator[list[str]]:
    """The names of the warnings the server (in this process) logs from now on; taken after
    `api`, whose start configures logging afresh and would drop an earlier sink."""
    names: list[str] = []
    sink = logger.add(lambda message: names.append(message.record["message"]), level="WARNING")
    yield names
    logger.remove(sink)


NOTIFICATIONS_REFUSED = """
CREATE FUNCTION refuse_notifications() RETURNS trigger LANGUAGE plpgsql AS
$$ BEGIN RAISE EXCEPTION 'notifications refused by the test'; END $$;
CREATE TRIGGER refuse_notifications BEFORE INSERT ON notifications
    FOR EACH ROW EXECUTE FUNCTION refuse_notifications();
"""


async def test_a_request_whose_notification_cannot_be_stored_is_made_and_heard_all_the_same(
    api: httpx.AsyncClient, db: asyncpg.Connection, warnings_logged: list[str]
) -> None:
    alice, bob = await register(api), await register(api)
    await db.execute(NOTIFICATIONS_REFUSED)
    async with connect(ws_url(api, bob["tokens"]["access_token"])) as bob_ws:
        sent = await ask(api, alice, bob)
        assert sent.status_code == 201, sent.text
        request = sent.json()
        assert (request["status"], request["from"], request["to"]) == (
            "pending",
            ref(alice),
            ref(bob),
        )
        assert await contact_event(bob_ws) == {"event": "contact_request", "request": request}
    assert warnings_logged.count("notification_lost") == 1
    stored = await db.fetchval("SELECT status FROM contact_requests WHERE id = $1", request["id"])
    assert stored == "pending"
    assert await pending(api, bob, "incoming") == [request["id"]]
    assert await notifications_of(api, bob) == []

    # Nothing else was left broken: once PostgreSQL stores notifications again, the
    # acceptance is made and notified as usual.
    await db.execute("DROP TRIGGER refuse_notifications ON notifications")
    accepted = await decide(api, bob, request["id"], "accept")
    assert accepted.status_code == 200, accepted.text
    assert await contact_ids(api, bob) == [alice["user"]["id"]]
    assert await notifications_of(api, alice) == [("contact_accepted", bob["user"]["id"])]
    assert warnings_logged.count("notification_lost") == 1


def presence_event(subject: dict[str, Any]) -> Callable[[dict[str, Any]], bool]:
    return lambda f: f.get("event") == "presence" and f["user_id"] == subject["user"]["id"]


async def test_an_accept_whose_last_seen_redis_cannot_read_still_introduces_the_contacts(
    api: httpx.AsyncClient,
    db: asyncpg.Connection,
    redis: Redis,
    warnings_logged: list[str],
) -> None:
    alice, bob = await register(api), await register(api)
    request = (await ask(api, alice, bob)).json()
    async with (
        connect(ws_url(api, alice["tokens"]["access_token"])) as alice_ws,
        connect(ws_url(api, bob["tokens"]["access_token"])) as bob_ws,
    ):
        for socket in (alice_ws, bob_ws):
            await next_frame(socket, lambda f: f.get("event") == "presence_list")
        # Introducing bob to alice reads bob's last-seen key: a list there fails that read
        # with WRONGTYPE. It is logged; his sockets, read apart, still say he is online.
        seen_key = keys.presence_seen(uuid.UUID(bob["user"]["id"]))
        await redis.rpush(seen_key, "not a time")
        accepted = await decide(api, bob, request["id"], "accept")
        assert accepted.status_code == 200, accepted.text
        assert accepted.json()["status"] == "accepted"
        assert warnings_logged.count("presence_unreadable") == 1
        assert "presence_not_introduced" not in warnings_logged
        online = await next_frame(alice_ws, presence_event(bob))
        assert (online["status"], online["last_seen_at"]) == ("online", None)
        rows = await db.fetch(
            "SELECT user_id FROM contacts WHERE $1::uuid IN (user_id, contact_id)",
            alice["user"]["id"],
        )
        assert len(rows) == 2  # one per direction
        assert await contact_ids(api, bob) == [alice["user"]["id"]]
        assert await notifications_of(api, alice) == [("contact_accepted", bob["user"]["id"])]

        # Once the key is right again, presence works between the new contacts.
        await redis.delete(seen_key)
        listed = await api.get(f"{API}/contacts", headers=bearer(alice["tokens"]))
        [contact] = listed.json()["contacts"]
        assert (contact["user"]["id"], contact["presence"]["status"]) == (
            bob["user"]["id"],
            "online",
        )
        await bob_ws.close()
        gone = await next_frame(alice_ws, presence_event(bob))
        assert gone["status"] == "offline" and gone["last_seen_at"] is not None


async def test_contacts_are_listed_when_a_contacts_presence_keys_hold_the_wrong_type(
    api: httpx.AsyncClient, redis: Redis, warnings_logged: list[str]
) -> None:
    alice, bob, carol = await register(api), await register(api), await register(api)
    for friend in (bob, carol):
        request = (await ask(api, alice, friend)).json()
        await decide(api, friend, request["id"], "accept")
    async with connect(ws_url(api, carol["tokens"]["access_token"])) as carol_ws:
        await next_frame(carol_ws, lambda f: f.get("event") == "presence_list")
        # Both of bob's keys hold something no presence command can read: WRONGTYPE.
        await redis.set(keys.presence(uuid.UUID(bob["user"]["id"])), "not a sorted set")
        await redis.rpush(keys.presence_seen(uuid.UUID(bob["user"]["id"])), "not a time")
        listed = await api.get(f"{API}/contacts", headers=bearer(alice["tokens"]))
        assert listed.status_code == 200, listed.text
        presence = {c["user"]["id"]: c["presence"] for c in listed.json()["contacts"]}
        # Bob's presence is unknown, shown as offline; carol's keys are read as ever.
        assert presence[bob["user"]["id"]] == {
            "user_id": bob["user"]["id"],
            "status": "offline",
            "last_seen_at": None,
        }
        assert presence[carol["user"]["id"]]["status"] == "online"
    assert warnings_logged.count("presence_unreadable") == 1
