"""`python -m worker` as a real process: kill -9, PostgreSQL outage, poison, signals, scale."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from pathlib import Path

import asyncpg
import httpx
import pytest
from redis.asyncio import Redis

from gochat_py.devstack.services import DB_NAME, Postgres, free_port
from gochat_py.ids import uuid7
from gochat_py.messages import Message, encode
from gochat_py.redis import keys
from tests.harness import ROOT, poll_until, server_environment
from tests.stream_traffic import (
    Traffic,
    create_chats,
    dead_letters,
    pending,
    stored_ids,
    xadd_messages,
)

STREAM = keys.stream(0)


class WorkerProcess:
    """`python -m worker` as a subprocess, its output captured to a file."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.log_path = log_path
        with log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "worker"],
                env={**os.environ, **env},
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    async def wait_started(self, timeout: float = 30.0) -> None:
        async def started() -> bool:
            if self.process.poll() is not None:
                raise AssertionError(f"worker exited: {self.output()}")
            return "worker_started" in self.output()

        await poll_until(started, timeout, "the worker to join the group")

    def send(self, sig: signal.Signals) -> None:
        self.process.send_signal(sig)

    async def exit_code(self, timeout: float = 20.0) -> int:
        async def exited() -> bool:
            return self.process.poll() is not None

        await poll_until(exited, timeout, "the worker to exit")
        return self.process.returncode

    def kill(self) -> None:
        self.process.kill()
        self.process.wait()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def events(self, name: str, *fields: str) -> list[str]:
        """Log lines of one event that carry every `key=value` in `fields`."""
        return [
            line
            for line in self.output().splitlines()
            if f" {name} " in f"{line} " and all(f in line.split() for f in fields)
        ]


StartWorker = Callable[..., WorkerProcess]


@pytest.fixture
def start_worker(tmp_path: Path) -> Iterator[StartWorker]:
    started: list[WorkerProcess] = []

    def start(database_url: str, redis_url: str, **overrides: str) -> WorkerProcess:
        settings = {"LOG_LEVEL": "info", "WORKER_METRICS_PORT": "0", **overrides}
        env = server_environment(database_url, redis_url, **settings)
        worker = WorkerProcess(env, tmp_path / f"worker-{len(started)}.log")
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


@pytest.fixture
def own_postgres(workdir: Path) -> Iterator[Postgres]:
    """A PostgreSQL of this test's own, with the schema, that the test may stop and start."""
    server = Postgres(workdir / f"pg-{free_port()}", free_port(), durable=False)
    server.start()
    server.psql((ROOT / "database" / "schema.sql").read_text(), database=DB_NAME)
    yield server
    server.stop()


@contextlib.asynccontextmanager
async def producing(
    redis: Redis, messages: Sequence[Message], chunk: int = 100, pause: float = 0.02
) -> AsyncIterator[asyncio.Task[None]]:
    """Append `messages` in the background, `chunk` at a time, as live traffic would."""

    async def produce() -> None:
        for start in range(0, len(messages), chunk):
            await xadd_messages(redis, messages[start : start + chunk])
            await asyncio.sleep(pause)

    task = asyncio.create_task(produce())
    try:
        yield task
    finally:
        await task


async def count_rows(database_url: str) -> int:
    """Rows in messages, or -1 while PostgreSQL does not answer."""
    try:
        conn = await asyncpg.connect(database_url, timeout=2)
    except (OSError, asyncpg.PostgresError):
        return -1
    try:
        return int(await conn.fetchval("SELECT count(*) FROM messages"))
    finally:
        await conn.close()


def rows_reach(database_url: str, expected: int) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return await count_rows(database_url) >= expected

    return check


async def nothing_pending(redis: Redis) -> bool:
    return await pending(redis) == 0


async def something_pending(redis: Redis) -> bool:
    return await pending(redis) > 0


async def scrape(port: int) -> str:
    async with httpx.AsyncClient() as client:
        try:
            response = await client.get(f"http://127.0.0.1:{port}/metrics", timeout=2)
        except httpx.TransportError:
            return ""
    return response.text if response.status_code == 200 else ""


