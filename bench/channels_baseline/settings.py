"""Django settings for the Channels baseline: no database, no apps, one channel layer from env."""

from __future__ import annotations

import os

from django.core.exceptions import ImproperlyConfigured

# Both stock channels_redis layers, with their default options: the baseline is what a
# Channels user gets out of the box. That includes RedisChannelLayer's capacity of 100 per
# channel, which one process's sockets share (their channels differ only in the local part
# after "!"): past 100 undelivered messages for the process, group_send drops the rest,
# logged only at INFO. BENCH_CHANNEL_CAPACITY sets it, to measure without that loss.
# One exception: redis-py 8's asyncio pool allows 100 connections and raises
# MaxConnectionsError past them, and channels_redis holds one per in-flight group_add or
# group_send, so 100 busy sockets crash the consumers. Half Redis's default maxclients
# (10,000) lifts that without pretending to be a tuned deployment.
REDIS_MAX_CONNECTIONS = 5000
LAYER_BACKENDS = {
    "redis": "channels_redis.core.RedisChannelLayer",
    "pubsub": "channels_redis.pubsub.RedisPubSubChannelLayer",
}


def _required(*names: str) -> str:
    """The first of these environment variables that is set."""
    for name in names:
        if os.environ.get(name):
            return os.environ[name]
    raise ImproperlyConfigured(f"set {' or '.join(names)}")


def _channel_layers(layer: str, redis_url: str) -> dict[str, dict[str, object]]:
    if layer not in LAYER_BACKENDS:
        raise ImproperlyConfigured(
            f"BENCH_CHANNEL_LAYER must be one of {', '.join(LAYER_BACKENDS)}, got {layer!r}"
        )
    host = {"address": redis_url, "max_connections": REDIS_MAX_CONNECTIONS}
    config: dict[str, object] = {"hosts": [host]}
    capacity = os.environ.get("BENCH_CHANNEL_CAPACITY", "")
    if capacity:
        if layer != "redis" or not capacity.isdigit():
            raise ImproperlyConfigured("BENCH_CHANNEL_CAPACITY is a number, for the redis layer")
        config["capacity"] = int(capacity)
    return {"default": {"BACKEND": LAYER_BACKENDS[layer], "CONFIG": config}}


# Only ever served on loopback to the benchmark's own clients.
SECRET_KEY = "channels-baseline-bench-only"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
INSTALLED_APPS: list[str] = []
DATABASES: dict[str, dict[str, str]] = {}
ROOT_URLCONF = "bench.channels_baseline.urls"
USE_TZ = True

# BENCH_REDIS_URL first; REDIS_URL is what bench.stack's environment carries.
CHANNEL_LAYERS = _channel_layers(
    _required("BENCH_CHANNEL_LAYER"), _required("BENCH_REDIS_URL", "REDIS_URL")
)
BENCH_GROUPS_FILE = _required("BENCH_GROUPS_FILE")
