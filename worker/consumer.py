"""The stream loop: read a batch, persist it, then acknowledge it; reclaim, trim, stop cleanly.

Invariant (DESIGN #1): an entry is acknowledged only after its row is committed, or after
it is filed in the dead-letter stream. Anything that fails in between leaves it pending,
to be retried here or reclaimed by another worker, and ON CONFLICT absorbs the repeat.

The next batch is read and decoded while the current one is being committed, so the
worker is not idle while PostgreSQL works; batches still reach PostgreSQL one at a time,
in order, and each is acknowledged after its own commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg
from loguru import logger
from redis import exceptions as redis_errors
from redis.asyncio import Redis

from gochat_py.outages import REDIS_DOWN
from gochat_py.redis import keys
from gochat_py.redis.recent import RecentCache
from gochat_py.settings import Settings
from worker import triage
from worker.group import (
    DeadLetter,
    Entry,
    claim_idle,
    consumer_name,
    is_missing_group,
    join,
    keep_claimed,
    leave,
    pending_count,
    read_new,
    settle,
    trim_acknowledged,
)
from worker.metrics import WorkerMetrics
from worker.outage import BACKOFF_MAX, Backoff, Outage
from worker.persist import Failure, Persisted, Row, classify, persist_isolating
from worker.watermark import RECENT_TAIL, RECENT_TRIM_STEP, trim_recent
from worker.webhook_fanout import WebhookFanout

RECLAIM_EVERY_MAX = 5.0  # seconds; and at most claim_idle / 2, so orphans wait little past it
TRIM_EVERY = 5.0  # seconds; an XINFO, an XPENDING and an XTRIM per partition: cheap
STOP_GRACE = 10.0  # a stopping worker retries its batch this long, then leaves it pending
# Entries per partition per XREADGROUP or XAUTOCLAIM. Redis builds a reply in one go while
# every other client, the API server's sends included, waits: 0.7 ms for 500 entries,
# 11 ms for 5,000 (measured). A larger batch is gathered from several such reads.
READ_CHUNK = 500


@dataclass(frozen=True, slots=True)
class ConsumerConfig:
    partitions: int
    batch_size: int
    claim_idle: float  # seconds an entry may sit unacknowledged before another worker takes it
    max_deliveries: int
    stop_grace: float = STOP_GRACE
    trim_every: float = TRIM_EVERY
    recent_tail: int = RECENT_TAIL  # persisted messages left in each conversation's cache
    recent_trim_step: int = RECENT_TRIM_STEP
    retry_max: float = BACKOFF_MAX  # the longest wait between attempts in an outage

    @classmethod
    def from_settings(cls, settings: Settings) -> ConsumerConfig:
        # What a caught-up conversation keeps (tail + step - 1) must stay under the send
        # script's RECENT_CACHE_MAX, or a small cap would refuse every send for good.
        share = settings.recent_cache_max // 4
        return cls(
            partitions=settings.stream_partitions,
            batch_size=settings.worker_batch_size,
            claim_idle=settings.worker_claim_idle,
            max_deliveries=settings.worker_max_deliveries,
            recent_tail=min(RECENT_TAIL, share),
            recent_trim_step=max(1, min(RECENT_TRIM_STEP, share)),
            retry_max=settings.worker_retry_max,
        )


class Consumer:
    """One member of the consumer group, draining every partition into PostgreSQL."""

    def __init__(
        self,
        redis: Redis,
        pool: asyncpg.Pool,
        config: ConsumerConfig,
        metrics: WorkerMetrics,
        stop: asyncio.Event,
        name: str | None = None,
        fanout: WebhookFanout | None = None,
    ) -> None:
        self.name = name or consumer_name()
        self._fanout = fanout  # None: the webhook for offline users is off
        self._redis = redis
        self._recent = RecentCache(redis, config.partitions)
        self._pool = pool
        self._config = config
        self._metrics = metrics
        self._stop = stop
        self._log = logger.bind(consumer=self.name)
        self._postgres = Outage("postgres", metrics.postgres_down, config.retry_max)
        self._redis_outage = Outage("redis", metrics.redis_down, config.retry_max)
        self._transient = Backoff(ceiling=config.retry_max)
        self._joined = False  # the group exists on every partition (as far as we know)
        self._started = False
        self._next_reclaim = 0.0
        self._stop_deadline: float | None = None
        self._storing: asyncio.Task[None] | None = None  # a batch being committed and settled
        self._read_ahead: Sequence[Entry] = ()  # read while that batch is being stored

    async def run(self) -> None:
        """Consume until `stop` is set; the batches in hand are finished first."""
        # Beside the batch loop, not in it: the pending gauge must move while a batch
        # waits out a PostgreSQL outage, which is when it matters.
        finished = asyncio.Event()
        housekeeping = asyncio.create_task(self._housekeep(finished))
        try:
            while True:
                try:
                    if self._stop.is_set():
                        await self._finish_storing()
                        break
                    await self._cycle()
                except REDIS_DOWN as exc:
                    await self._pause(self._redis_outage.failed(exc))
                except redis_errors.ResponseError as exc:
                    if not is_missing_group(exc):
                        raise
                    # Redis came back without its data: the group must be created again.
                    self._log.bind(error=str(exc)).warning("consumer_group_missing")
                    self._joined = False
        finally:
            if self._storing is not None:
                # Leaving on an unexpected error: the batch being stored is independent of
                # it, so let it commit and settle rather than abandon it mid-transaction.
                try:
                    await self._finish_storing()
                except Exception as exc:
                    self._log.bind(error=f"{type(exc).__name__}: {exc}").error("batch_abandoned")
            # Told to finish, not cancelled: on Python 3.11 a cancel that lands while redis-py
            # sends a command is swallowed by its asyncio.wait_for (CPython gh-86296), the task
            # runs on, and awaiting it would hang the stop for good.
            finished.set()
            await housekeeping
        await self._leave()
        self._log.info("worker_stopped")

    async def _cycle(self) -> None:
        if not self._joined:
            await join(self._redis, self._config.partitions)
            if not self._started:
                self._log.bind(partitions=self._config.partitions).info("worker_started")
            self._joined = self._started = True
        now = time.monotonic()
        if now >= self._next_reclaim:
            # Reclaiming reads delivery counts back from the pending list on the assumption
            # that this consumer holds nothing else.
            await self._finish_storing()
            await self._reclaim()
            self._next_reclaim = now + min(RECLAIM_EVERY_MAX, self._config.claim_idle / 2)
            if self._stop.is_set():
                return
        read_at = time.monotonic()
        entries = await self._read_batch()
        if self._redis_outage.down:
            # The idle pooled connections still point at the server that went away: drop
            # them, or the XACK beside the next read fails on one and reports a second outage.
            await self._redis.connection_pool.disconnect(inuse_connections=False)
        self._redis_outage.recovered(read_at)
        if not entries:
            return
        self._read_ahead = entries
        try:
            rows, dead = self._decode(entries)
            await self._finish_storing()
        finally:
            self._read_ahead = ()
        self._storing = asyncio.create_task(self._store(entries, rows, dead))

    async def _read_batch(self) -> list[Entry]:
        """New entries for one transaction: up to batch_size, read READ_CHUNK at a time."""
        partitions, batch_size = self._config.partitions, self._config.batch_size
        count = min(batch_size, READ_CHUNK)
        entries = await read_new(self._redis, self.name, partitions, count)
        chunk = entries
        # A full chunk means more may be waiting; an empty or short one that the stream ran dry.
        while len(chunk) >= count and len(entries) < batch_size and not self._stop.is_set():
            try:
                chunk = await read_new(self._redis, self.name, partitions, count, wait=False)
            except REDIS_DOWN:
                break  # keep what was read; the next read meets the outage and reports it
            entries += chunk
        return entries

    async def _finish_storing(self) -> None:
        """Wait until the batch being stored, if any, is committed and settled."""
        storing, self._storing = self._storing, None
        if storing is not None:
            await storing

    async def _handle(self, entries: Sequence[Entry]) -> None:
        """Persist one batch, then settle it: ack what is stored, dead-letter what never will be."""
        await self._store(entries, *self._decode(entries))

    def _decode(self, entries: Sequence[Entry]) -> tuple[list[tuple[Entry, Row]], list[DeadLetter]]:
        self._metrics.batch_size.observe(len(entries))
        return triage.decode(entries, self._config.max_deliveries)

    async def _store(
        self, entries: Sequence[Entry], rows: Sequence[tuple[Entry, Row]], dead: list[DeadLetter]
    ) -> None:
        """Persist a decoded batch, then settle it."""
        done: list[Entry] = []
        if rows:
            persisted = await self._persist(rows)
            if persisted is None:
                return
            done, refused = triage.sort_out(rows, persisted)
            dead += refused
            if persisted.gone:
                await self._drop_deleted(persisted.gone)
            if refused or persisted.gone:  # only the stored count from here on
                stored = {(entry.partition, entry.id) for entry in done}
                gone = {row.id for row in persisted.gone}
                rows = [
                    (e, r) for e, r in rows if (e.partition, e.id) in stored and r.id not in gone
                ]
        if self._fanout is not None:
            # Before the ack, like the COMMIT: a crash between them redelivers the batch,
            # which queues the same events again under the same ids (the receiver's
            # deduplication key) rather than losing them.
            await self._fanout.queue_for_offline(rows)
        # XACK only after COMMIT: a crash before it means redelivery, which ON CONFLICT absorbs.
        if await self._settle(done, dead) and done:
            await self._trim_recent(rows)
        self._log.bind(entries=len(entries), acked=len(done), dead=len(dead)).debug("batch_done")

    async def _drop_deleted(self, gone: Sequence[Row]) -> None:
        """Entries of conversations deleted meanwhile are acknowledged unstored; their keys
        are erased again, for a send that raced the deletion and wrote them anew."""
        self._metrics.entries_dropped.inc(len(gone))
        conversations = sorted({row.conversation_id for row in gone})
        self._log.bind(entries=len(gone), conversations=len(conversations)).info(
            "entries_of_deleted_conversations"
        )
        try:
            for conversation_id in conversations:
                await self._recent.erase(conversation_id)
        except REDIS_DOWN as exc:
            # Only memory waits: nothing reads a deleted conversation's keys.
            self._log.bind(error=f"{type(exc).__name__}: {exc}").warning("erase_failed")

    async def _persist(self, rows: Sequence[tuple[Entry, Row]]) -> Persisted | None:
        """Commit the rows, waiting out any outage; None if stopped before it could."""
        batch = [row for _, row in rows]
        held = [entry for entry, _ in rows]
        while True:
            try:
                persisted = await persist_isolating(self._pool, batch)
            except Exception as exc:
                failure = classify(exc)
                if failure is None:
                    raise
                if failure is Failure.UNAVAILABLE:
                    delay = self._postgres.failed(exc)
                else:
                    delay = self._transient.next_delay()
                    self._log.bind(error=f"{type(exc).__name__}: {exc}", retry_in=delay).warning(
                        "persist_retry"
                    )
            else:
                self._postgres.recovered()
                self._transient.reset()
                self._record(persisted)
                return persisted
            if self._out_of_time():
                # Not acked, not dead-lettered: the group redelivers them to another worker.
                self._log.bind(entries=len(held)).warning("batch_left_pending")
                return None
            await self._wait_holding(held, delay)

    async def _wait_holding(self, held: Sequence[Entry], seconds: float) -> None:
        """Wait before a retry, keeping the entries in hand (and any read ahead) claimed."""
        heartbeat_every = self._config.claim_idle / 3
        resume_at = time.monotonic() + seconds
        while (now := time.monotonic()) < resume_at and not self._out_of_time():
            await self._keep_claimed([*held, *self._read_ahead])
            await self._pause(min(resume_at - now, heartbeat_every))

    def _record(self, persisted: Persisted) -> None:
        self._metrics.rows_persisted.inc(persisted.inserted)
        now = datetime.now(UTC)
        # A change's row carries its message's send time: its lag is not measured.
        self._metrics.persist_lag.observe_many(
            max(0.0, (now - row.sent_at).total_seconds())
            for row in persisted.committed
            if row.changed_seq is None
        )

    async def _settle(self, done: Sequence[Entry], dead: Sequence[DeadLetter]) -> bool:
        """Acknowledge the batch; False if stopped before Redis took the acknowledgement."""
        while True:
            attempted_at = time.monotonic()
            try:
                await settle(self._redis, done, dead)
            except REDIS_DOWN as exc:
                delay = self._redis_outage.failed(exc)
                if self._out_of_time():
                    # Committed but unacknowledged: redelivered later, absorbed by ON CONFLICT.
                    self._log.bind(entries=len(done) + len(dead)).warning("ack_left_pending")
                    return False
                await self._pause(delay)
                continue
            self._redis_outage.recovered(attempted_at)
            break
        for letter in dead:
            self._metrics.dead_letters.labels(letter.kind).inc()
            self._log.bind(
                stream=letter.entry.stream,
                entry_id=letter.entry.id.decode(),
                deliveries=letter.entry.deliveries,
                reason=letter.reason,
            ).warning("dead_lettered")
        return True

    async def _trim_recent(self, committed: Sequence[tuple[Entry, Row]]) -> None:
        """Drop what this batch made persistent from the recent cache, below the watermark."""
        try:
            config = self._config
            removed = await trim_recent(
                self._redis, self._recent, committed, config.recent_tail, config.recent_trim_step
            )
        except (*REDIS_DOWN, redis_errors.ResponseError) as exc:
            # Only memory waits: the next batch of each conversation trims it by score.
            self._log.bind(error=f"{type(exc).__name__}: {exc}").warning("recent_trim_failed")
            return
        self._metrics.recent_trimmed.inc(removed)

    async def _keep_claimed(self, held: Sequence[Entry]) -> None:
        try:
            await keep_claimed(self._redis, self.name, held)
        except REDIS_DOWN as exc:
            self._redis_outage.failed(exc)

    async def _reclaim(self) -> None:
        """Process entries that consumers which died (or stalled) left pending too long."""
        min_idle_ms = max(1, int(self._config.claim_idle * 1000))
        for partition in range(self._config.partitions):
            cursor = b"0-0"
            while not self._stop.is_set():
                claimed = await claim_idle(
                    self._redis,
                    partition,
                    self.name,
                    min_idle_ms,
                    min(self._config.batch_size, READ_CHUNK),
                    cursor,
                )
                if claimed.vanished:
                    # Trimmed before anyone persisted them: only a MAXLEN elsewhere does that.
                    self._log.bind(partition=partition, count=len(claimed.vanished)).error(
                        "pending_entries_vanished"
                    )
                if claimed.entries:
                    self._log.bind(partition=partition, count=len(claimed.entries)).info(
                        "entries_reclaimed"
                    )
                    await self._handle(claimed.entries)
                cursor = claimed.cursor
                if cursor in (b"0-0", "0-0"):
                    break

    async def _housekeep(self, finished: asyncio.Event) -> None:
        """Until `finished`, every trim_every seconds: trim what is acknowledged, gauge the rest."""
        while not finished.is_set():
            for partition in range(self._config.partitions):
                try:
                    removed = await trim_acknowledged(self._redis, partition)
                    pending = await pending_count(self._redis, partition)
                except REDIS_DOWN:
                    break  # the batch loop logs the outage and backs off
                except redis_errors.ResponseError as exc:
                    if not is_missing_group(exc):  # else the batch loop creates it again
                        self._log.bind(error=str(exc)).warning("housekeeping_failed")
                    break
                self._metrics.pending.labels(keys.stream(partition)).set(pending)
                if removed:
                    self._log.bind(partition=partition, removed=removed).debug("stream_trimmed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(finished.wait(), self._config.trim_every)

    async def _leave(self) -> None:
        try:
            await leave(self._redis, self._config.partitions, self.name)
        except (*REDIS_DOWN, redis_errors.ResponseError) as exc:
            self._log.bind(error=str(exc)).debug("leave_failed")

    def _out_of_time(self) -> bool:
        """True once a stop was requested and its grace period for the batch in hand is over."""
        if not self._stop.is_set():
            return False
        if self._stop_deadline is None:
            self._stop_deadline = time.monotonic() + self._config.stop_grace
        return time.monotonic() >= self._stop_deadline

    async def _pause(self, seconds: float) -> None:
        """Sleep, waking early on a stop request (unless one is already being honoured)."""
        if self._stop.is_set():
            self._out_of_time()  # starts the grace period if nothing else did
            remaining = (self._stop_deadline or 0.0) - time.monotonic()
            await asyncio.sleep(max(0.0, min(seconds, remaining)))
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), seconds)
