"""Reachability of one dependency: exponential back-off, logged once per change of state."""

from __future__ import annotations

import time

from loguru import logger
from prometheus_client import Gauge

BACKOFF_FIRST = 0.1  # most blips (a failover, a restart) are short: try again soon
# An outage of minutes costs one attempt every 5 s; recovery is noticed in 5 s. The worker
# takes WORKER_RETRY_MAX (this by default).
BACKOFF_MAX = 5.0


class Backoff:
    """Delays that double from BACKOFF_FIRST up to BACKOFF_MAX, reset after a success."""

    def __init__(self, first: float = BACKOFF_FIRST, ceiling: float = BACKOFF_MAX) -> None:
        self._first = first
        self._ceiling = ceiling
        self._next = first

    def next_delay(self) -> float:
        delay = self._next
        self._next = min(self._next * 2, self._ceiling)
        return delay

    def reset(self) -> None:
        self._next = self._first


class Outage:
    """Whether PostgreSQL or Redis answers; `failed` and `recovered` log only transitions."""

    def __init__(self, dependency: str, gauge: Gauge, ceiling: float = BACKOFF_MAX) -> None:
        self.dependency = dependency
        self._gauge = gauge
        self._backoff = Backoff(ceiling=ceiling)
        self._down_since: float | None = None
        self.attempts = 0  # failed attempts in the current outage

    @property
    def down(self) -> bool:
        return self._down_since is not None

    def failed(self, error: BaseException) -> float:
        """Record a failed attempt; return how long to wait before the next one."""
        self.attempts += 1
        if self._down_since is None:
            self._down_since = time.monotonic()
            self._gauge.set(1)
            logger.bind(dependency=self.dependency, error=_describe(error)).warning(
                "dependency_down"
            )
        delay = self._backoff.next_delay()
        logger.bind(dependency=self.dependency, attempt=self.attempts, retry_in=delay).debug(
            "dependency_retry"
        )
        return delay

    def recovered(self, attempted_at: float | None = None) -> None:
        """Record a success, made by an attempt that started at `attempted_at` (monotonic).

        Attempts overlap (a blocked read beside an XACK): one that started before the
        outage began, and was answered by the server on its way down, does not end it.
        """
        down_since = self._down_since
        if down_since is not None and attempted_at is not None and attempted_at < down_since:
            return
        if down_since is not None:
            seconds = round(time.monotonic() - down_since, 3)
            logger.bind(
                dependency=self.dependency, down_seconds=seconds, attempts=self.attempts
            ).info("dependency_up")
            self._down_since = None
            self._gauge.set(0)
        self.attempts = 0
        self._backoff.reset()


def _describe(error: BaseException) -> str:
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__
