"""Scenario 4, history: does a page of a 10,000,000-message conversation cost what a page of
a 10,000-message one does, for the first page and for a page half-way down?

`python -m bench.history [--rows N] [--requests N]` from the repo root: loads both
conversations straight into PostgreSQL, starts the API server, times sequential
`GET …/messages` requests on one keep-alive connection, prints a table and appends one JSON
line to bench/results/history.jsonl.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx
import uvloop

from bench.results import latency_summary, record
from bench.stack import bench_stack
from gochat_py import cursors
from gochat_py.postgres import messages as stored_messages
from gochat_py.usecases.history import Cursor

BIG_ROWS = 10_000_000
SMALL_ROWS = 10_000
PAGE = 50  # what the clients ask for
REQUESTS = 1_000  # per (conversation, page)
# Per (conversation, page), not recorded: connection, prepared statements, membership cache.
WARMUP = 50
# Rows per INSERT … SELECT: a progress line every ten seconds or so during a long load.
LOAD_CHUNK = 1_000_000
# Heap and both indexes took 270 bytes a row at 10M (2.6 GB); WAL and slack on top.
DISK_BYTES_PER_ROW = 500
TARGET_RATIO = 1.5  # p99 at 10M over p99 at 10k
PASSWORD = "bench-history-password"
SENT_FROM = datetime(2026, 1, 1, tzinfo=UTC)
PLAN_RUNS = 20  # EXPLAIN ANALYZE runs per page; the fastest is the cost without the noise

# The server's own keyset query (gochat_py/postgres/messages.py), so the plans are of what it runs.
_FIRST_PAGE = stored_messages.SELECT + " ORDER BY m.seq DESC LIMIT $2"
_PAGE_BEFORE = stored_messages.SELECT + " AND m.seq < $2 ORDER BY m.seq DESC LIMIT $3"

# Ids rise with seq, as the server's UUIDv7 ids rise with time: the primary key grows at its
# right edge, as it does in production, and the load stays fast. `base` keeps the two
# conversations' ids apart.
_LOAD = """
INSERT INTO messages (id, conversation_id, seq, sender_id, type, content, sent_at)
SELECT lpad(to_hex($1::bigint + g), 32, '0')::uuid, $2, g, $3, 'text',
       'history message ' || g || ' lorem ipsum dolor sit amet, consectetur adipiscing elit',
       $4::timestamptz + g * interval '1 millisecond'
