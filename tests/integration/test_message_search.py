"""Message search over HTTP on real PostgreSQL, messages stored by the real worker: what each
kind of query finds, members only, deleted and edited messages, paging both ways a page is
found, and hostile queries."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import httpx
from redis.asyncio import Redis

from gochat_py.redis.backlog import read_backlog
from gochat_py.settings import Settings
from tests.harness import bearer, create_group, poll_until, register
from tests.stream_traffic import running_consumer

Pair = tuple[dict[str, Any], dict[str, Any], str]
SEARCH = "/api/v1/search/messages"


def messages_url(conversation_id: str, message_id: str | None = None) -> str:
    base = f"/api/v1/conversations/{conversation_id}/messages"
    return base if message_id is None else f"{base}/{message_id}"


async def send(
    api: httpx.AsyncClient, user: dict[str, Any], conversation_id: str, text: str
) -> Any:
    response = await api.post(
        messages_url(conversation_id), json={"content": text}, headers=bearer(user["tokens"])
    )
    assert response.status_code == 201, response.text
    return response.json()


async def store_all(settings: Settings, redis: Redis) -> None:
    """Run the worker until every entry sent so far is read, committed and acknowledged."""
    partitions = settings.stream_partitions
    async with running_consumer(settings.redis_url, settings.database_url, partitions=partitions):

        async def stored() -> bool:
            backlog = await read_backlog(redis, partitions)
            return backlog.finished == backlog.messages_total and backlog.dead_letters == 0

        await poll_until(stored, what="every entry stored")


async def search(
    api: httpx.AsyncClient, user: dict[str, Any], q: str, **params: str
) -> httpx.Response:
    return await api.get(SEARCH, params={"q": q, **params}, headers=bearer(user["tokens"]))


async def found(api: httpx.AsyncClient, user: dict[str, Any], q: str, **params: str) -> list[str]:
    """The contents found, newest first, every page followed."""
    contents: list[str] = []
    cursor: str | None = None
    while True:
        extra = {**params, "cursor": cursor} if cursor else params
        response = await search(api, user, q, **extra)
        assert response.status_code == 200, response.text
        body = response.json()
        contents += [r["message"]["content"] for r in body["results"]]
        cursor = body["next_cursor"]
        if cursor is None:
            return contents


async def test_words_phrases_prefixes_and_exclusions_find_what_they_say(
    api: httpx.AsyncClient, pair: Pair, settings: Settings, redis: Redis, db: asyncpg.Connection
) -> None:
    alice, bob, conversation_id = pair
    texts = [
        "the quick brown fox",
        "quick thinking saves the day",
        "brown bread for breakfast",
        "a foxhole in the garden",
        "quick, brown dogs!",
    ]
    for text in texts:
        await send(api, alice, conversation_id, text)
    await store_all(settings, redis)
    assert await found(api, bob, "quick") == [texts[4], texts[1], texts[0]]
    assert await found(api, bob, "QUICK brown") == [texts[4], texts[0]]
    assert await found(api, bob, '"brown fox"') == [texts[0]]
    assert await found(api, bob, '"fox brown"') == []
    assert await found(api, bob, "fox*") == [texts[3], texts[0]]
    assert await found(api, bob, "fox") == [texts[0]]
    assert await found(api, bob, "quick -fox") == [texts[4], texts[1]]
    assert await found(api, bob, 'quick -"brown dogs"') == [texts[1], texts[0]]
    [result] = (await search(api, bob, '"brown fox"')).json()["results"]
    assert result["message"]["sender_id"] == alice["user"]["id"]
    assert {"text": "brown", "match": True} in result["highlight"]
    assert {"text": "fox", "match": True} in result["highlight"]
    assert "".join(f["text"] for f in result["highlight"]) == texts[0]


async def test_text_without_spaces_and_two_letter_words_are_found(
    api: httpx.AsyncClient, pair: Pair, settings: Settings, redis: Redis, db: asyncpg.Connection
) -> None:
    alice, bob, conversation_id = pair
    await send(api, alice, conversation_id, "明日は東京で会いましょう")
    await send(api, alice, conversation_id, "ok see you at 5")
    await send(api, alice, conversation_id, "我们在北京见面")
    await store_all(settings, redis)
    assert await found(api, bob, "東京") == ["明日は東京で会いましょう"]
    assert await found(api, bob, "北京见") == ["我们在北京见面"]
    assert await found(api, bob, "ok") == ["ok see you at 5"]
    [result] = (await search(api, bob, "東京")).json()["results"]
    assert result["highlight"] == [
        {"text": "明日は", "match": False},
        {"text": "東京", "match": True},
        {"text": "で会いましょう", "match": False},
    ]


async def test_deleted_messages_are_never_found_and_edited_ones_by_their_new_text(
    api: httpx.AsyncClient, pair: Pair, settings: Settings, redis: Redis, db: asyncpg.Connection
) -> None:
    alice, bob, conversation_id = pair
    doomed = await send(api, alice, conversation_id, "secret plans for the heist")
    typo = await send(api, alice, conversation_id, "meet at the libary")
    await send(api, alice, conversation_id, "plans for lunch")
    await store_all(settings, redis)
    deleted = await api.delete(
        messages_url(conversation_id, doomed["id"]), headers=bearer(alice["tokens"])
    )
    assert deleted.status_code == 204
    edited = await api.patch(
        messages_url(conversation_id, typo["id"]),
        json={"content": "meet at the library"},
        headers=bearer(alice["tokens"]),
    )
    assert edited.status_code == 200
    # Before the worker stores the changes, PostgreSQL still holds the old texts: the
    # recent cache's changes leave both messages out.
    assert await found(api, bob, "heist") == []
    assert await found(api, bob, "libary") == []
    assert await found(api, bob, "plans") == ["plans for lunch"]
    await store_all(settings, redis)
    assert await found(api, bob, "plans") == ["plans for lunch"]
    assert await found(api, bob, "heist") == []
    assert await found(api, bob, "library") == ["meet at the library"]
    assert await found(api, bob, "libary") == []


async def test_system_messages_are_never_found(
    api: httpx.AsyncClient, settings: Settings, redis: Redis, db: asyncpg.Connection
) -> None:
    alice, bob = await register(api), await register(api)
    group = await create_group(api, alice["tokens"], "Zanzibar trip", [bob["user"]["id"]])
    await send(api, alice, group["id"], "who is coming to Zanzibar")
    await store_all(settings, redis)
    assert await db.fetchval("SELECT count(*) FROM messages WHERE type = 'system'") >= 1
    assert await found(api, bob, "zanzibar") == ["who is coming to Zanzibar"]
    assert await found(api, bob, "created") == []


async def test_members_only_a_member_who_left_finds_nothing_there_and_a_stranger_gets_404(
    api: httpx.AsyncClient, settings: Settings, redis: Redis, db: asyncpg.Connection
) -> None:
    alice, bob, carol = await register(api), await register(api), await register(api)
    group = await create_group(api, alice["tokens"], "planning", [bob["user"]["id"]])
    await send(api, alice, group["id"], "the password is swordfish")
    await store_all(settings, redis)
    assert await found(api, bob, "swordfish") == ["the password is swordfish"]
    assert await found(api, carol, "swordfish") == []
    stranger = await search(api, carol, "swordfish", conversation_id=group["id"])
    assert stranger.status_code == 404
    assert stranger.json()["error"]["code"] == "conversation_not_found"
    assert "swordfish" not in stranger.text
    nowhere = await search(api, carol, "swordfish", conversation_id=str(uuid.uuid4()))
    assert nowhere.status_code == 404
    left = await api.delete(
        f"/api/v1/conversations/{group['id']}/members/{bob['user']['id']}",
        headers=bearer(bob["tokens"]),
    )
    assert left.status_code == 204, left.text
    assert await found(api, bob, "swordfish") == []
    gone = await search(api, bob, "swordfish", conversation_id=group["id"])
    assert gone.status_code == 404
    assert "swordfish" not in gone.text
    assert await found(api, alice, "swordfish", conversation_id=group["id"]) == [
        "the password is swordfish"
    ]


async def _fill(
    db: asyncpg.Connection, conversation_id: str, sender: str, rows: int, spacing_ms: int
) -> None:
    """`rows` stored messages straight in PostgreSQL, `spacing_ms` apart, the last one at the
    same moment in every conversation; one in 250 holds "needle"."""
    await db.execute(
        "INSERT INTO messages (id, conversation_id, seq, sender_id, content, sent_at)"
        " SELECT gen_random_uuid(), $1, g, $2,"
        " CASE WHEN g % 250 = 0 THEN 'needle ' || g ELSE 'hay ' || g END,"
        " '2026-01-01'::timestamptz - ($3::int - g) * $4::int * interval '1 millisecond'"
        " FROM generate_series(1, $3::int) AS g",
        uuid.UUID(conversation_id),
        uuid.UUID(sender),
        rows,
        spacing_ms,
    )
    await db.execute(
        "UPDATE conversations SET last_seq = $2 WHERE id = $1", uuid.UUID(conversation_id), rows
    )


async def _pages(
    api: httpx.AsyncClient, user: dict[str, Any], q: str, limit: int
) -> tuple[list[str], int]:
    """Every match, page by page, and how many pages came back short but with a cursor."""
    contents: list[str] = []
    short = 0
    cursor: str | None = None
    while True:
        params = {"limit": str(limit), **({"cursor": cursor} if cursor else {})}
        body = (await search(api, user, q, **params)).json()
        contents += [r["message"]["content"] for r in body["results"]]
        cursor = body["next_cursor"]
        if cursor is None:
            return contents, short
        short += len(body["results"]) < limit


async def test_paging_lists_every_match_once_in_order_whichever_way_a_page_is_found(
    api: httpx.AsyncClient, pair: Pair, db: asyncpg.Connection
) -> None:
    alice, bob, conversation_id = pair
    group = await create_group(api, alice["tokens"], "hay", [bob["user"]["id"]])
    # No statistics until the test asks for them.
    await db.execute("ALTER TABLE messages SET (autovacuum_enabled = off)")
    # A busy conversation (a message a millisecond) beside a slow one (one a second): the
    # same number of rows reaches much further back in time in the slow one.
    await _fill(db, conversation_id, alice["user"]["id"], 12_000, 1)
    await _fill(db, group["id"], alice["user"]["id"], 12_000, 1000)
    needles = [
        row["content"]
        for row in await db.fetch(
            "SELECT content FROM messages WHERE content LIKE 'needle%'"
            " ORDER BY sent_at DESC, id DESC"
        )
    ]
    assert len(needles) == 96
    # Without statistics the planner counts "needle" as common: each page walks each
    # conversation's newest rows, a window of 2,000 each (8 needles), and ends where the
    # first window ran out, short, its cursor there: the slow conversation's needles below
    # that wait for the pages that walk the busy one down to them.
    walked, short = await _pages(api, bob, "needle", 20)
    assert walked == needles
    assert short > 0
    # With them, "needle" is rare: pages come from the words index, full and exact.
    await db.execute("ANALYZE messages")
    indexed, short = await _pages(api, bob, "needle", 20)
    assert indexed == needles
    assert short == 0


async def test_bad_input_is_refused_with_its_reason(api: httpx.AsyncClient, pair: Pair) -> None:
    _, bob, _ = pair
    cases = [
        ({"q": ""}, 422, "invalid_query"),
        ({"q": "   "}, 422, "invalid_query"),
        ({}, 422, "invalid_query"),
        ({"q": "x" * 201}, 422, "invalid_query"),
        ({"q": "-alone"}, 422, "invalid_query"),
        ({"q": "tab\there"}, 422, "invalid_query"),
        ({"q": "fine", "cursor": "garbage!"}, 400, "invalid_cursor"),
        ({"q": "fine", "limit": "0"}, 400, "invalid_limit"),
        ({"q": "fine", "limit": "51"}, 400, "invalid_limit"),
        ({"q": "fine", "conversation_id": "nope"}, 400, "invalid_parameter"),
    ]
    for params, status, code in cases:
        response = await api.get(SEARCH, params=params, headers=bearer(bob["tokens"]))
        assert response.status_code == status, (params, response.text)
        assert response.json()["error"]["code"] == code, params
    api.cookies.clear()  # registering left the session cookies of the last one registered
    assert (await api.get(SEARCH, params={"q": "fine"})).status_code == 401


async def test_hostile_queries_never_fail_the_server(
    api: httpx.AsyncClient, pair: Pair, settings: Settings, redis: Redis, db: asyncpg.Connection
) -> None:
    alice, bob, conversation_id = pair
    await send(api, alice, conversation_id, "it's a back\\slash & a 'quote' | or ! not")
    await store_all(settings, redis)
    hostile = [
        "'",
        "''",
        '"',
        '"""',
        "\\",
        "\\'",
        "it's",
        ":*",
        "a:*",
        "a:*b",
        "&|!",
        "! & | <-> ( )",
        "a <-> b",
        "'a' & 'b'",
        "x' | 'y",
        "quote:A",
        "-",
        "--x y",
        "*",
        "**",
        '"unterminated',
        "a" * 200,
        ("word " * 40).strip(),
        "a " * 17,
        "%_%",
        "東京' & '",
        "); DROP TABLE messages; --",
    ]
    for q in hostile:
        response = await search(api, bob, q)
        assert response.status_code in (200, 422), (q, response.text)
    assert await found(api, bob, "it's") == ["it's a back\\slash & a 'quote' | or ! not"]
    assert await found(api, bob, "back\\slash") == ["it's a back\\slash & a 'quote' | or ! not"]
    assert await db.fetchval("SELECT count(*) FROM messages") == 1
