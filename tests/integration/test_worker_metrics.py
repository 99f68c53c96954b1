from __future__ import annotations

import time

import asyncpg
import httpx
import pytest
from redis.asyncio import Redis

from gochat_py.devstack.services import free_port
from gochat_py.ids import uuid7
from gochat_py.redis import keys
from tests.harness import poll_until
from tests.stream_traffic import (
    Traffic,
    create_chats,
    running_consumer,
    stored_ids,
    xadd_messages,
)
from worker.metrics import WorkerMetrics, serve

WORKER_METRICS = (
    "gochat_worker_batch_size",
    "gochat_worker_rows_persisted_total",
    "gochat_worker_persist_lag_seconds",
    "gochat_worker_pending_entries",
    "gochat_worker_dead_letters_total",
    "gochat_worker_postgres_down",
    "gochat_worker_redis_down",
    "gochat_worker_webhook_events_queued_total",
    "gochat_worker_webhook_queue_failures_total",
)


async def test_the_endpoint_serves_every_worker_metric_until_stopped() -> None:
    metrics = WorkerMetrics()
    port = free_port()
    stop = serve(metrics.registry, port)
    assert stop is not None
    try:
        async with httpx.AsyncClient() as client:
            response = await client.get(f"http://127.0.0.1:{port}/metrics")
    finally:
        stop()

    assert response.status_code == 200
    for name in WORKER_METRICS:
        assert f"# TYPE {name} " in response.text, name
    assert "process_cpu_seconds_total" in response.text
    with pytest.raises(httpx.ConnectError):
        async with httpx.AsyncClient() as client:
            await client.get(f"http://127.0.0.1:{port}/metrics")


async def test_a_batch_is_measured_by_rows_lag_dead_letters_and_pending(
    db: asyncpg.Connection, redis: Redis, database_url: str, redis_url: str
) -> None:
    chat = (await create_chats(db, 1))[0]
    traffic = Traffic([chat])
    two_seconds_ago = int(time.time() * 1000) - 2000
    sent = [traffic.message(chat, sent_at=two_seconds_ago) for _ in range(10)]
    poison = traffic.message(chat, sender_id=uuid7())
    await xadd_messages(redis, [*sent, poison])

    async with running_consumer(redis_url, database_url, trim_every=0.1) as run:
        sample = run.metrics.registry.get_sample_value

        async def measured() -> bool:
            return sample("gochat_worker_dead_letters_total", {"reason": "rejected"}) == 1

        await poll_until(measured, what="the batch to be measured")
        assert sample("gochat_worker_rows_persisted_total") == 10
        assert sample("gochat_worker_batch_size_sum") == 11
        assert sample("gochat_worker_persist_lag_seconds_count") == 10
        lag = sample("gochat_worker_persist_lag_seconds_sum")
        assert lag is not None and 20 <= lag < 60
        assert sample("gochat_worker_postgres_down") == 0

        async def pending_measured() -> bool:
            value = sample("gochat_worker_pending_entries", {"stream": keys.stream(0)})
            return value == 0

        await poll_until(pending_measured, what="the pending gauge")
    assert len(await stored_ids(db)) == 10
