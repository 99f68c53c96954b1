"""Prometheus metrics of one process, in a registry of its own (no module-level globals)."""

from __future__ import annotations

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

# Latency buckets from 1 ms to 5 s: REST calls here are sub-millisecond to a few
# milliseconds, with argon2 logins near 100 ms.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
# From a message's sent_at (whole milliseconds) to its socket write: ~1-2 ms on an idle
# host, tens of milliseconds under a fan-out burst, seconds only when something is wrong.
DELIVERY_BUCKETS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        self.http_requests = Counter(
            "gochat_http_requests",
            "HTTP requests by method, route template and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.http_latency = Histogram(
            "gochat_http_request_duration_seconds",
            "HTTP request latency by method and route template.",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )

        self.ws_connections = Gauge(
            "gochat_ws_connections", "Open WebSocket connections.", registry=self.registry
        )
        self.ws_slow_consumers = Counter(
            "gochat_ws_slow_consumers",
            "Sockets closed (1013) because their send queue filled up.",
            registry=self.registry,
        )
        self.ws_auth_closes = Counter(
            "gochat_ws_auth_closes",
            "Sockets closed because their login session was revoked (4001) or their access "
            "token expired unrenewed (4002), by reason.",
            ["reason"],
            registry=self.registry,
        )
        self.ws_frames_rejected = Counter(
            "gochat_ws_frames_rejected",
            "Client frames answered with an error frame, by error code.",
            ["code"],
            registry=self.registry,
        )
        self.ws_resumed = Counter(
            "gochat_ws_resumed_conversations",
            "Conversations named in resume frames by members, by whether the replay covered "
            "all they missed (recovered) or sent them to history.",
            ["recovered"],
            registry=self.registry,
        )
        self.ws_replayed = Counter(
            "gochat_ws_replayed_frames",
            "Frames sent to sockets by resumes.",
            registry=self.registry,
        )
        self.messages_sent = Counter(
            "gochat_messages_sent", "Messages accepted and acknowledged.", registry=self.registry
        )
        self.deliveries = Counter(
            "gochat_deliveries", "Frames queued to local sockets.", registry=self.registry
        )
        self.delivery_latency = Histogram(
            "gochat_delivery_latency_seconds",
            "From a message's sent_at to its write on a local socket: sampled, one socket of "
            "one published frame at a time (realtime/hub.py).",
            buckets=DELIVERY_BUCKETS,
            registry=self.registry,
        )
        self.notifications = Counter(
            "gochat_notifications",
            "Notifications stored, by type.",
            ["type"],
            registry=self.registry,
        )
        self.user_event_failures = Counter(
            "gochat_user_event_failures",
            "Events to one user's devices (notification, notifications_read) that could not be "
            "published because Redis failed; what they announce is stored all the same.",
            ["event"],
            registry=self.registry,
        )
        self.webhook_events_queued = Counter(
            "gochat_webhook_events_queued",
            "Events queued for the webhook: one per recipient with no open socket, by type.",
            ["type"],
            registry=self.registry,
        )
        self.webhook_queue_failures = Counter(
            "gochat_webhook_queue_failures",
            "Recipients whose webhook event could not be queued because Redis failed, by type.",
            ["type"],
            registry=self.registry,
        )
        self.pubsub_disconnects = Counter(
            "gochat_pubsub_disconnects",
            "Times the pub/sub connection was lost and reconnected.",
            registry=self.registry,
        )
        self.presence_failures = Counter(
            "gochat_presence_failures",
            "Presence updates that failed (Redis or PostgreSQL unreachable), by step; the "
            "sockets stay open and the next heartbeat or sweep repairs the state.",
            ["step"],
            registry=self.registry,
        )

        self.recent_cache_messages = Gauge(
            "gochat_recent_cache_messages",
            "Messages held in the recent caches of a stream partition's conversations: those "
            "not yet persisted, plus each conversation's newest persisted ones.",
            ["partition"],
            registry=self.registry,
        )
        self.redis_used_memory = Gauge(
            "gochat_redis_used_memory_bytes",
            "Memory Redis uses (INFO memory used_memory), read at scrape time.",
            registry=self.registry,
        )

    def observe_redis(self, held: list[int], used_memory: int) -> None:
        for partition, count in enumerate(held):
            self.recent_cache_messages.labels(str(partition)).set(count)
        self.redis_used_memory.set(used_memory)

    def render(self) -> bytes:
        return generate_latest(self.registry)