def sample(text: str, name: str) -> float | None:
    for line in text.splitlines():
        metric, _, value = line.rpartition(" ")
        if metric == name:
            return float(value)
    return None


async def assert_stored_exactly_once(
    db: asyncpg.Connection, redis: Redis, traffic: Traffic
) -> None:
    ids = await stored_ids(db)
    assert len(ids) == len(set(ids)) == len(traffic.sent)
    assert set(ids) == {m.id for m in traffic.sent}
    assert dict(await db.fetch("SELECT id, last_seq FROM conversations")) == traffic.seqs
    assert await dead_letters(redis) == []


async def test_a_worker_killed_mid_burst_then_restarted_stores_every_message_exactly_once(
    db: asyncpg.Connection,
    redis: Redis,
    database_url: str,
    redis_url: str,
    start_worker: StartWorker,
) -> None:
    traffic = Traffic(await create_chats(db, 20))
    burst = traffic.burst(5000)
    settings = {"WORKER_BATCH_SIZE": "200", "WORKER_CLAIM_IDLE": "1s"}
    first = start_worker(database_url, redis_url, **settings)
    await first.wait_started()

    async with producing(redis, burst, chunk=500, pause=0.01):
        await poll_until(rows_reach(database_url, 1000), 30, "1,000 rows")

        async def frozen_mid_batch() -> bool:
            # SIGSTOP first, so the batch it holds cannot be acked between look and kill.
            first.send(signal.SIGSTOP)
            if await pending(redis) >= 50:
                return True
            first.send(signal.SIGCONT)
            return False

        await poll_until(frozen_mid_batch, what="the worker frozen between read and ack")
        first.kill()
        held_at_kill = await pending(redis)
        stored_at_kill = await count_rows(database_url)
    second = start_worker(database_url, redis_url, **settings)
    await poll_until(rows_reach(database_url, 5000), 60, "all 5,000 rows")
    await poll_until(lambda: nothing_pending(redis), what="every entry acknowledged")

    assert held_at_kill >= 50 and stored_at_kill < 5000
    await assert_stored_exactly_once(db, redis, traffic)
    assert second.events("entries_reclaimed"), second.output()


async def test_a_worker_killed_holding_a_batch_read_ahead_of_its_commit_loses_nothing(
    db: asyncpg.Connection,
    redis: Redis,
    database_url: str,
    redis_url: str,
    start_worker: StartWorker,
) -> None:
    chat = (await create_chats(db, 1))[0]
    traffic = Traffic([chat])
    await redis.xgroup_create(STREAM, keys.CONSUMER_GROUP, id="0", mkstream=True)
    await xadd_messages(redis, traffic.burst(300))  # before the worker: full batches of 100
    settings = {"WORKER_BATCH_SIZE": "100", "WORKER_CLAIM_IDLE": "1s"}
    blocker = await asyncpg.connect(database_url)
    try:
        # FOR UPDATE conflicts with the key-share lock each inserted row's foreign key
        # takes: the worker's first batch waits in its transaction, uncommitted.
        transaction = blocker.transaction()
        await transaction.start()
        await blocker.execute(
            "SELECT 1 FROM conversations WHERE id = $1 FOR UPDATE", chat.conversation_id
        )
        first = start_worker(database_url, redis_url, **settings)

        async def read_ahead() -> bool:
            return await pending(redis) == 200  # the batch committing and the next one

        await poll_until(read_ahead, what="a second batch read while the first commits")
        first.kill()
        await transaction.rollback()
    finally:
        await blocker.close()
    assert await count_rows(database_url) == 0

    second = start_worker(database_url, redis_url, **settings)
    await poll_until(rows_reach(database_url, 300), 30, "all 300 rows")
    await poll_until(lambda: nothing_pending(redis), what="every entry acknowledged")

    await assert_stored_exactly_once(db, redis, traffic)
    assert second.events("entries_reclaimed"), second.output()


