from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, Histogram

from worker.metrics import LAG_BUCKETS, BatchHistogram

VALUES = [0.0, 0.005, 0.0051, 0.3, 1.0, 2.5, 59.9, 300.0, 301.0, 7200.0]  # bounds included


def buckets_and_count(registry: CollectorRegistry) -> list[tuple[str, dict[str, str], float]]:
    return [
        (s.name, s.labels, s.value)
        for metric in registry.collect()
        for s in metric.samples
        if s.name.endswith(("_bucket", "_count"))
    ]


def test_a_batch_of_values_exports_what_one_observe_per_value_would() -> None:
    theirs, ours = CollectorRegistry(), CollectorRegistry()
    histogram = Histogram("lag_seconds", "lag", buckets=LAG_BUCKETS, registry=theirs)
    for value in VALUES:
        histogram.observe(value)

    batched = BatchHistogram("lag_seconds", "lag", buckets=LAG_BUCKETS, registry=ours)
    batched.observe_many(VALUES[:4])
    batched.observe_many([])
    batched.observe_many(iter(VALUES[4:]))

    assert buckets_and_count(ours) == buckets_and_count(theirs)
    assert ours.get_sample_value("lag_seconds_sum") == pytest.approx(sum(VALUES))
    assert ours.get_sample_value("lag_seconds_count") == len(VALUES)
    assert ours.get_sample_value("lag_seconds_bucket", {"le": "0.005"}) == 2
