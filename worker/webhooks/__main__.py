"""`python -m worker.webhooks`: deliver the webhook events for offline users until SIGTERM
or SIGINT. The composition root of the deliverer: settings, logging, metrics, the Redis
client and the HTTP client are made here and handed to the Deliverer."""

from __future__ import annotations

import asyncio
import sys

import httpx
from redis.asyncio import Redis

from gochat_py.logs import configure_logging
from gochat_py.settings import Settings
from worker.__main__ import (
    REDIS_CONNECT_TIMEOUT,
    REDIS_SOCKET_TIMEOUT,
    configured,
    handle_signals,
)
from worker.metrics import serve as serve_metrics
from worker.webhooks.deliver import Deliverer, DeliveryConfig
from worker.webhooks.metrics import DeliveryMetrics
from worker.webhooks.post import Poster


def main() -> int:
    settings = configured()
    if settings is None:
        return 2
    if not settings.notify_webhook_url or not settings.notify_webhook_secret:
        sys.stderr.write("configuration error: NOTIFY_WEBHOOK_URL is not set: nothing to deliver\n")
        return 2
    configure_logging(settings.log_level, settings.log_format)
    return asyncio.run(serve(settings, settings.notify_webhook_url, settings.notify_webhook_secret))


async def serve(settings: Settings, url: str, secret: str) -> int:
    metrics = DeliveryMetrics()
    stop_metrics = serve_metrics(metrics.registry, settings.notify_webhook_metrics_port)
    if stop_metrics is None:
        return 1
    stop = asyncio.Event()
    handle_signals(stop)
    config = DeliveryConfig.from_settings(settings)
    redis = Redis.from_url(
        settings.redis_url,
        socket_timeout=REDIS_SOCKET_TIMEOUT,
        socket_connect_timeout=REDIS_CONNECT_TIMEOUT,
    )
    # Redirects are not followed: the signed body goes to the configured URL or nowhere.
    client = httpx.AsyncClient(
        timeout=config.timeout,
        follow_redirects=False,
        limits=httpx.Limits(max_connections=config.concurrency),
    )
    try:
        poster = Poster(client, url, secret, config.timeout)
        await Deliverer(redis, poster, config, metrics, stop).run()
    finally:
        await client.aclose()
        await redis.aclose()
        stop_metrics()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
