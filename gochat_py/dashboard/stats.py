"""The figures of `GET /dashboard/stats`: this process's sockets and delivery, the streams'
backlog and the dependencies' health, gathered at most once a second however many
pages poll."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import msgspec
from loguru import logger
from prometheus_client import Counter
from redis.asyncio import Redis
from redis.exceptions import RedisError

from gochat_py import times
from gochat_py.dashboard.latency import Latency, LatencyWindow
from gochat_py.metrics import Metrics
from gochat_py.realtime.hub import Hub
from gochat_py.redis.backlog import Backlog, read_backlog
from gochat_py.redis.recent import RecentCache

# Pages poll every 2-3 s and several may be open: one gathering a second serves them all
# and bounds what the dashboard costs Redis and PostgreSQL.
CACHE_SECONDS = 1.0
READ_TIMEOUT = 2.0  # a figure Redis cannot give in time is shown as unknown, not waited for

Probe = Callable[[], Awaitable[dict[str, str]]]  # rest/health.py's readiness checks
T = TypeVar("T")


class Dependency(msgspec.Struct, frozen=True):
    name: str
    up: bool
    detail: str  # "ok", or what the ping failed with


class DashboardStats(msgspec.Struct, frozen=True, kw_only=True):
    """One reading. Sockets, users, deliveries and latency are this process's; the backlog,
    the message total and Redis' figures are the whole system's."""

    at: int  # unix ms of the reading
    uptime_s: float  # of this process
    sockets: int
    users_online: int  # distinct users with at least one socket here
    deliveries_total: int  # frames this process queued to its sockets since it started
    messages_total: int | None  # messages ever sent, by any process; None while Redis is down
    delivery_latency: Latency
    backlog: Backlog | None  # None while Redis is down
    recent_cache_messages: int | None
    redis_used_memory_bytes: int | None
    health: list[Dependency]


class Dashboard:
    def __init__(
        self,
        hub: Hub,
        metrics: Metrics,
        redis: Redis,
        recent: RecentCache,
        partitions: int,
        probe: Probe,
    ) -> None:
        self._hub = hub
        self._metrics = metrics
        self._redis = redis
        self._recent = recent
        self._partitions = partitions
        self._probe = probe
        self._latency = LatencyWindow(metrics.delivery_latency)
        self._started = time.monotonic()
        self._lock = asyncio.Lock()
        self._reading: DashboardStats | None = None
        self._read_at = 0.0

    async def stats(self) -> DashboardStats:
        async with self._lock:  # concurrent pollers wait for one gathering and share it
            if self._reading is None or time.monotonic() - self._read_at >= CACHE_SECONDS:
                self._reading = await self._gather()
                self._read_at = time.monotonic()
            return self._reading

    async def _gather(self) -> DashboardStats:
        checks, backlog, held, memory = await asyncio.gather(
            self._probe(),
            _or_none(read_backlog(self._redis, self._partitions)),
            _or_none(self._recent.held()),
            _or_none(self._recent.used_memory()),
        )
        return DashboardStats(
            at=times.now_ms(),
            uptime_s=round(time.monotonic() - self._started, 1),
            sockets=self._hub.sockets,
            users_online=self._hub.users,
            deliveries_total=_total(self._metrics.deliveries),
            messages_total=None if backlog is None else backlog.messages_total,
            delivery_latency=self._latency.latency(),
            backlog=backlog,
            recent_cache_messages=None if held is None else sum(held),
            redis_used_memory_bytes=memory,
            health=[Dependency(name, state == "ok", state) for name, state in checks.items()],
        )


async def _or_none(read: Awaitable[T]) -> T | None:
    try:
        return await asyncio.wait_for(read, READ_TIMEOUT)
    except (RedisError, OSError, TimeoutError) as exc:
        logger.debug("dashboard_read_failed", error=type(exc).__name__)
        return None


def _total(counter: Counter) -> int:
    """A counter's value through its public collect()."""
    for metric in counter.collect():
        for sample in metric.samples:
            if sample.name.endswith("_total"):
                return int(sample.value)
    return 0
