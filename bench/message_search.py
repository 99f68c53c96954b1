"""Scenario 6, message search: what does `GET /search/messages?q=` cost at 10,000,000
messages, for a selective and a common term (and a prefix, text without spaces, and a term
found nowhere), beside a plain history page of the same table in the same run?

`python -m bench.message_search [--messages N] [--conversations N] [--member-of N]
[--requests N]` from the repo root: fills the messages straight in PostgreSQL
(generate_series), makes a searcher a member of some of the conversations, starts an API
server, times sequential requests on one keep-alive connection, each probe in turn so that
the shared machine's noise falls on all alike, prints a table with each statement's plan
(the indexes it used, its fastest execution) and appends one JSON line to
bench/results/message_search.jsonl.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import asyncpg
import httpx
import uvloop
from asyncpg.connection import LoggedQuery

from bench.plans import PLAN_RUNS, explain_analyze
from bench.results import latency_summary, record
from bench.stack import bench_stack
from gochat_py.ids import ConversationId, UserId
from gochat_py.postgres import message_search
from gochat_py.postgres.message_search import Match, MessageSearch
from gochat_py.postgres.migrate import run as migrate
from gochat_py.usecases.message_search import parse

MESSAGES = 10_000_000
CONVERSATIONS = 10_000  # a thousand messages each at 10M
MEMBER_OF = 50  # the searcher's conversations
PAGE = 20  # the API's default
REQUESTS = 300  # per probe
WARMUP = 20  # per probe, not recorded: connections, prepared and generic plans
LOAD_CHUNK = 1_000_000  # rows per INSERT … SELECT: a progress line every few seconds
# Heap, the primary key, (conversation_id, seq) and the three search indexes: about 400
# bytes a row; WAL and slack on top.
DISK_BYTES_PER_ROW = 700
PASSWORD = "bench-message-search-password"
SEARCH_MIGRATION = 7  # database/migrations/0007_message_search: the column and indexes
SENT_FROM = datetime(2026, 1, 1, tzinfo=UTC)
# Each row's words: two from a vocabulary of 50,000, "hello" in one message in five (the
# common term), a reference "ref<n>" shared by the messages 100,000 rows apart (a
# hundred at 10M, all in one conversation: the selective term), a Japanese sentence in one
# in seven.
VOCABULARY = 50_000
REFERENCES = 100_000

# Ids rise with sent_at, as the server's UUIDv7 ids rise with time.
_LOAD = f"""
INSERT INTO messages (id, conversation_id, seq, sender_id, type, content, sent_at)
SELECT lpad(to_hex(g), 32, '0')::uuid, ($1::uuid[])[1 + g % $2], 1 + g / $2, $3, 'text',
       'w' || (g * 7919) % {VOCABULARY} || ' lorem w' || (g * 104729) % {VOCABULARY}
       || CASE WHEN g % 5 = 0 THEN ' hello there' ELSE ' ipsum dolor' END
       || ' ref' || g % {REFERENCES}
       || CASE WHEN g % 7 = 0 THEN ' 明日は東京で会いましょう' ELSE ' sit amet' END,
       $4::timestamptz + g * interval '1 millisecond'
