"""Scenario 3, persistence: the worker draining a full stream into PostgreSQL, beside a raw
COPY of the same rows (the bound) and row-by-row INSERTs (the naive baseline), all into the
same database in the same run. Each drain is judged against a COPY timed just before it.

`python -m bench.persistence [--messages N] [--batch-sizes 500,5000]` from the repo root:
prints a table and appends one JSON line to bench/results/persistence.jsonl. The other half
of scenario 3, persist lag during fan-out, is measured by bench/fanout.py (backlog, catch-up).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
import uvloop
from redis.asyncio import Redis

from bench.results import record
from bench.stack import BenchStack, bench_stack
from gochat_py.messages import Message
from gochat_py.redis import keys, stream_entries
from worker.persist import COLUMNS, Row, to_row

CONVERSATIONS = 1_000  # at 1M messages, 1,000 each: many small groups, as in fan-out
BASE_MS = 1_767_225_600_000  # 2026-01-01 UTC; message i is sent at BASE_MS + i
# About 75 characters in all: a typical chat line, well short of TOAST.
FILLER = "lorem ipsum dolor sit amet, consectetur adipiscing elit"
XADD_CHUNK = 10_000  # entries per pipeline round trip: amortises the trip, bounds memory
COPY_CHUNK = 50_000  # rows per COPY call in the bound, for the same reasons
ROW_BY_ROW_SAMPLE = 20_000  # a round trip and a commit per row: a sample, extrapolated
POLL_INTERVAL = 0.02  # seconds between XINFO GROUPS calls while the worker drains: O(1) each
DRAIN_FLOOR = 1_000  # rows/s: a worker slower than this is reported as stalled
TARGET_VS_COPY = 0.5
# bench_stack's cluster is not durable: a commit costs no fsync, which flatters row-by-row
# (a commit per row) far more than the worker (a commit per batch).
CLUSTER = "fsync=off, synchronous_commit=off"
_INSERT_ONE = (
    f"INSERT INTO messages ({', '.join(COLUMNS)}) "
    f"VALUES ({', '.join(f'${i}' for i in range(1, len(COLUMNS) + 1))})"
)


def message_id(unix_ms: int, index: int) -> uuid.UUID:
    """A UUIDv7 like the server's (time-ordered, so the same index behaviour), with the
    index as its random bits: every pass of the run produces the same rows."""
    return uuid.UUID(int=(unix_ms << 80) | (0x7 << 76) | (0b10 << 62) | index)


@dataclass(frozen=True, slots=True)
class Fixture:
    """Conversations with one sender each; message i goes to conversation i % count in
    turn, so the stream interleaves conversations the way concurrent traffic does."""

    conversations: list[uuid.UUID]
    senders: list[uuid.UUID]

    def message(self, index: int) -> Message:
        conversation = index % len(self.conversations)
        sent_at = BASE_MS + index
        return Message(
            id=message_id(sent_at, index),
            conversation_id=self.conversations[conversation],
            sender_id=self.senders[conversation],
            sender_username=f"sender_{conversation}",
            content=f"message {index} {FILLER}",
            type="text",
            sent_at=sent_at,
            client_msg_id=f"bench-{index}",
            seq=index // len(self.conversations) + 1,
        )

    def rows(self, span: range) -> list[Row]:
        # The worker's own conversion: the bound stores exactly what the worker stores.
        return [to_row(self.message(i)) for i in span]


@dataclass(frozen=True, slots=True)
class Run:
    method: str
    rows: int
    seconds: float
    extra: dict[str, Any]

    @property
    def rate(self) -> float:
        return self.rows / self.seconds


def spans(total: int, size: int) -> Iterator[range]:
    for start in range(0, total, size):
        yield range(start, min(start + size, total))


async def create_fixture(conn: asyncpg.Connection, count: int) -> Fixture:
    """Users and conversations straight into PostgreSQL: the API is not what is measured."""
    senders = [uuid.uuid4() for _ in range(count)]
    conversations = [uuid.uuid4() for _ in range(count)]
    await conn.copy_records_to_table(
        "users",
        records=[(u, f"s{k}@bench.test", f"sender_{k}", "-") for k, u in enumerate(senders)],
        columns=["id", "email", "username", "password_hash"],
    )
    await conn.copy_records_to_table(
        "conversations",
        records=[(c, "group", f"group {k}", senders[k]) for k, c in enumerate(conversations)],
        columns=["id", "kind", "name", "created_by"],
    )
    return Fixture(conversations, senders)


async def reset(conn: asyncpg.Connection) -> None:
    # CHECKPOINT: a run must not pay for flushing the previous run's dirty pages.
    await conn.execute("TRUNCATE messages; UPDATE conversations SET last_seq = 0; CHECKPOINT")


async def expect_rows(conn: asyncpg.Connection, expected: int) -> None:
    stored: int = await conn.fetchval("SELECT count(*) FROM messages")
    if stored != expected:
        raise RuntimeError(f"expected {expected} rows in messages, found {stored}")


async def raw_copy(conn: asyncpg.Connection, fixture: Fixture, total: int) -> Run:
    """The bound: COPY straight into `messages`, timing only the COPY calls."""
    await reset(conn)
    seconds = 0.0
    for span in spans(total, COPY_CHUNK):
        rows = fixture.rows(span)
        started = time.perf_counter()
        await conn.copy_records_to_table("messages", records=rows, columns=COLUMNS)
        seconds += time.perf_counter() - started
    await expect_rows(conn, total)
    return Run("raw COPY (bound)", total, seconds, {})


async def row_by_row(conn: asyncpg.Connection, fixture: Fixture, total: int, sample: int) -> Run:
    """The naive baseline: one prepared INSERT per row, each its own transaction.

    Sampled half-way through a fill (the first half COPYed in, untimed): the worker drains
    into a table that grows from empty to `total`, so that is its size on average.
    """
    await reset(conn)
    middle = max(0, min(total // 2, total - sample))
    for span in spans(middle, COPY_CHUNK):
        await conn.copy_records_to_table("messages", records=fixture.rows(span), columns=COLUMNS)
    rows = fixture.rows(range(middle, middle + sample))
    started = time.perf_counter()
    for row in rows:
        await conn.execute(_INSERT_ONE, *row)
    seconds = time.perf_counter() - started
    await expect_rows(conn, middle + sample)
    return Run(f"row-by-row INSERT ({sample:,} sampled)", sample, seconds, {"after_rows": middle})


async def fill_stream(redis: Redis, fixture: Fixture, total: int) -> float:
    """XADD every message as the send script would; returns the seconds it took."""
    stream = keys.stream(0)
    await redis.delete(stream)  # drops the last run's group too; the worker makes it anew
    started = time.perf_counter()
    for span in spans(total, XADD_CHUNK):
        async with redis.pipeline(transaction=False) as pipe:
            for i in span:
                pipe.xadd(stream, stream_entries.entry(fixture.message(i)))
            await pipe.execute()
    return time.perf_counter() - started


async def acknowledged(redis: Redis) -> int:
    """Entries the worker acknowledged, which it does only after their COMMIT."""
    for group in await redis.xinfo_groups(keys.stream(0)):
        name = group["name"]
        if (name.decode() if isinstance(name, bytes) else name) == keys.CONSUMER_GROUP:
            return int(group["entries-read"] or 0) - int(group["pending"])
    return 0  # the worker has not created its group yet


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a live process, from /proc."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def drain(
    bench: BenchStack, conn: asyncpg.Connection, redis: Redis, fixture: Fixture, total: int,
    batch_size: int,
) -> Run:  # fmt: skip
    """Fill the stream, start a worker, and time it until every entry is committed."""
    await reset(conn)
    fill_seconds = await fill_stream(redis, fixture, total)
    spawned = time.perf_counter()
    worker = bench.start_worker(WORKER_BATCH_SIZE=str(batch_size))
    deadline = spawned + 60 + total / DRAIN_FLOOR
    first: tuple[float, int] | None = None
    while (done := await acknowledged(redis)) < total:
        now = time.perf_counter()
        if first is None and done > 0:
            first = (now, done)
        if worker.popen.poll() is not None:
            raise RuntimeError(f"worker exited:\n{worker.tail()}")
        if now > deadline:
            raise RuntimeError(f"worker stalled at {done}/{total} rows:\n{worker.tail()}")
        await asyncio.sleep(POLL_INTERVAL)
    finished = time.perf_counter()
    cpu = cpu_seconds(worker.pid)
    worker.stop()
    await expect_rows(conn, total)
    # From the first commit seen, so interpreter start-up (a one-off) is not in the rate.
    start, before = first or (spawned, 0)
    return Run(
        f"worker, WORKER_BATCH_SIZE={batch_size}",
        total - before,
        finished - start,
        {
            "batch_size": batch_size,
            "wall_from_spawn_s": round(finished - spawned, 2),
            "worker_cpu_pct": round(100 * cpu / (finished - spawned), 1),
            "xadd_per_s": round(total / fill_seconds),
        },
    )


async def measure(
    bench: BenchStack, total: int, sample: int, batch_sizes: Sequence[int]
) -> list[Run]:
    conn = await asyncpg.connect(bench.database_url)
    redis = Redis.from_url(bench.redis_url)
    try:
        fixture = await create_fixture(conn, CONVERSATIONS)
        runs = [
            await raw_copy(conn, fixture, total),
            await row_by_row(conn, fixture, total, sample),
        ]
        for batch_size in batch_sizes:
            # COPY's own rate drifts by up to 40 % within a run on a shared machine: each
            # drain is compared with a COPY timed just before it, as well as the first.
            adjacent = await raw_copy(conn, fixture, total)
            run = await drain(bench, conn, redis, fixture, total, batch_size)
            extra = run.extra | {"adjacent_copy_rows_per_s": round(adjacent.rate)}
            runs.append(Run(run.method, run.rows, run.seconds, extra))
        return runs
    finally:
        await redis.aclose()
        await conn.close()


def figures(runs: Sequence[Run]) -> dict[str, Any]:
    copy, naive, *workers = runs

    def summary(run: Run) -> dict[str, Any]:
        return {
            "rows": run.rows,
            "seconds": round(run.seconds, 3),
            "rows_per_s": round(run.rate),
            "vs_copy": round(run.rate / copy.rate, 3),
            "vs_row_by_row": round(run.rate / naive.rate, 2),
            **run.extra,
        }

    def worker(run: Run) -> dict[str, Any]:
        vs_adjacent = run.rate / run.extra["adjacent_copy_rows_per_s"]
        return summary(run) | {
            "vs_adjacent_copy": round(vs_adjacent, 3),
            "met": vs_adjacent >= TARGET_VS_COPY,
        }

    return {
        "messages": copy.rows,
        "conversations": CONVERSATIONS,
        "postgres": CLUSTER,
        "raw_copy": summary(copy),
        "row_by_row": summary(naive),
        "worker": [worker(run) for run in workers],
        "target_vs_copy": TARGET_VS_COPY,
        "persist_lag_during_fanout": None,  # needs the fan-out load generator
    }


def table(runs: Sequence[Run]) -> str:
    copy, naive = runs[0], runs[1]
    lines = [
        f"{'method':<40} {'rows':>10} {'seconds':>9} {'rows/s':>10} {'vs COPY':>8} {'vs naive':>9}"
    ]
    for run in runs:
        lines.append(
            f"{run.method:<40} {run.rows:>10,} {run.seconds:>9.2f} {run.rate:>10,.0f} "
            f"{run.rate / copy.rate:>8.1%} {run.rate / naive.rate:>8.1f}x"
        )
    for run in runs[2:]:
        adjacent = run.extra["adjacent_copy_rows_per_s"]
        lines.append(
            f"  {run.method}: {run.rate / adjacent:.1%} of a raw COPY timed just before it "
            f"({adjacent:,} rows/s); {run.extra['wall_from_spawn_s']} s from spawn, worker CPU "
            f"{run.extra['worker_cpu_pct']}%, stream filled at {run.extra['xadd_per_s']:,} XADD/s"
        )
    lines.append(
        f"target: worker >= {TARGET_VS_COPY:.0%} of the raw COPY timed just before it; "
        f"PostgreSQL: {CLUSTER}"
    )
    lines.append("persist lag during fan-out: see the fan-out table (backlog, catch-up)")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--sample", type=int, default=ROW_BY_ROW_SAMPLE, help="row-by-row rows")
    parser.add_argument("--batch-sizes", default="500,5000", help="WORKER_BATCH_SIZE values")
    args = parser.parse_args(argv)
    batch_sizes = [int(size) for size in args.batch_sizes.split(",")]
    sample = min(args.sample, args.messages)
    with bench_stack() as bench:
        runs = uvloop.run(measure(bench, args.messages, sample, batch_sizes))
    sys.stdout.write(table(runs))
    sys.stdout.write(record("persistence", figures(runs)) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
