"""Prometheus metrics of one webhook deliverer, in a registry of its own."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.process_collector import ProcessCollector

# A receiver answers in tens of milliseconds; NOTIFY_WEBHOOK_TIMEOUT (5 s) cuts one off.
ATTEMPT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class DeliveryMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        ProcessCollector(registry=self.registry)
        self.attempts = Counter(
            "gochat_webhook_attempts",
            "POSTs to the webhook receiver, by outcome: delivered (2xx), retry (anything else, "
            "tried again later), dead (anything else, past NOTIFY_WEBHOOK_GIVE_UP).",
            ["outcome"],
            registry=self.registry,
        )
        self.attempt_seconds = Histogram(
            "gochat_webhook_attempt_seconds",
            "Time of one POST, from its start to the receiver's status or the timeout.",
            buckets=ATTEMPT_BUCKETS,
            registry=self.registry,
        )
        self.pending = Gauge(
            "gochat_webhook_pending",
            "Events read by a deliverer and not yet delivered or given up on.",
            registry=self.registry,
        )