FROM generate_series($5::bigint, $6::bigint) AS g
"""


@dataclass(frozen=True, slots=True)
class Probe:
    label: str
    path: str


def probes(history_of: uuid.UUID, selective: str) -> list[Probe]:
    def search(q: str) -> str:
        return f"/api/v1/search/messages?q={quote(q)}&limit={PAGE}"

    return [
        Probe(
            "history page (baseline)", f"/api/v1/conversations/{history_of}/messages?limit={PAGE}"
        ),
        Probe(f"selective: {selective}", search(selective)),
        Probe("common: hello", search("hello")),
        Probe("common prefix: hel*", search("hel*")),
        Probe('phrase: "hello there"', search('"hello there"')),
        Probe("unspaced: 東京", search("東京")),
        Probe("nowhere: xyzzy", search("xyzzy")),
    ]


def check_disk(rows: int) -> None:
    needed = rows * DISK_BYTES_PER_ROW
    free = shutil.disk_usage(tempfile.gettempdir()).free
    if free < needed:
        raise SystemExit(
            f"{rows:,} rows need about {needed / 2**30:.1f} GiB in {tempfile.gettempdir()}, "
            f"{free / 2**30:.1f} GiB free: try --messages with a smaller number"
        )


async def load(
    database_url: str, rows: int, conversations: int
) -> tuple[list[uuid.UUID], dict[str, float]]:
    """`conversations` groups holding `rows` messages round-robin, loaded before the search
    migration as a bulk load would be (its column and indexes then built once, as
    migrating an existing table does), then VACUUM ANALYZE."""
    await migrate(database_url, "up", None)
    await migrate(database_url, "down", SEARCH_MIGRATION - 1)
    conn = await asyncpg.connect(database_url)
    try:
        sender = uuid.uuid4()
        await conn.execute(
            "INSERT INTO users (id, email, username, password_hash) VALUES ($1, $2, $3, '-')",
            sender,
            "loader@bench.test",
            "search_loader",
        )
        ids = [uuid.uuid4() for _ in range(conversations)]
        await conn.execute(
            "INSERT INTO conversations (id, kind, name, created_by, last_seq)"
            " SELECT id, 'group', 'search ' || n, $2, $3"
            " FROM unnest($1::uuid[]) WITH ORDINALITY AS c(id, n)",
            ids,
            sender,
            rows // conversations + 1,
        )
        started = time.perf_counter()
        for start in range(1, rows + 1, LOAD_CHUNK):
            stop = min(start + LOAD_CHUNK - 1, rows)
            await conn.execute(_LOAD, ids, conversations, sender, SENT_FROM, start, stop)
            elapsed = time.perf_counter() - started
            sys.stdout.write(f"  loaded {stop:,}/{rows:,} ({elapsed:.0f} s)\n")
            sys.stdout.flush()
        loaded = time.perf_counter()
        await migrate(database_url, "up", None)
        migrated = time.perf_counter()
        # Visibility map and statistics as a long-lived table has them after autovacuum;
        # the checkpoint writes the load out now rather than during the measurement.
        await conn.execute("VACUUM ANALYZE messages")
        await conn.execute("CHECKPOINT")
        return ids, {
            "insert_s": round(loaded - started, 1),
            "migration_s": round(migrated - loaded, 1),
            "vacuum_s": round(time.perf_counter() - migrated, 1),
        }
    finally:
        await conn.close()


async def join(
    database_url: str, base_url: str, conversations: Sequence[uuid.UUID]
) -> tuple[str, UserId]:
    """Register the searcher through the API, make it a member (SQL), return its token."""
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        response = await client.post(
            "/api/v1/auth/register",
            json={"email": "searcher@bench.test", "username": "searcher", "password": PASSWORD},
        )
        response.raise_for_status()
        body = response.json()
    user_id = UserId(uuid.UUID(body["user"]["id"]))
    conn = await asyncpg.connect(database_url)
    try:
        await conn.executemany(
            "INSERT INTO conversation_members (conversation_id, user_id) VALUES ($1, $2)",
            [(c, user_id) for c in conversations],
        )
    finally:
        await conn.close()
    return body["tokens"]["access_token"], user_id


async def measure(
    base_url: str, token: str, plan: Sequence[Probe], requests: int
) -> dict[str, Any]:
    """Sequential requests, every probe in turn; each probe's results counted once."""
    headers = {"authorization": f"Bearer {token}"}
    latencies: dict[str, list[float]] = {probe.label: [] for probe in plan}
    found: dict[str, int] = {}
    async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=30) as client:
        for round_ in range(WARMUP + requests):
            for probe in plan:
                started = time.perf_counter()
                response = await client.get(probe.path)
                elapsed = time.perf_counter() - started
                if response.status_code != 200:
                    raise RuntimeError(
                        f"{probe.label}: HTTP {response.status_code}: {response.text}"
                    )
                if round_ == 0:
                    body = response.json()
                    found[probe.label] = len(body.get("results", body.get("messages", [])))
                if round_ >= WARMUP:
                    latencies[probe.label].append(elapsed * 1000)
    return {
        "latency": {label: latency_summary(ms) for label, ms in latencies.items()},
        "found": found,
    }


def _statement_names(match: Match) -> dict[str, str]:
    """The name of each statement a search may run, by its SQL (asyncpg's own introspection
    and the pool's reset are not among them)."""
    return {
        message_search.NORMALIZED: "normalize",
        message_search.candidates_sql(match): "candidates",
        message_search.recent_sql(match): "walk",
        message_search.page_sql(match): "page",
    }


