"""`python -m worker`: drain the message streams into PostgreSQL until SIGTERM or SIGINT.

The composition root: settings, logging, metrics, the asyncpg pool and the Redis client
are made here and handed to the Consumer as plain parameters.
"""

from __future__ import annotations

import asyncio
import gc
import os
import signal
import sys

import asyncpg
from loguru import logger
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from gochat_py.blobs.configured import media_store, staging_dir
from gochat_py.logs import configure_logging
from gochat_py.postgres.media import MediaRecords
from gochat_py.redis.webhook_queue import WebhookQueue
from gochat_py.settings import Settings, SettingsError, load_settings
from worker.consumer import Consumer, ConsumerConfig
from worker.group import READ_BLOCK_MS
from worker.media_cleanup import MediaCleanup
from worker.metrics import WorkerMetrics
from worker.metrics import serve as serve_metrics
from worker.webhook_fanout import WebhookFanout

POOL_MAX = 2  # one batch at a time, plus a spare while a broken connection is replaced
PG_CONNECT_TIMEOUT = 5.0  # seconds; an unreachable host fails fast and the batch backs off
PG_COMMAND_TIMEOUT = 60.0  # a 5,000-row batch takes ~0.1 s; a minute means a hung server
REDIS_CONNECT_TIMEOUT = 5.0
# Blocking reads wait READ_BLOCK_MS; silence well past that means a dead server or link.
REDIS_SOCKET_TIMEOUT = READ_BLOCK_MS / 1000 + 5.0
# One immediate retry absorbs a stale pooled connection after a Redis restart; beyond that
# the consumer backs off itself and logs the outage, rather than redis-py retrying unseen.
REDIS_RETRIES = 1
CLOSE_TIMEOUT = 5.0  # seconds to close the pool politely before terminating it
# A batch allocates some ten tracked objects per row, all alive until it is settled: at
# the default 700 the collector ran every 70 rows over objects that could not be garbage
# (3-4 µs of worker CPU per row, measured). 20,000 bounds the garbage between passes.
GC_GEN0_THRESHOLD = 20_000


def main() -> int:
    settings = configured()
    if settings is None:
        return 2
    configure_logging(settings.log_level, settings.log_format)
    # Modules and settings live as long as the process: out of every collection's scan.
    gc.freeze()
    _, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(GC_GEN0_THRESHOLD, gen1, gen2)
    return asyncio.run(serve(settings))


def configured() -> Settings | None:
    """The settings from the environment; None, with the reason on stderr, if they are bad."""
    try:
        return load_settings(os.environ)
    except SettingsError as exc:
        sys.stderr.write(f"configuration error: {exc}\n")
        return None


async def serve(settings: Settings) -> int:
    metrics = WorkerMetrics()
    stop_metrics = serve_metrics(metrics.registry, settings.worker_metrics_port)
    if stop_metrics is None:
        return 1
    stop = asyncio.Event()
    handle_signals(stop)
    redis = Redis.from_url(
        settings.redis_url,
        socket_timeout=REDIS_SOCKET_TIMEOUT,
        socket_connect_timeout=REDIS_CONNECT_TIMEOUT,
        retry=Retry(NoBackoff(), REDIS_RETRIES),
    )
    # min_size=0: no connection at start, so the worker starts (and waits) while
    # PostgreSQL is still down instead of crashing.
    pool = await asyncpg.create_pool(
        settings.database_url,
        min_size=0,
        max_size=POOL_MAX,
        timeout=PG_CONNECT_TIMEOUT,
        command_timeout=PG_COMMAND_TIMEOUT,
        reset=_keep_session,
    )
    fanout = None
    if settings.notify_webhook_url:
        fanout = WebhookFanout(
            WebhookQueue(redis, settings.notify_webhook_max_queued), pool, metrics
        )
    config = ConsumerConfig.from_settings(settings)
    # Its own connection: a sweep never waits for a batch's, nor a batch for a sweep's.
    cleanup_pool = await asyncpg.create_pool(
        settings.database_url, min_size=0, max_size=1, timeout=PG_CONNECT_TIMEOUT
    )
    cleanup = MediaCleanup(
        MediaRecords(cleanup_pool),
        media_store(settings),
        settings.media_unattached_ttl,
        settings.media_cleanup_interval,
        staging_dir(settings),
    )
    cleaning = asyncio.create_task(cleanup.run(stop))
    try:
        await Consumer(redis, pool, config, metrics, stop, fanout=fanout).run()
    finally:
        stop.set()
        await cleaning
        await cleanup_pool.close()
        try:
            await asyncio.wait_for(pool.close(), CLOSE_TIMEOUT)
        except TimeoutError:
            pool.terminate()
        await redis.aclose()
        stop_metrics()
    return 0


async def _keep_session(conn: asyncpg.Connection) -> None:
    """The pool's reset between batches, which has nothing to undo."""
    # The worker sets no session settings, takes no advisory locks, opens no cursors and
    # listens to nothing; asyncpg's default reset (RESET ALL, CLOSE ALL, UNLISTEN *,
    # pg_advisory_unlock_all()) cost a round trip per batch. An open transaction is still
    # rolled back by asyncpg itself before this runs.


def handle_signals(stop: asyncio.Event) -> None:
    """First SIGTERM/SIGINT: finish the work in hand, then exit 0. Second: exit at once."""
    loop = asyncio.get_running_loop()

    def on_signal(signum: signal.Signals) -> None:
        if stop.is_set():
            logger.bind(signal=signum.name).warning("worker_forced_exit")
            # Entries in hand stay pending; another worker reclaims them after WORKER_CLAIM_IDLE.
            os._exit(128 + signum.value)
        logger.bind(signal=signum.name).info("stop_requested")
        stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_signal, signum)


if __name__ == "__main__":
    raise SystemExit(main())
