"""Scenario 5, user search: does `GET /users?q=` at 1,000,000 users cost what it does at 10,000,
for a 2-character prefix, a common and a rare name, a substring, and the page after a common
name's usernames? And how many requests does that deep page take to reach the end?

`python -m bench.user_search [--users N] [--requests N]` from the repo root: fills two
databases straight in PostgreSQL (generate_series, seconds), starts an API server on each,
times sequential searches on one keep-alive connection per server, interleaved so that the
shared machine's noise falls on both alike, prints a table with each query's plan (the
indexes it used, its fastest execution) and appends one JSON line to
bench/results/user_search.jsonl.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import uvloop
from asyncpg.connection import LoggedQuery

from bench.plans import PLAN_RUNS, explain_analyze
from bench.results import latency_summary, record
from bench.stack import bench_stack
from gochat_py import cursors
from gochat_py.ids import UserId
from gochat_py.postgres import user_search
from gochat_py.postgres.migrate import run as migrate

BIG_USERS = 1_000_000
SMALL_USERS = 10_000
PAGE = 20  # the API's default
REQUESTS = 500  # per (query, database)
WARMUP = 20  # per (query, database), not recorded: connections, prepared and generic plans
TARGET_RATIO = 2.0  # p99 at 1M over p99 at 10k
PASSWORD = "bench-user-search-password"
SEARCH_MIGRATION = 3  # database/migrations/0003_user_search: the indexes of search

# Ids are random, as registration makes them (uuid4): the heap order of a run of ids is too.
# Names from two short lists, crossed: realistic repetition (many "anna", many "smith"),
# and a number that makes each username unique. Seven in ten users set a display name.
FIRST = (
    "anna", "ben", "carla", "david", "elena", "felix", "greta", "hugo", "ines", "jonas",
    "karin", "lukas", "maria", "nico", "olga", "paul", "quinn", "rosa", "simon", "tara",
    "ulrich", "vera", "walter", "xenia", "yusuf", "zoe", "mark", "martin", "marta", "max",
)  # fmt: skip
LAST = (
    "smith", "jones", "miller", "schmidt", "garcia", "rossi", "novak", "kowalski", "larsen",
    "dubois", "silva", "tanaka", "kim", "nguyen", "ivanova", "johnson", "anderson", "petersen",
    "hansen", "martinez", "fischer", "weber", "meyer", "wagner", "becker", "hoffmann",
)  # fmt: skip

_LOAD = """
INSERT INTO users (id, email, username, password_hash, display_name)
SELECT gen_random_uuid(),
       'u' || g || '@bench.test',
       f.name || '_' || l.name || '_' || g,
       '-',
       CASE WHEN g % 10 < 7 THEN initcap(f.name) || ' ' || initcap(l.name) END
FROM generate_series(1, $1::bigint) AS g
JOIN LATERAL (SELECT ($2::text[])[1 + (g * 7919) % array_length($2::text[], 1)] AS name) f ON true
JOIN LATERAL (SELECT ($3::text[])[1 + (g * 104729) % array_length($3::text[], 1)] AS name) l
    ON true
"""


# After the last username that starts with "anna" (reached by paging through all of them, or
# by a crafted cursor): the next page starts in the display tier, whose "Anna …" users were
# nearly all listed already by their usernames, and goes on into the inside tier.
PAST_USERNAMES = user_search.Position(
    user_search.Tier.USERNAME_PREFIX, "anna" + chr(0x10FFFF), user_search.FIRST_ID
)


@dataclass(frozen=True, slots=True)
class Shape:
    """A kind of query, the q that stands for it, and where its page starts (None: the
    first page)."""

    label: str
    q: str
    after: user_search.Position | None = None

    def path(self) -> str:
        cursor = f"&cursor={cursors.encode(self.after)}" if self.after else ""
        return f"/api/v1/users?q={self.q}&limit={PAGE}{cursor}"


DEEP = Shape("anna, deep", "anna", PAST_USERNAMES)  # after the common name's usernames
SHAPES = (
    Shape("2-char prefix", "ma"),  # mark, martin, marta, maria, max: a sixth of all users
    Shape("common name", "anna"),  # one first name in thirty
    Shape("common inside", "sen"),  # inside larsen, petersen, hansen: never at the start
    Shape("rare inside", "4242"),  # inside one username in ten thousand
    Shape("rare name", "zoe_weber_4"),  # a few dozen usernames start with it
    Shape("no match", "xyzzy"),  # every tier asked, nothing found
    DEEP,
)


@dataclass(frozen=True, slots=True)
class Target:
    """One database with its server and a searcher's token."""

    users: int
    database_url: str
    base_url: str
    token: str
    caller: UserId
    some_id: uuid.UUID  # a user to look up by primary key: the baseline


def small_database_url(big_url: str) -> str:
    return big_url.rsplit("/", 1)[0] + "/user_search_small"


