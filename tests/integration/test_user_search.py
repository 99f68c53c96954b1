"""User search's bounded pages on real PostgreSQL: a common name paged to its end lists every
match once, in order, however many rows its tiers skip; no cursor makes one request read
more than a window of each index it walks."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import asyncpg
import httpx
import pytest
from asyncpg.connection import LoggedQuery

from gochat_py.ids import UserId
from gochat_py.postgres import user_search
from gochat_py.postgres.user_search import (
    CANDIDATES_MAX,
    FIRST_ID,
    PLANNER_SETTINGS,
    WINDOW,
    Position,
    Tier,
    UserSearch,
)
from tests.harness import bearer, register

Q = "anna"
# More "Anna …" display names of users already listed by their usernames than one window
# holds, and more trigram candidates for "anna" than the substring tier takes at once.
LISTED_BY_USERNAME = 3 * WINDOW
# Rows read by one statement at most: a window, or the candidates plus the one that says
# there are more.
READ_MAX = max(WINDOW, CANDIDATES_MAX + 1)

# Usernames and display names made from the row number g: (username, display name).
POPULATION = [
    ("'anna'", "NULL", 1),  # exact
    ("'anna_' || g", "'Anna ' || g", LISTED_BY_USERNAME),  # username prefix, listed once
    ("'dp_' || g", "'Anna D' || g", 40),  # display prefix, among the skipped ones
    ("'jo' || 'anna_' || g", "NULL", 30),  # inside a username
    ("'in_' || g", "'Hi Anna ' || g", 30),  # inside a display name
    ("'zed_' || g", "'Zed ' || g", 2500),  # no match: what the id walk reads past
]


async def populate(
    db: asyncpg.Connection, population: list[tuple[str, str, int]] = POPULATION
) -> None:
    for username, display_name, count in population:
        await db.execute(
            "INSERT INTO users (id, email, username, password_hash, display_name)"
            f" SELECT gen_random_uuid(), {username} || '@search.test', {username}, '-',"
            f" {display_name} FROM generate_series(1, $1::int) AS g",
            count,
        )
    await db.execute("ANALYZE users")


def tier_of(username: str, display_name: str | None) -> tuple[Tier, str] | None:
    """The tier and sort key of a user for Q, from the rules (postgres/user_search.py)."""
    name, shown = username.lower(), (display_name or "").lower()
    if name == Q:
        return Tier.EXACT, name
    if name.startswith(Q):
        return Tier.USERNAME_PREFIX, name
    if shown.startswith(Q):
        return Tier.DISPLAY_PREFIX, shown
    if Q in name or Q in shown:
        return Tier.SUBSTRING, ""
    return None


async def expected_order(db: asyncpg.Connection, searcher: str) -> list[str]:
    ranked = []
    for row in await db.fetch("SELECT id, username, display_name FROM users WHERE id <> $1",
                              uuid.UUID(searcher)):  # fmt: skip
        if (place := tier_of(row["username"], row["display_name"])) is not None:
            ranked.append((place[0], place[1], row["id"]))
    # Keys compare as "C" does, bytewise in UTF-8: code point order, as Python's str does.
    return [str(user_id) for _, _, user_id in sorted(ranked)]


async def test_paging_a_common_name_to_its_end_lists_every_match_once_in_order(
    api: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    searcher = await register(api)
    await populate(db)
    expected = await expected_order(db, searcher["user"]["id"])
    assert len(expected) == 1 + LISTED_BY_USERNAME + 40 + 30 + 30
    seen: list[str] = []
    short_pages = 0
    cursor = None
    for _ in range(200):
        params = {"q": Q, "limit": "50"} | ({"cursor": cursor} if cursor else {})
        response = await api.get("/api/v1/users", params=params, headers=bearer(searcher["tokens"]))
        assert response.status_code == 200, response.text
        page = response.json()
        assert len(page["users"]) <= 50
        seen += [user["id"] for user in page["users"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
        short_pages += len(page["users"]) < 50
    else:
        raise AssertionError("paging did not end")
    assert seen == expected
    assert short_pages > 0  # the windows ran out before some pages were full


async def test_a_page_stopped_by_a_window_resumes_after_the_last_row_it_read(
    db: asyncpg.Connection, searcher: UserId, search: UserSearch
) -> None:
    await populate(db)
    # Past the usernames: the next WINDOW display names are nearly all skipped.
    searched = await search.page(searcher, Q, PAST_USERNAMES, 51)
    assert searched.stopped_at is not None
    assert searched.stopped_at.tier == Tier.DISPLAY_PREFIX
    assert len(searched.found) < 51
    keys = [found.position.key for found in searched.found]
    assert all(key <= searched.stopped_at.key for key in keys)
    # The row it stopped at was read, not listed: the display names of the window's rows.
    read = await db.fetchval(
        'SELECT count(*) FROM users WHERE lower(display_name) COLLATE "C" >= $1'
        ' AND lower(display_name) COLLATE "C" <= $2',
        Q,
        searched.stopped_at.key,
    )
    assert read == WINDOW


PAST_USERNAMES = Position(Tier.USERNAME_PREFIX, Q + chr(0x10FFFF), FIRST_ID)
CRAFTED = [
    pytest.param(None, id="first page"),
    pytest.param(PAST_USERNAMES, id="past the usernames"),
    pytest.param(Position(Tier.DISPLAY_PREFIX, "", FIRST_ID), id="display tier from its start"),
    pytest.param(Position(Tier.DISPLAY_PREFIX, "anna 1", FIRST_ID), id="inside the display tier"),
    pytest.param(Position(Tier.SUBSTRING, "", FIRST_ID), id="substring tier from its start"),
]


@pytest.fixture
async def searcher(db: asyncpg.Connection) -> UserId:
    user_id: uuid.UUID = await db.fetchval(
        "INSERT INTO users (id, email, username, password_hash) VALUES"
        " (gen_random_uuid(), 'searcher@search.test', 'searcher', '-') RETURNING id"
    )
    return UserId(user_id)


@pytest.fixture
def statements() -> list[LoggedQuery]:
    return []


@pytest.fixture
async def search(database_url: str, statements: list[LoggedQuery]) -> AsyncIterator[UserSearch]:
    """The search on a pool whose connection records every statement it runs."""

    async def record(conn: asyncpg.Connection) -> None:
        conn.add_query_logger(statements.append)

    pool = await asyncpg.create_pool(
        database_url, min_size=1, max_size=1, init=record, server_settings=PLANNER_SETTINGS
    )
    yield UserSearch(pool)
    await pool.close()


@pytest.fixture
async def replay(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection with the search's own planner settings, to replay its statements."""
    conn = await asyncpg.connect(database_url, server_settings=PLANNER_SETTINGS)
    yield conn
    await conn.close()


