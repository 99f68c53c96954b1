"""History pages: keyset on seq, PostgreSQL merged with the recent cache, no holes, no repeats."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx
import pytest
from redis.asyncio import Redis

from gochat_py.ids import ConversationId, UserId, uuid7
from gochat_py.postgres.conversations import Conversations
from gochat_py.redis.publish import Publisher
from tests.harness import bearer, create_direct, register

PATH = "/api/v1/conversations/{}/messages"


async def persist(
    db: asyncpg.Connection, conversation_id: str, sender_id: str, seqs: range
) -> None:
    """Rows as the worker writes them, with seq 1..n."""
    now = datetime.now(UTC)
    await db.executemany(
        "INSERT INTO messages (id, conversation_id, seq, sender_id, content, sent_at)"
        " VALUES ($1, $2, $3, $4, $5, $6)",
        [
            (uuid7(), uuid.UUID(conversation_id), s, uuid.UUID(sender_id), f"m{s}", now)
            for s in seqs
        ],
    )
    await db.execute(
        "UPDATE conversations SET last_seq = $2 WHERE id = $1", uuid.UUID(conversation_id), seqs[-1]
    )


async def publish(
    redis: Redis, database_url: str, conversation_id: str, sender: dict[str, Any], count: int
) -> list[int]:
    """Sends through the real send script; nothing persists them (no worker runs)."""
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    try:
        publisher = Publisher(redis, 1, Conversations(pool).highest_seq, recent_max=100_000)
        seqs = []
        for i in range(count):
            sender_id = UserId(uuid.UUID(sender["id"]))
            sent = await publisher.send(
                ConversationId(uuid.UUID(conversation_id)), frozenset({sender_id}),
                sender_id, sender["username"], f"live{i}", None,
            )  # fmt: skip
            seqs.append(sent.message.seq)
        return seqs
    finally:
        await pool.close()


async def all_pages(
    api: httpx.AsyncClient, tokens: Any, conversation_id: str, **params: str
) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    query: dict[str, str] = dict(params)
    for _ in range(1000):
        response = await api.get(PATH.format(conversation_id), params=query, headers=bearer(tokens))
        assert response.status_code == 200, response.text
        body = response.json()
        messages += body["messages"]
        assert body["has_more"] is (body["next_cursor"] is not None)
        if body["next_cursor"] is None:
            return messages
        query = {"limit": params.get("limit", "50"), "cursor": body["next_cursor"]}
    raise AssertionError("paging did not end")


@pytest.fixture
async def chat(api: httpx.AsyncClient) -> tuple[dict[str, Any], dict[str, Any], str]:
    alice, bob = await register(api), await register(api)
    return alice, bob, (await create_direct(api, alice["tokens"], bob["user"]["id"]))["id"]


async def test_500_messages_page_newest_first_each_exactly_once(
    api: httpx.AsyncClient, db: asyncpg.Connection, redis: Redis, database_url: str,
    chat: tuple[dict[str, Any], dict[str, Any], str],
) -> None:  # fmt: skip
    alice, bob, conversation_id = chat
    # 300 persisted, 200 only in Redis (the worker is behind): one history all the same.
    await persist(db, conversation_id, alice["user"]["id"], range(1, 301))
    assert await publish(redis, database_url, conversation_id, alice["user"], 200) == list(
        range(301, 501)
    )
    messages = await all_pages(api, bob["tokens"], conversation_id, limit="37")
    assert [m["seq"] for m in messages] == list(range(500, 0, -1))
    assert len({m["id"] for m in messages}) == 500


async def test_a_message_persisted_and_still_cached_appears_once(
    api: httpx.AsyncClient, db: asyncpg.Connection, redis: Redis, database_url: str,
    chat: tuple[dict[str, Any], dict[str, Any], str],
) -> None:  # fmt: skip
    alice, bob, conversation_id = chat
    await publish(redis, database_url, conversation_id, alice["user"], 5)
    cached = (await api.get(PATH.format(conversation_id), headers=bearer(bob["tokens"]))).json()
    # The worker persists those same five (same ids) while they stay in the cache.
    now = datetime.now(UTC)
    await db.executemany(
        "INSERT INTO messages (id, conversation_id, seq, sender_id, content, sent_at)"
        " VALUES ($1, $2, $3, $4, $5, $6)",
        [(uuid.UUID(m["id"]), uuid.UUID(conversation_id), m["seq"], uuid.UUID(m["sender_id"]),
          m["content"], now) for m in cached["messages"]],
    )  # fmt: skip
    after = (await api.get(PATH.format(conversation_id), headers=bearer(bob["tokens"]))).json()
    assert [m["seq"] for m in after["messages"]] == [5, 4, 3, 2, 1]
    assert after["next_cursor"] is None


async def test_the_last_page_has_no_cursor_and_an_empty_conversation_is_empty(
    api: httpx.AsyncClient, chat: tuple[dict[str, Any], dict[str, Any], str]
) -> None:
    alice, _, conversation_id = chat
    body = (await api.get(PATH.format(conversation_id), headers=bearer(alice["tokens"]))).json()
    assert body == {"messages": [], "next_cursor": None, "has_more": False}


async def test_after_seq_pages_forward_to_fill_a_gap(
    api: httpx.AsyncClient, db: asyncpg.Connection, redis: Redis, database_url: str,
    chat: tuple[dict[str, Any], dict[str, Any], str],
) -> None:  # fmt: skip
    alice, bob, conversation_id = chat
    await persist(db, conversation_id, alice["user"]["id"], range(1, 101))
    await publish(redis, database_url, conversation_id, alice["user"], 20)
    messages = await all_pages(api, bob["tokens"], conversation_id, after_seq="90", limit="7")
    assert [m["seq"] for m in messages] == list(range(91, 121))


@pytest.mark.parametrize(
    ("params", "more"),
    [
        pytest.param({"limit": "4"}, True, id="newest first, older ones left"),
        pytest.param({"limit": "5"}, False, id="newest first, the whole history"),
        pytest.param({"cursor": "WyJiZWZvcmUiLDVd", "limit": "3"}, True, id="before 5, 1 left"),
        pytest.param({"cursor": "WyJiZWZvcmUiLDVd", "limit": "4"}, False, id="before 5, to 1"),
        pytest.param({"after_seq": "1", "limit": "3"}, True, id="after 1, one left"),
        pytest.param({"after_seq": "1", "limit": "4"}, False, id="after 1, up to the newest"),
        pytest.param({"after_seq": "5"}, False, id="after the newest"),
    ],
)
async def test_has_more_says_whether_another_page_follows_in_either_direction(
    api: httpx.AsyncClient, db: asyncpg.Connection, redis: Redis, database_url: str,
    chat: tuple[dict[str, Any], dict[str, Any], str], params: dict[str, str], more: bool,
) -> None:  # fmt: skip
    alice, bob, conversation_id = chat
    # Three stored, two only in the cache: the flag must count both sides.
    await persist(db, conversation_id, alice["user"]["id"], range(1, 4))
    await publish(redis, database_url, conversation_id, alice["user"], 2)
    response = await api.get(
        PATH.format(conversation_id), params=params, headers=bearer(bob["tokens"])
    )
    body = response.json()
    assert (body["has_more"], body["next_cursor"] is not None) == (more, more), body


@pytest.mark.parametrize(
    ("params", "code"),
    [
        pytest.param({"limit": "0"}, "invalid_limit", id="limit 0"),
        pytest.param({"limit": "101"}, "invalid_limit", id="limit over the maximum"),
        pytest.param({"limit": "-3"}, "invalid_limit", id="a negative limit"),
        pytest.param({"limit": "ten"}, "invalid_limit", id="a limit in words"),
        pytest.param({"limit": "\u00b2"}, "invalid_limit", id="a limit of a superscript digit"),
        pytest.param({"cursor": "@@@"}, "invalid_cursor", id="a cursor that is not base64"),
        pytest.param({"cursor": "bm90IGpzb24"}, "invalid_cursor", id="a cursor that is not JSON"),
        pytest.param({"after_seq": "-1"}, "invalid_parameter", id="a negative after_seq"),
        pytest.param({"after_seq": "x"}, "invalid_parameter", id="an after_seq in letters"),
        pytest.param(
            {"after_seq": str(2**63)},
            "invalid_parameter",
            id="an after_seq past PostgreSQL's bigint",
        ),
        pytest.param(
            {"after_seq": "\u00b2"}, "invalid_parameter", id="an after_seq in a digit int() refuses"
        ),
        pytest.param(
            {"after_seq": "1", "cursor": "WyJiZWZvcmUiLDVd"},
            "invalid_parameter",
            id="after_seq and a cursor together",
        ),
    ],
)
async def test_each_bad_paging_parameter_is_a_400_with_its_own_code(
    api: httpx.AsyncClient,
    chat: tuple[dict[str, Any], dict[str, Any], str],
    params: dict[str, str],
    code: str,
) -> None:
    alice, _, conversation_id = chat
    response = await api.get(
        PATH.format(conversation_id), params=params, headers=bearer(alice["tokens"])
    )
    assert (response.status_code, response.json()["error"]["code"]) == (400, code), response.text


async def test_the_list_shows_the_last_message_and_unread_count_before_persistence(
    api: httpx.AsyncClient, db: asyncpg.Connection, redis: Redis, database_url: str,
    chat: tuple[dict[str, Any], dict[str, Any], str],
) -> None:  # fmt: skip
    alice, bob, conversation_id = chat
    await persist(db, conversation_id, alice["user"]["id"], range(1, 4))
    await publish(redis, database_url, conversation_id, alice["user"], 2)
    listed = (await api.get("/api/v1/conversations", headers=bearer(bob["tokens"]))).json()
    [item] = listed["conversations"]
    assert item["last_message"]["content"] == "live1"
    assert item["conversation"]["last_seq"] == 5
    assert item["unread_count"] == 5
    # The cached message is the newest activity, in both gochat's name and ours.
    newest = item["last_message"]["sent_at"]
    assert item["conversation"]["updated_at"] == item["conversation"]["last_activity_at"] == newest
    own = (await api.get("/api/v1/conversations", headers=bearer(alice["tokens"]))).json()
    assert own["conversations"][0]["unread_count"] == 0  # your own messages are not unread


async def test_the_list_orders_by_recent_activity(
    api: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    alice = await register(api)
    ids = []
    for _ in range(3):
        other = await register(api)
        ids.append((await create_direct(api, alice["tokens"], other["user"]["id"]))["id"])
    await db.execute(
        "UPDATE conversations SET last_activity_at = now() + interval '1 hour' WHERE id = $1",
        uuid.UUID(ids[0]),
    )
    listed = (await api.get("/api/v1/conversations", headers=bearer(alice["tokens"]))).json()
    assert [c["conversation"]["id"] for c in listed["conversations"]] == [ids[0], ids[2], ids[1]]