FROM generate_series($5::bigint, $6::bigint) AS g
"""


@dataclass(frozen=True, slots=True)
class Conversation:
    id: uuid.UUID
    size: int


@dataclass(frozen=True, slots=True)
class Probe:
    """One request shape, repeated: a page of one conversation, and the seq it must start at."""

    label: str
    path: str
    newest: int | None  # None: not a history page
    conversation: uuid.UUID | None = None
    before: int | None = None  # the cursor's seq, if any

    @classmethod
    def first(cls, conversation: Conversation) -> Probe:
        path = f"/api/v1/conversations/{conversation.id}/messages?limit={PAGE}"
        return cls(f"{conversation.size:,} first", path, conversation.size, conversation.id)

    @classmethod
    def deep(cls, conversation: Conversation) -> Probe:
        # "before" seq depth + 1: the page starts at seq `depth`, half-way down the history.
        depth = conversation.size // 2
        cursor = cursors.encode(Cursor("before", depth + 1))
        path = f"/api/v1/conversations/{conversation.id}/messages?limit={PAGE}&cursor={cursor}"
        return cls(
            f"{conversation.size:,} deep ({depth:,})", path, depth, conversation.id, depth + 1
        )

    @classmethod
    def noise_floor(cls) -> Probe:
        # No query at all: its tail is what the shared machine adds to every request.
        return cls("health (noise floor)", "/api/v1/health", None)


def check_disk(rows: int) -> None:
    needed = (rows + SMALL_ROWS) * DISK_BYTES_PER_ROW
    free = shutil.disk_usage(tempfile.gettempdir()).free
    if free < needed:
        raise SystemExit(
            f"{rows:,} rows need about {needed / 2**30:.1f} GiB in {tempfile.gettempdir()}, "
            f"{free / 2**30:.1f} GiB free: try --rows with a smaller number"
        )


async def load(database_url: str, sizes: Sequence[int]) -> list[Conversation]:
    """One conversation per size, filled in PostgreSQL directly; then VACUUM ANALYZE."""
    conn = await asyncpg.connect(database_url)
    try:
        sender = uuid.uuid4()
        await conn.execute(
            "INSERT INTO users (id, email, username, password_hash) VALUES ($1, $2, $3, '-')",
            sender,
            "loader@bench.test",
            "history_loader",
        )
        conversations = []
        for index, size in enumerate(sizes):
            conversation = Conversation(uuid.uuid4(), size)
            await conn.execute(
                "INSERT INTO conversations (id, kind, name, created_by, last_seq)"
                " VALUES ($1, 'group', $2, $3, $4)",
                conversation.id,
                f"history {size}",
                sender,
                size,
            )
            base = index << 40
            for start in range(1, size + 1, LOAD_CHUNK):
                stop = min(start + LOAD_CHUNK - 1, size)
                await conn.execute(_LOAD, base, conversation.id, sender, SENT_FROM, start, stop)
                sys.stdout.write(f"  loaded {stop:,}/{size:,}\n")
            conversations.append(conversation)
        # Visibility map and statistics as a long-lived table has them after autovacuum;
        # the checkpoint writes the load out now rather than during the measurement.
        await conn.execute("VACUUM ANALYZE messages")
        await conn.execute("CHECKPOINT")
        return conversations
    finally:
        await conn.close()


async def join(database_url: str, base_url: str, conversations: Sequence[Conversation]) -> str:
    """Register a reader through the API, make it a member (SQL), return its access token."""
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        response = await client.post(
            "/api/v1/auth/register",
            json={"email": "reader@bench.test", "username": "reader", "password": PASSWORD},
        )
        response.raise_for_status()
        body = response.json()
    conn = await asyncpg.connect(database_url)
    try:
        await conn.executemany(
            "INSERT INTO conversation_members (conversation_id, user_id) VALUES ($1, $2)",
            [(c.id, uuid.UUID(body["user"]["id"])) for c in conversations],
        )
    finally:
        await conn.close()
    token: str = body["tokens"]["access_token"]
    return token


def validate(probe: Probe, response: httpx.Response) -> None:
    response.raise_for_status()
    if probe.newest is None:
        return
    seqs = [m["seq"] for m in response.json()["messages"]]
    expected = list(range(probe.newest, probe.newest - PAGE, -1))
    if seqs != expected:
        raise RuntimeError(f"{probe.label}: expected seq {expected[0]}…{expected[-1]}, got {seqs}")


async def measure(
    base_url: str, token: str, probes: Sequence[Probe], requests: int
) -> dict[str, list[float]]:
    """Sequential requests, one probe after another in turn, so that any noise from the
    shared machine falls on every probe alike and the ratios stay fair."""
    headers = {"authorization": f"Bearer {token}"}
    latencies: dict[str, list[float]] = {probe.label: [] for probe in probes}
    async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=30) as client:
        for _ in range(WARMUP):
            for probe in probes:
                validate(probe, await client.get(probe.path))
        for _ in range(requests):
            for probe in probes:
                started = time.perf_counter()
                response = await client.get(probe.path)
                elapsed = time.perf_counter() - started
                if response.status_code != 200:
                    raise RuntimeError(f"{probe.label}: HTTP {response.status_code}")
                latencies[probe.label].append(elapsed * 1000)
    return latencies


async def inspect(database_url: str, probes: Sequence[Probe]) -> dict[str, Any]:
    """Table sizes, and each page's plan: buffers touched and its fastest execution time,
    which the shared machine's noise cannot inflate."""
    conn = await asyncpg.connect(database_url)
    try:
        sizes = await conn.fetchrow(
            "SELECT pg_table_size('messages') AS heap, pg_indexes_size('messages') AS indexes"
        )
        plans: dict[str, dict[str, Any]] = {}
        for probe in probes:
            if probe.conversation is None:
                continue
            sql, args = (
                (_FIRST_PAGE, (probe.conversation, PAGE + 1))
                if probe.before is None
                else (_PAGE_BEFORE, (probe.conversation, probe.before, PAGE + 1))
            )
            runs = [
                json.loads(
                    await conn.fetchval(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {sql}", *args)
                )[0]
                for _ in range(PLAN_RUNS)
            ]
            plans[probe.label] = {
                "execution_ms": round(min(run["Execution Time"] for run in runs), 3),
                "buffers": runs[-1]["Plan"]["Shared Hit Blocks"]
                + runs[-1]["Plan"]["Shared Read Blocks"],
            }
        return {
            "heap_mib": sizes["heap"] >> 20,
            "indexes_mib": sizes["indexes"] >> 20,
            "plans": plans,
        }
    finally:
        await conn.close()


def figures(
    probes: Sequence[Probe], latencies: dict[str, list[float]], big: int, load_s: float
) -> dict[str, Any]:
    summaries = {probe.label: latency_summary(latencies[probe.label]) for probe in probes}
    big_first, big_deep, small_first, small_deep = (summaries[p.label] for p in probes[:4])
    ratios = {
        f"{page}_{q}": round(b[q] / s[q], 2)
        for page, b, s in (("first", big_first, small_first), ("deep", big_deep, small_deep))
        for q in ("p50_ms", "p99_ms")
    }
    return {
        "rows_big": big,
        "rows_small": SMALL_ROWS,
        "page": PAGE,
        "load_s": round(load_s, 1),
        "latency": summaries,
        "ratio_big_over_small": ratios,
        "target_p99_ratio": TARGET_RATIO,
        "met": ratios["first_p99_ms"] <= TARGET_RATIO and ratios["deep_p99_ms"] <= TARGET_RATIO,
    }


def table(figures: dict[str, Any]) -> str:
    lines = [
        f"{'conversation, page':<28} {'n':>5} {'p50 ms':>7} {'p90 ms':>7} {'p99 ms':>7}"
        f" {'max ms':>7} {'SQL ms':>7} {'buffers':>7}"
    ]
    for label, s in figures["latency"].items():
        plan = figures["plans"].get(label, {"execution_ms": math.nan, "buffers": "-"})
        lines.append(
            f"{label:<28} {s['n']:>5} {s['p50_ms']:>7.2f} {s['p90_ms']:>7.2f} {s['p99_ms']:>7.2f}"
            f" {s['max_ms']:>7.1f} {plan['execution_ms']:>7.3f} {plan['buffers']:>7}"
        )
    ratios = figures["ratio_big_over_small"]
    for page in ("first", "deep"):
        lines.append(
            f"{figures['rows_big']:,} / {SMALL_ROWS:,}, {page} page: "
            f"p50 {ratios[f'{page}_p50_ms']:.2f}x, p99 {ratios[f'{page}_p99_ms']:.2f}x "
            f"(target p99 <= {TARGET_RATIO}x)"
        )
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rows", type=int, default=BIG_ROWS, help="size of the big conversation")
    parser.add_argument("--requests", type=int, default=REQUESTS, help="per conversation and page")
    args = parser.parse_args(argv)
    if args.rows <= SMALL_ROWS:
        parser.error(f"--rows must be larger than the small conversation ({SMALL_ROWS:,})")
    check_disk(args.rows)
    with bench_stack() as bench:
        started = time.perf_counter()
        big, small = uvloop.run(load(bench.database_url, [args.rows, SMALL_ROWS]))
        load_s = time.perf_counter() - started
        _, base_url = bench.start_server()
        token = uvloop.run(join(bench.database_url, base_url, [big, small]))
        probes = [
            *(Probe.first(big), Probe.deep(big), Probe.first(small), Probe.deep(small)),
            Probe.noise_floor(),
        ]
        latencies = uvloop.run(measure(base_url, token, probes, args.requests))
        facts = uvloop.run(inspect(bench.database_url, probes))
    result = figures(probes, latencies, args.rows, load_s) | facts
    sys.stdout.write(table(result))
    sys.stdout.write(record("history", result) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
