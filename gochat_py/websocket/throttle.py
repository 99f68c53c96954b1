"""Per-user send budgets for WebSocket frames, kept in process memory.

In memory rather than Redis so the send path stays at one Redis round trip; a user with
sockets on k server processes gets k budgets, which bounds abuse just the same.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from gochat_py.ids import UserId

IDLE_BUCKET_SECONDS = 300.0  # a bucket untouched this long is full anyway: forget it


class Throttle:
    """Token buckets: `rate` frames per second on average, bursts up to `burst`."""

    def __init__(
        self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._rate = rate
        self._burst = float(burst)
        self._clock = clock
        self._buckets: dict[UserId, tuple[float, float]] = {}
        self._last_sweep = clock()

    def take(self, user: UserId) -> float:
        """Spend one token: 0.0 if allowed, else the seconds until one is available."""
        now = self._clock()
        tokens, stamp = self._buckets.get(user, (self._burst, now))
        tokens = min(self._burst, tokens + (now - stamp) * self._rate)
        if tokens >= 1.0:
            self._buckets[user] = (tokens - 1.0, now)
            wait = 0.0
        else:
            self._buckets[user] = (tokens, now)
            wait = (1.0 - tokens) / self._rate
        if now - self._last_sweep > IDLE_BUCKET_SECONDS:
            self._sweep(now)
        return wait

    def _sweep(self, now: float) -> None:
        self._last_sweep = now
        stale = [u for u, (_, stamp) in self._buckets.items() if now - stamp > IDLE_BUCKET_SECONDS]
        for user in stale:
            del self._buckets[user]