async def load(database_url: str, users: int) -> dict[str, float]:
    """`users` generated users, the search indexes built after them (as a bulk load does),
    then VACUUM ANALYZE; returns the seconds each step took."""
    await migrate(database_url, "up", None)
    await migrate(database_url, "down", SEARCH_MIGRATION - 1)
    conn = await asyncpg.connect(database_url)
    try:
        started = time.perf_counter()
        await conn.execute(_LOAD, users, list(FIRST), list(LAST))
        inserted = time.perf_counter()
        await migrate(database_url, "up", None)
        indexed = time.perf_counter()
        # Visibility map and statistics as a long-lived table has them after autovacuum.
        await conn.execute("VACUUM ANALYZE users")
        await conn.execute("CHECKPOINT")
    finally:
        await conn.close()
    return {
        "insert_s": round(inserted - started, 1),
        "search_indexes_s": round(indexed - inserted, 1),
        "vacuum_s": round(time.perf_counter() - indexed, 1),
    }


async def any_user(database_url: str) -> uuid.UUID:
    conn = await asyncpg.connect(database_url)
    try:
        user_id: uuid.UUID = await conn.fetchval("SELECT id FROM users LIMIT 1")
    finally:
        await conn.close()
    return user_id


async def sign_up(base_url: str) -> tuple[str, UserId]:
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        response = await client.post(
            "/api/v1/auth/register",
            json={"email": "searcher@bench.test", "username": "searcher", "password": PASSWORD},
        )
        response.raise_for_status()
        body = response.json()
    return body["tokens"]["access_token"], UserId(uuid.UUID(body["user"]["id"]))


def probes(target: Target) -> Iterator[tuple[str, str]]:
    yield f"{target.users:,} id lookup", f"/api/v1/users/{target.some_id}"
    for shape in SHAPES:
        yield f"{target.users:,} {shape.label}", shape.path()


async def measure(targets: Sequence[Target], requests: int) -> dict[str, list[float]]:
    """Sequential requests, every probe of every target in turn."""
    clients = [
        httpx.AsyncClient(
            base_url=t.base_url, headers={"authorization": f"Bearer {t.token}"}, timeout=30
        )
        for t in targets
    ]
    plan = [(client, label, path) for client, t in zip(clients, targets, strict=True)
            for label, path in probes(t)]  # fmt: skip
    latencies: dict[str, list[float]] = {label: [] for _, label, _ in plan}
    try:
        for round_ in range(WARMUP + requests):
            for client, label, path in plan:
                started = time.perf_counter()
                response = await client.get(path)
                elapsed = time.perf_counter() - started
                if response.status_code != 200:
                    raise RuntimeError(f"{label}: HTTP {response.status_code}: {response.text}")
                if round_ >= WARMUP:
                    latencies[label].append(elapsed * 1000)
    finally:
        for client in clients:
            await client.aclose()
    return latencies


async def page_to_the_end(target: Target, shape: Shape) -> dict[str, Any]:
    """Every page from `shape`'s on, following next_cursor until it is null: how many
    requests that takes, how many came back short, and what they cost."""
    headers = {"authorization": f"Bearer {target.token}"}
    requests, short, users, slowest_ms = 0, 0, 0, 0.0
    path: str | None = shape.path()
    started = time.perf_counter()
    async with httpx.AsyncClient(base_url=target.base_url, headers=headers, timeout=30) as client:
        while path is not None:
            sent = time.perf_counter()
            response = await client.get(path)
            slowest_ms = max(slowest_ms, (time.perf_counter() - sent) * 1000)
            response.raise_for_status()
            body = response.json()
            requests += 1
            users += len(body["users"])
            cursor = body["next_cursor"]
            short += cursor is not None and len(body["users"]) < PAGE
            path = f"/api/v1/users?q={shape.q}&limit={PAGE}&cursor={cursor}" if cursor else None
    return {
        "from": shape.label,
        "requests": requests,
        "short_pages": short,
        "users": users,
        "seconds": round(time.perf_counter() - started, 1),
        "slowest_ms": round(slowest_ms, 1),
    }


def _statement_names(caller: UserId) -> dict[str, str]:
    """The name of each statement a search may run, by its SQL."""
    names = {
        user_search.tier_query(tier, caller, "q", None, 1)[0]: tier.name.lower()
        for tier in user_search.Tier
    }
    names[user_search.substring_candidates_query(caller, "q", None, 1)[0]] = "substring_candidates"
    return names


