"""Prometheus metrics of one worker process, in a registry of its own."""

from __future__ import annotations

import bisect
import itertools
import math
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence

from loguru import logger
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import HistogramMetricFamily, Metric
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

# Entries per batch: 1 under a trickle, WORKER_BATCH_SIZE (5,000) or a read past it when behind.
BATCH_BUCKETS = (1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000)
# From send to commit: ~10 ms when keeping up, seconds when behind, minutes after an outage.
LAG_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)


class WorkerMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        self.batch_size = Histogram(
            "gochat_worker_batch_size",
            "Stream entries handled per batch.",
            buckets=BATCH_BUCKETS,
            registry=self.registry,
        )
        self.rows_persisted = Counter(
            "gochat_worker_rows_persisted",
            "Messages inserted into PostgreSQL (redeliveries absorbed by ON CONFLICT not counted).",
            registry=self.registry,
        )
        self.persist_lag = BatchHistogram(
            "gochat_worker_persist_lag_seconds",
            "Time from a message's sent_at to the commit that stored it.",
            buckets=LAG_BUCKETS,
            registry=self.registry,
        )
        self.recent_trimmed = Counter(
            "gochat_worker_recent_trimmed",
            "Messages dropped from the recent caches in Redis once persisted.",
            registry=self.registry,
        )
        self.pending = Gauge(
            "gochat_worker_pending_entries",
            "Entries delivered to the consumer group but not yet acknowledged, per stream.",
            ["stream"],
            registry=self.registry,
        )
        self.dead_letters = Counter(
            "gochat_worker_dead_letters",
            "Entries moved to a dead-letter stream, by reason.",
            ["reason"],
            registry=self.registry,
        )
        self.entries_dropped = Counter(
            "gochat_worker_entries_dropped",
            "Entries acknowledged unstored because their conversation was deleted meanwhile.",
            registry=self.registry,
        )
        self.webhook_events_queued = Counter(
            "gochat_worker_webhook_events_queued",
            "Webhook events queued for members with no open socket, after their batch's commit.",
            registry=self.registry,
        )
        self.webhook_queue_failures = Counter(
            "gochat_worker_webhook_queue_failures",
            "Committed messages whose webhook events could not be (all) queued.",
            registry=self.registry,
        )
        self.postgres_down = Gauge(
            "gochat_worker_postgres_down",
            "1 while PostgreSQL is unreachable and batches wait, else 0.",
            registry=self.registry,
        )
        self.redis_down = Gauge(
            "gochat_worker_redis_down",
            "1 while Redis is unreachable, else 0.",
            registry=self.registry,
        )


def serve(registry: CollectorRegistry, port: int) -> Callable[[], None] | None:
    """Expose /metrics on `port` from a daemon thread (port 0: nowhere); return the function
    that stops it, or None, logged, when the port cannot be had."""
    if not port:
        return lambda: None
    try:
        server, thread = start_http_server(port, registry=registry)
    except OSError as exc:
        logger.bind(port=port, error=str(exc)).error("metrics_port_unavailable")
        return None

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join()

    return stop


class BatchHistogram(Collector):
    """A histogram that takes a batch of values at once.

    One value per row through Histogram.observe (two locks and a bucket scan each) was
    8 % of the worker's CPU at 500-row batches; this takes one lock per batch.
    """

    def __init__(
        self, name: str, documentation: str, buckets: Sequence[float], registry: CollectorRegistry
    ) -> None:
        self._name = name
        self._documentation = documentation
        self._bounds = [*buckets, math.inf]
        self._labels = [*(repr(float(b)) for b in buckets), "+Inf"]  # as Histogram writes `le`
        self._counts = [0] * len(self._bounds)
        self._sum = 0.0
        self._lock = threading.Lock()  # collect() runs on the metrics server's thread
        registry.register(self)

    def observe_many(self, values: Iterable[float]) -> None:
        counts = [0] * len(self._bounds)
        total = 0.0
        for value in values:
            counts[bisect.bisect_left(self._bounds, value)] += 1  # first bound >= value: `le`
            total += value
        with self._lock:
            self._counts = [mine + new for mine, new in zip(self._counts, counts, strict=True)]
            self._sum += total

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            counts, total = self._counts, self._sum
        cumulative = itertools.accumulate(counts)
        buckets = list(zip(self._labels, cumulative, strict=True))
        yield HistogramMetricFamily(
            self._name, self._documentation, buckets=buckets, sum_value=total
        )