async def explain(database_url: str, caller: UserId, queries: Sequence[str]) -> dict[str, Any]:
    """The statements each search runs, recorded as the server's code runs them, then
    replayed under EXPLAIN ANALYZE."""
    statements: list[LoggedQuery] = []

    async def record_statements(conn: asyncpg.Connection) -> None:
        conn.add_query_logger(statements.append)

    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=1, init=record_statements)
    search = MessageSearch(pool)
    conn = await asyncpg.connect(database_url)
    plans: dict[str, Any] = {}
    try:
        conversations: list[ConversationId] = await search.conversations(caller, None)
        for q in queries:
            statements.clear()
            match = parse(q)
            await search.page(conversations, match, None, PAGE + 1)
            await asyncio.sleep(0)  # query loggers are called soon after their statement
            names = _statement_names(match)
            plans[q] = {
                names[s.query]: await explain_analyze(conn, s.query, s.args)
                for s in statements
                if s.query in names
            }
        sizes = await conn.fetchrow(
            "SELECT pg_table_size('messages') AS heap,"
            " pg_relation_size('messages_search_words_idx') AS words,"
            " pg_relation_size('messages_search_recent_idx') AS recent,"
            " pg_indexes_size('messages') AS indexes"
        )
    finally:
        await conn.close()
        await pool.close()
    return {"plans": plans, "sizes_mib": {k: v >> 20 for k, v in dict(sizes).items()}}


def table(result: dict[str, Any]) -> str:
    lines = [
        f"{result['messages']:,} messages in {result['conversations']:,} conversations,"
        f" the searcher in {result['member_of']} of them; page {PAGE}",
        f"{'probe':<28} {'found':>5} {'n':>5} {'p50 ms':>7} {'p90 ms':>7} {'p99 ms':>7}"
        f" {'max ms':>7}",
    ]
    for label, s in result["latency"].items():
        lines.append(
            f"{label:<28} {result['found'][label]:>5} {s['n']:>5} {s['p50_ms']:>7.2f}"
            f" {s['p90_ms']:>7.2f} {s['p99_ms']:>7.2f} {s['max_ms']:>7.1f}"
        )
    load = result["load_s"]
    lines.append(
        f"inserted in {load['insert_s']} s, migration 0007 (column and search indexes)"
        f" {load['migration_s']} s, VACUUM ANALYZE {load['vacuum_s']} s;"
        f" sizes MiB: {result['sizes_mib']}"
    )
    lines.append(f"statements of each search (fastest of {PLAN_RUNS}):")
    for q, steps in result["plans"].items():
        for name, plan in steps.items():
            lines.append(
                f"  {q:<16} {name:<10} {plan['execution_ms']:>8.3f} ms {plan['rows']:>5} rows"
                f" {plan['buffers']:>7} buffers  {', '.join(plan['indexes'])}"
            )
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--messages", type=int, default=MESSAGES)
    parser.add_argument("--conversations", type=int, default=CONVERSATIONS)
    parser.add_argument("--member-of", type=int, default=MEMBER_OF)
    parser.add_argument("--requests", type=int, default=REQUESTS, help="per probe")
    args = parser.parse_args(argv)
    if not 1 <= args.member_of <= args.conversations <= args.messages:
        parser.error("need 1 <= --member-of <= --conversations <= --messages")
    check_disk(args.messages)
    with bench_stack() as bench:
        ids, load_s = uvloop.run(load(bench.database_url, args.messages, args.conversations))
        # Spread over the conversations; the first holds the selective term's messages.
        step = args.conversations // args.member_of
        mine = [ids[i * step] for i in range(args.member_of)]
        _, base_url = bench.start_server()
        token, caller = uvloop.run(join(bench.database_url, base_url, mine))
        # ref<k> is in the messages g ≡ k (mod REFERENCES), all in conversation k mod
        # conversations: k = conversations names one in the searcher's first conversation.
        selective = f"ref{args.conversations % REFERENCES}"
        plan = probes(mine[0], selective)
        measured = uvloop.run(measure(base_url, token, plan, args.requests))
        queries = [selective, "hello", "hel*", '"hello there"', "東京", "xyzzy"]
        facts = uvloop.run(explain(bench.database_url, caller, queries))
    result = {
        "messages": args.messages,
        "conversations": args.conversations,
        "member_of": args.member_of,
        "page": PAGE,
        "load_s": load_s,
        **measured,
        **facts,
    }
    sys.stdout.write(table(result))
    sys.stdout.write(record("message_search", result) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
