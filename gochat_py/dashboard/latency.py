"""Percentiles of a Prometheus histogram over the recent past, not since the process began.

A histogram only grows; the difference between two snapshots of its buckets is the
histogram of what happened in between. A snapshot is taken whenever the figures are
read, and the oldest one kept (within WINDOW, or the last one before it) is the baseline.
"""

from __future__ import annotations

import collections
import math
import time
from collections.abc import Sequence

import msgspec
from prometheus_client import Histogram

WINDOW = 30.0  # seconds of traffic the percentiles describe: recent, yet more than a blip
QUANTILES = (0.5, 0.95, 0.99)


class Latency(msgspec.Struct, frozen=True, kw_only=True):
    p50_ms: float | None  # None: nothing was measured in the window
    p95_ms: float | None
    p99_ms: float | None
    samples: int
    window_s: float  # the seconds the percentiles cover


class LatencyWindow:
    def __init__(self, histogram: Histogram) -> None:
        self._histogram = histogram
        self._bounds, counts = self._read()
        self._snapshots = collections.deque([(time.monotonic(), counts)])

    def latency(self) -> Latency:
        now = time.monotonic()
        _, counts = self._read()
        self._snapshots.append((now, counts))
        # Keep one snapshot at or before the window's start: the baseline.
        while len(self._snapshots) > 2 and self._snapshots[1][0] <= now - WINDOW:
            self._snapshots.popleft()
        since, base = self._snapshots[0]
        recent = [new - old for new, old in zip(counts, base, strict=True)]
        p50, p95, p99 = (quantile(q, self._bounds, recent) for q in QUANTILES)
        return Latency(
            p50_ms=_ms(p50),
            p95_ms=_ms(p95),
            p99_ms=_ms(p99),
            samples=int(recent[-1]),
            window_s=round(now - since, 1),
        )

    def _read(self) -> tuple[list[float], list[float]]:
        """The buckets' upper bounds (+Inf last) and their cumulative counts."""
        bounds, counts = [], []
        for metric in self._histogram.collect():
            for sample in metric.samples:
                if sample.name.endswith("_bucket"):
                    bounds.append(float(sample.labels["le"]))
                    counts.append(sample.value)
        return bounds, counts


def quantile(q: float, bounds: Sequence[float], cumulative: Sequence[float]) -> float | None:
    """The q-quantile of a histogram as Prometheus' histogram_quantile estimates it: linear
    within the bucket it falls in; the highest finite bound if it falls past them all."""
    total = cumulative[-1] if cumulative else 0
    if total <= 0:
        return None
    rank = q * total
    lower, below = 0.0, 0.0
    for bound, count in zip(bounds, cumulative, strict=True):
        if count >= rank:
            if math.isinf(bound):
                return lower
            inside = count - below
            return lower + (bound - lower) * ((rank - below) / inside if inside else 1.0)
        lower, below = bound, count
    return lower


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 2)
