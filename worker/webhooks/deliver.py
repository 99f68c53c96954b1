"""The delivery loop: new events and those due for another attempt, POSTed concurrently
up to a bound; each delivered, postponed with exponential backoff, or given up on.

At least once: an event is acknowledged only after the receiver answered 2xx, so a crash
anywhere before that means another attempt (the receiver deduplicates by event id).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass

from loguru import logger
from redis import exceptions as redis_errors
from redis.asyncio import Redis

from gochat_py import times
from gochat_py.outages import REDIS_DOWN
from gochat_py.settings import Settings
from worker.group import consumer_name, is_missing_group
from worker.outage import Backoff
from worker.webhooks import group
from worker.webhooks.group import Held
from worker.webhooks.metrics import DeliveryMetrics
from worker.webhooks.post import Poster

CONCURRENCY = 32  # POSTs in flight per deliverer: enough to hide a receiver's latency
RETRY_FIRST = 1.0  # seconds before the second attempt, doubling after each failure
RETRY_MAX = 600.0  # a receiver down for hours is tried every 10 minutes
# Added to the timeout in the shortest delay: an event another deliverer is posting is
# never due, so two never post it at once (its attempt ends within the timeout).
IN_FLIGHT_MARGIN = 1.0
SCAN_EVERY = 0.5  # seconds between looks at the pending list for due retries
SCAN_COUNT = 200  # pending entries looked at per scan; the next scan goes on from there
STOP_GRACE = 10.0  # seconds a stopping deliverer lets its POSTs finish
GAUGE_EVERY = 5.0  # seconds between readings of the pending count (one XPENDING)


@dataclass(frozen=True, slots=True)
class DeliveryConfig:
    timeout: float  # one attempt, start to end
    give_up: float  # seconds after being queued that a failing event is dead-lettered
    concurrency: int = CONCURRENCY
    retry_first: float = RETRY_FIRST
    retry_max: float = RETRY_MAX

    @classmethod
    def from_settings(cls, settings: Settings) -> DeliveryConfig:
        return cls(settings.notify_webhook_timeout, settings.notify_webhook_give_up)

    @property
    def floor(self) -> float:
        return self.timeout + IN_FLIGHT_MARGIN

    def retry_delay(self, attempts: int) -> float:
        """Seconds between the end of attempt `attempts` and the next one."""
        backoff = self.retry_first * 2.0 ** min(attempts - 1, 32)
        return max(self.floor, min(backoff, self.retry_max))  # the floor wins over the ceiling


class Deliverer:
    """One member of the deliverers' group."""

    def __init__(
        self,
        redis: Redis,
        poster: Poster,
        config: DeliveryConfig,
        metrics: DeliveryMetrics,
        stop: asyncio.Event,
        name: str | None = None,
    ) -> None:
        self.name = name or consumer_name()
        self._redis = redis
        self._poster = poster
        self._config = config
        self._metrics = metrics
        self._stop = stop
        self._log = logger.bind(consumer=self.name)
        self._backoff = Backoff()
        self._in_flight: dict[bytes, asyncio.Task[None]] = {}
        self._cursor = "-"
        self._next_scan = 0.0
        self._next_gauge = 0.0

    async def run(self) -> None:
        """Deliver until `stop` is set, then let the POSTs in flight finish."""
        joined = False
        while not self._stop.is_set():
            try:
                if not joined:
                    await group.join(self._redis)
                    self._log.info("webhook_deliverer_started")
                    joined = True
                await self._cycle()
                self._backoff.reset()
            except REDIS_DOWN as exc:
                delay = self._backoff.next_delay()
                self._log.bind(error=type(exc).__name__, retry_in=delay).warning("redis_down")
                await self._pause(delay)
            except redis_errors.ResponseError as exc:
                if not is_missing_group(exc):
                    raise
                self._log.bind(error=str(exc)).warning("consumer_group_missing")
                joined = False
        if self._in_flight:
            await asyncio.wait(list(self._in_flight.values()), timeout=STOP_GRACE)
        with contextlib.suppress(*REDIS_DOWN, redis_errors.ResponseError):
            await group.leave(self._redis, self.name)
        self._log.info("webhook_deliverer_stopped")

    async def _cycle(self) -> None:
        if len(self._in_flight) >= self._config.concurrency:
            await asyncio.wait(
                list(self._in_flight.values()),
                timeout=SCAN_EVERY,
                return_when=asyncio.FIRST_COMPLETED,
            )
            return
        now = time.monotonic()
        if now >= self._next_gauge:
            self._next_gauge = now + GAUGE_EVERY
            self._metrics.pending.set(await group.pending_count(self._redis))
        if now >= self._next_scan:
            self._next_scan = now + SCAN_EVERY
            due = await group.claim_due(
                self._redis,
                self.name,
                self._cursor,
                min(SCAN_COUNT, self._free()),
                _ms(self._config.floor),
                lambda attempts: _ms(self._config.retry_delay(attempts)),
                self._in_flight,
            )
            self._cursor = due.cursor
            self._start(due.held)
        if self._free():
            self._start(await group.read_new(self._redis, self.name, self._free()))

    def _free(self) -> int:
        return max(0, self._config.concurrency - len(self._in_flight))

    def _start(self, batch: list[Held]) -> None:
        for held in batch:
            task = asyncio.create_task(self._attempt(held))
            self._in_flight[held.id] = task
            task.add_done_callback(self._finished(held.id))

    def _finished(self, entry_id: bytes) -> Callable[[asyncio.Task[None]], None]:
        def forget(_: asyncio.Task[None]) -> None:
            self._in_flight.pop(entry_id, None)

        return forget

    async def _attempt(self, held: Held) -> None:
        log = self._log.bind(event_id=held.event_id, attempt=held.attempts)
        body = held.body
        started = time.monotonic()
        error = "no body" if body is None else await self._poster.post(held.event_id, body)
        self._metrics.attempt_seconds.observe(time.monotonic() - started)
        try:
            if error is None:
                await group.delivered(self._redis, held)
                self._metrics.attempts.labels("delivered").inc()
                log.debug("webhook_delivered")
            elif body is None or self._too_old(held):
                await group.give_up(self._redis, held, error)
                self._metrics.attempts.labels("dead").inc()
                log.bind(error=error).warning("webhook_dead_lettered")
            else:
                await group.postpone(self._redis, self.name, held)
                self._metrics.attempts.labels("retry").inc()
                retry_in = self._config.retry_delay(held.attempts)
                log.bind(error=error, retry_in=retry_in).info("webhook_retry")
        except (*REDIS_DOWN, redis_errors.ResponseError) as exc:
            # Still pending: it is due again once idle long enough, and posted again.
            log.bind(error=type(exc).__name__).warning("webhook_settle_failed")

    def _too_old(self, held: Held) -> bool:
        """Queued NOTIFY_WEBHOOK_GIVE_UP ago or more: its failure now is its last."""
        return times.now_ms() - held.queued_at >= self._config.give_up * 1000

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), seconds)


def _ms(seconds: float) -> int:
    return max(1, int(seconds * 1000))