async def test_postgres_stopped_under_load_then_started_again_stores_everything_once(
    redis: Redis, redis_url: str, own_postgres: Postgres, start_worker: StartWorker
) -> None:
    database_url = own_postgres.url()
    db = await asyncpg.connect(database_url)
    traffic = Traffic(await create_chats(db, 10))
    await db.close()
    port = free_port()
    worker = start_worker(
        database_url,
        redis_url,
        WORKER_BATCH_SIZE="100",
        WORKER_METRICS_PORT=str(port),
        LOG_LEVEL="debug",
    )
    await worker.wait_started()
    await xadd_messages(redis, traffic.burst(500))
    await poll_until(rows_reach(database_url, 500), 30, "rows before the outage")

    own_postgres.stop()
    async with producing(redis, traffic.burst(1000), chunk=100, pause=0.05):

        async def reported_down() -> bool:
            return sample(await scrape(port), "gochat_worker_postgres_down") == 1

        await poll_until(reported_down, what="the worker to report PostgreSQL down")

    async def retried() -> bool:
        return len(worker.events("dependency_retry", "dependency=postgres")) >= 4

    await poll_until(retried, what="four attempts at the stopped PostgreSQL")
    assert await pending(redis) > 0  # the batch in hand: read, held, not acknowledged
    assert await dead_letters(redis) == []
    assert worker.process.poll() is None
    own_postgres.start()
    await poll_until(rows_reach(database_url, 1500), 30, "the worker to catch up")
    await poll_until(lambda: nothing_pending(redis), what="every entry acknowledged")

    db = await asyncpg.connect(database_url)
    try:
        await assert_stored_exactly_once(db, redis, traffic)
    finally:
        await db.close()
    assert len(worker.events("dependency_down", "dependency=postgres")) == 1, worker.output()
    assert len(worker.events("dependency_up", "dependency=postgres")) == 1, worker.output()


async def test_a_poison_entry_is_dead_lettered_with_its_reason_while_the_rest_persist(
    db: asyncpg.Connection,
    redis: Redis,
    database_url: str,
    redis_url: str,
    start_worker: StartWorker,
) -> None:
    chat = (await create_chats(db, 1))[0]
    traffic = Traffic([chat])
    before = traffic.burst(5)
    poison = traffic.message(chat, sender_id=uuid7())  # no such user
    after = traffic.burst(5)
    poison_id = (await xadd_messages(redis, [*before, poison, *after]))[5]
    garbage_id = await redis.xadd(STREAM, {"m": b"{not json"})

    worker = start_worker(database_url, redis_url)
    await poll_until(rows_reach(database_url, 10), 30, "the good rows")
    await poll_until(lambda: nothing_pending(redis), what="every entry acknowledged")

    assert set(await stored_ids(db)) == {m.id for m in before + after}
    letters = {d[b"source_id"]: d for d in await dead_letters(redis)}
    assert set(letters) == {poison_id, garbage_id}
    assert letters[poison_id][b"m"] == encode(poison)
    assert letters[poison_id][b"reason"].startswith(b"rejected by PostgreSQL: 23503 ")
    assert b"sender_id" in letters[poison_id][b"reason"]
    assert letters[garbage_id][b"reason"].startswith(b"undecodable: ")
    assert len(worker.events("dead_lettered")) == 2


async def test_sigterm_mid_batch_finishes_the_batch_in_hand_and_exits_zero(
    db: asyncpg.Connection,
    redis: Redis,
    database_url: str,
    redis_url: str,
    start_worker: StartWorker,
) -> None:
    traffic = Traffic(await create_chats(db, 10))
    await redis.xgroup_create(STREAM, keys.CONSUMER_GROUP, id="0", mkstream=True)
    await xadd_messages(redis, traffic.burst(5000))
    worker = start_worker(database_url, redis_url, WORKER_BATCH_SIZE="500")
    await worker.wait_started()

    await poll_until(lambda: something_pending(redis), what="a batch between read and ack")
    worker.send(signal.SIGTERM)

    assert await worker.exit_code() == 0, worker.output()
    (group,) = await redis.xinfo_groups(STREAM)
    stored = len(await stored_ids(db))
    assert await pending(redis) == 0  # the batch in hand was committed and acknowledged
    assert 0 < stored == group["entries-read"] < 5000  # all it read, and it did stop early
    assert await redis.xinfo_consumers(STREAM, keys.CONSUMER_GROUP) == []  # it left the group
    assert worker.events("stop_requested") and worker.events("worker_stopped")

    start_worker(database_url, redis_url)
    await poll_until(rows_reach(database_url, 5000), 30, "the rest")
    await poll_until(lambda: nothing_pending(redis), what="every entry acknowledged")
    await assert_stored_exactly_once(db, redis, traffic)