async def explain(target: Target) -> dict[str, Any]:
    """The statements each shape's page runs, recorded as the server's code runs them, then
    replayed under EXPLAIN ANALYZE: the indexes each used, its fastest execution, the
    buffers it read."""
    statements: list[LoggedQuery] = []

    async def record_statements(conn: asyncpg.Connection) -> None:
        conn.add_query_logger(statements.append)

    # Both with the search's planner settings, as the server's search connections have them.
    settings = user_search.PLANNER_SETTINGS
    pool = await asyncpg.create_pool(
        target.database_url,
        min_size=1,
        max_size=1,
        init=record_statements,
        server_settings=settings,
    )
    search = user_search.UserSearch(pool)
    names = _statement_names(target.caller)
    conn = await asyncpg.connect(target.database_url, server_settings=settings)
    plans: dict[str, Any] = {}
    try:
        for shape in SHAPES:
            statements.clear()
            # One more than the page, as the use case asks, to know whether a page follows.
            await search.page(target.caller, shape.q, shape.after, PAGE + 1)
            await asyncio.sleep(0)  # query loggers are called soon after their statement
            steps: dict[str, Any] = {}
            for statement in statements:
                if (name := names.get(statement.query)) is not None:
                    steps[name] = await explain_analyze(conn, statement.query, statement.args)
                elif statement.query.split()[0].rstrip(";").upper() in ("BEGIN", "SET", "COMMIT"):
                    await conn.execute(statement.query)  # the settings of the next statement
            plans[shape.label] = steps
        sizes = await conn.fetchrow(
            "SELECT pg_table_size('users') AS heap, pg_indexes_size('users') AS indexes"
        )
    finally:
        await conn.close()
        await pool.close()
    return {"plans": plans, "heap_mib": sizes["heap"] >> 20, "indexes_mib": sizes["indexes"] >> 20}


def figures(
    big: Target, small: Target, latencies: dict[str, list[float]], load_s: dict[str, float]
) -> dict[str, Any]:
    summaries = {label: latency_summary(ms) for label, ms in latencies.items()}
    ratios = {}
    for label in ["id lookup", *(s.label for s in SHAPES)]:
        b, s = summaries[f"{big.users:,} {label}"], summaries[f"{small.users:,} {label}"]
        ratios[label] = {q: round(b[q] / s[q], 2) for q in ("p50_ms", "p99_ms")}
    searches = [ratios[s.label]["p99_ms"] for s in SHAPES]
    return {
        "users_big": big.users,
        "users_small": small.users,
        "page": PAGE,
        "load_s": load_s,
        "latency": summaries,
        "ratio_big_over_small": ratios,
        "target_p99_ratio": TARGET_RATIO,
        "met": max(searches) <= TARGET_RATIO,
    }


def table(result: dict[str, Any]) -> str:
    lines = [
        f"{'users, query':<28} {'n':>5} {'p50 ms':>7} {'p90 ms':>7} {'p99 ms':>7} {'max ms':>7}"
    ]
    for label, s in result["latency"].items():
        lines.append(
            f"{label:<28} {s['n']:>5} {s['p50_ms']:>7.2f} {s['p90_ms']:>7.2f} {s['p99_ms']:>7.2f}"
            f" {s['max_ms']:>7.1f}"
        )
    for label, r in result["ratio_big_over_small"].items():
        lines.append(
            f"{result['users_big']:,} / {result['users_small']:,}, {label}: "
            f"p50 {r['p50_ms']:.2f}x, p99 {r['p99_ms']:.2f}x"
        )
    load = result["load_s"]
    lines.append(
        f"{result['users_big']:,} users: inserted in {load['insert_s']} s, search indexes built"
        f" in {load['search_indexes_s']} s, VACUUM ANALYZE {load['vacuum_s']} s;"
        f" heap {result['heap_mib']} MiB, indexes {result['indexes_mib']} MiB"
    )
    end = result["to_the_end"]
    lines.append(
        f"from {end['from']} to the last page at {result['users_big']:,} users: {end['requests']}"
        f" requests ({end['short_pages']} short), {end['users']} users, {end['seconds']} s,"
        f" slowest {end['slowest_ms']} ms"
    )
    lines.append(f"plans at {result['users_big']:,} users (fastest of {PLAN_RUNS}):")
    for label, tiers in result["plans"].items():
        for tier, plan in tiers.items():
            lines.append(
                f"  {label:<14} {tier:<21} {plan['execution_ms']:>7.3f} ms {plan['rows']:>3} rows"
                f" {plan['buffers']:>6} buffers  {', '.join(plan['indexes'])}"
            )
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--users", type=int, default=BIG_USERS, help="users in the big database")
    parser.add_argument("--requests", type=int, default=REQUESTS, help="per query and database")
    args = parser.parse_args(argv)
    if args.users <= SMALL_USERS:
        parser.error(f"--users must be larger than the small database ({SMALL_USERS:,})")
    with bench_stack() as bench:
        small_url = small_database_url(bench.database_url)
        bench.stack.postgres.create_database(small_url.rsplit("/", 1)[1])
        load_s = uvloop.run(load(bench.database_url, args.users))
        uvloop.run(load(small_url, SMALL_USERS))
        targets = []
        for users, url in ((args.users, bench.database_url), (SMALL_USERS, small_url)):
            _, base_url = bench.start_server(DATABASE_URL=url)
            token, caller = uvloop.run(sign_up(base_url))
            some_id = uvloop.run(any_user(url))
            targets.append(Target(users, url, base_url, token, caller, some_id))
        big, small = targets
        latencies = uvloop.run(measure(targets, args.requests))
        facts = uvloop.run(explain(big))
        facts["to_the_end"] = uvloop.run(page_to_the_end(big, DEEP))
    result = figures(big, small, latencies, load_s) | facts
    sys.stdout.write(table(result))
    sys.stdout.write(record("user_search", result) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
