from __future__ import annotations

import math

from prometheus_client import CollectorRegistry, Histogram

from gochat_py.dashboard.latency import LatencyWindow, quantile

BOUNDS = [0.001, 0.002, 0.005, math.inf]


def test_a_quantile_is_interpolated_within_its_bucket() -> None:
    # 10 samples: 4 up to 1 ms, 4 more up to 2 ms, 2 more up to 5 ms.
    cumulative = [4, 8, 10, 10]
    assert quantile(0.5, BOUNDS, cumulative) == 0.001 + 0.001 * (1 / 4)
    assert quantile(0.2, BOUNDS, cumulative) == 0.001 * (2 / 4)
    assert quantile(0.95, BOUNDS, cumulative) == 0.002 + 0.003 * (1.5 / 2)


def test_a_quantile_past_the_last_bound_is_that_bound_and_none_without_samples() -> None:
    assert quantile(0.99, BOUNDS, [0, 0, 1, 10]) == 0.005
    assert quantile(0.5, BOUNDS, [0, 0, 0, 0]) is None


def test_the_window_counts_only_what_was_observed_since_the_first_reading() -> None:
    histogram = Histogram("t", "t", buckets=BOUNDS[:-1], registry=CollectorRegistry())
    for _ in range(100):
        histogram.observe(0.0045)  # before the window exists: not in it
    window = LatencyWindow(histogram)
    assert window.latency().samples == 0
    histogram.observe(0.0005)
    latency = window.latency()
    assert latency.samples == 1
    assert latency.p99_ms is not None and latency.p99_ms <= 1.0