async def test_a_second_signal_exits_at_once_leaving_the_held_batch_pending(
    db: asyncpg.Connection, redis: Redis, redis_url: str, start_worker: StartWorker
) -> None:
    traffic = Traffic(await create_chats(db, 1))
    await xadd_messages(redis, traffic.burst(3))
    unreachable = f"postgresql://gochat@127.0.0.1:{free_port()}/gochat"
    worker = start_worker(unreachable, redis_url)

    async def down() -> bool:
        return bool(worker.events("dependency_down", "dependency=postgres"))

    await poll_until(down, 30, "the worker to find PostgreSQL down")
    worker.send(signal.SIGTERM)  # would wait up to STOP_GRACE for PostgreSQL
    await poll_until(lambda: _logged(worker, "stop_requested"), what="the first signal")
    worker.send(signal.SIGTERM)

    assert await worker.exit_code(timeout=3) == 128 + signal.SIGTERM
    assert worker.events("worker_forced_exit")
    assert await pending(redis) == 3
    assert await dead_letters(redis) == []


async def _logged(worker: WorkerProcess, event: str) -> bool:
    return bool(worker.events(event))


async def test_two_workers_at_once_store_each_message_exactly_once(
    db: asyncpg.Connection,
    redis: Redis,
    database_url: str,
    redis_url: str,
    start_worker: StartWorker,
) -> None:
    traffic = Traffic(await create_chats(db, 10))
    ports = [free_port(), free_port()]
    workers = [
        start_worker(database_url, redis_url, WORKER_BATCH_SIZE="100", WORKER_METRICS_PORT=str(p))
        for p in ports
    ]
    for worker in workers:
        await worker.wait_started()

    async with producing(redis, traffic.burst(4000), chunk=200, pause=0.01):
        pass
    await poll_until(rows_reach(database_url, 4000), 60, "4,000 rows")
    await poll_until(lambda: nothing_pending(redis), what="every entry acknowledged")

    await assert_stored_exactly_once(db, redis, traffic)
    consumers = await redis.xinfo_consumers(STREAM, keys.CONSUMER_GROUP)
    assert len({c["name"] for c in consumers}) == 2
    rows = [sample(await scrape(p), "gochat_worker_rows_persisted_total") for p in ports]
    assert all(r is not None and r > 0 for r in rows), rows  # both did a share of the work
    assert sum(r or 0 for r in rows) == 4000


async def test_the_metrics_endpoint_serves_the_worker_metrics(
    db: asyncpg.Connection,
    redis: Redis,
    database_url: str,
    redis_url: str,
    start_worker: StartWorker,
) -> None:
    traffic = Traffic(await create_chats(db, 1))
    port = free_port()
    start_worker(database_url, redis_url, WORKER_METRICS_PORT=str(port))
    await xadd_messages(redis, traffic.burst(7))
    await poll_until(rows_reach(database_url, 7), 30, "the rows")

    async def counted() -> str:
        text = await scrape(port)
        return text if sample(text, "gochat_worker_rows_persisted_total") == 7 else ""

    text = await poll_until(counted, what="the rows to be counted")
    for name in (
        "gochat_worker_batch_size",
        "gochat_worker_rows_persisted_total",
        "gochat_worker_persist_lag_seconds",
        "gochat_worker_pending_entries",
        "gochat_worker_dead_letters_total",
        "gochat_worker_postgres_down",
    ):
        assert f"# TYPE {name} " in text, name
    assert sample(text, "gochat_worker_persist_lag_seconds_count") == 7
    assert sample(text, "gochat_worker_postgres_down") == 0


def test_a_bad_setting_stops_the_worker_with_one_line_naming_it() -> None:
    env = {**os.environ, "WORKER_BATCH_SIZE": "0"}
    out = subprocess.run(
        [sys.executable, "-m", "worker"], env=env, cwd=ROOT, capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip

    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [
        "configuration error: WORKER_BATCH_SIZE: '0' must be a positive whole number"
    ]