def rows_of_users(node: dict[str, Any]) -> Iterator[int]:
    """The rows each scan of `users` in a plan read: kept, filtered out or rechecked away."""
    if node.get("Relation Name") == "users":
        yield (
            node["Actual Rows"] * node["Actual Loops"]
            + node.get("Rows Removed by Filter", 0)
            + node.get("Rows Removed by Index Recheck", 0)
        )
    for child in node.get("Plans", []):
        yield from rows_of_users(child)


async def rows_read(db: asyncpg.Connection, statements: list[LoggedQuery]) -> list[int]:
    """Each search statement replayed under EXPLAIN ANALYZE, in its transaction and with its
    settings: the rows of `users` it read."""
    await asyncio.sleep(0)  # query loggers are called soon after their statement
    read = []
    for statement in statements:
        first = statement.query.split()[0].rstrip(";").upper()
        if first in ("BEGIN", "SET", "COMMIT"):
            await db.execute(statement.query)
        elif first == "SELECT" and "FROM users u" in statement.query:
            plan = await db.fetchval(
                f"EXPLAIN (ANALYZE, FORMAT JSON) {statement.query}", *statement.args
            )
            read.append(sum(rows_of_users(json.loads(plan)[0]["Plan"])))
    return read


@pytest.mark.parametrize("after", CRAFTED)
async def test_no_cursor_makes_a_request_read_more_than_a_window_per_tier(
    db: asyncpg.Connection,
    replay: asyncpg.Connection,
    searcher: UserId,
    search: UserSearch,
    statements: list[LoggedQuery],
    after: Position | None,
) -> None:
    await populate(db)
    # Unbounded, this dataset makes the display tier read its LISTED_BY_USERNAME skipped
    # names and the substring tier's candidates all of theirs.
    assert LISTED_BY_USERNAME > READ_MAX
    await search.page(searcher, Q, after, 51)
    read = await rows_read(replay, statements)
    assert read, "no statement recorded"
    assert len(read) <= len(user_search.Tier) + 1  # a statement a tier, and the candidates
    assert max(read) <= READ_MAX, read


async def test_rare_matches_inside_names_come_whole_from_the_trigram_candidates(
    db: asyncpg.Connection, searcher: UserId, search: UserSearch, statements: list[LoggedQuery]
) -> None:
    # Too few inside a window of ids to fill a page: the tier asks the trigram indexes.
    await populate(db, [("'rare_qwx_' || g", "NULL", 20), ("'zed_' || g", "NULL", 2 * WINDOW)])
    searched = await search.page(searcher, "qwx", None, 51)
    expected = await db.fetch("SELECT id FROM users WHERE username LIKE 'rare_qwx_%' ORDER BY id")
    assert [found.profile.id for found in searched.found] == [row["id"] for row in expected]
    assert searched.stopped_at is None
    await asyncio.sleep(0)  # query loggers are called soon after their statement
    assert any("count(*) OVER ()" in statement.query for statement in statements)
