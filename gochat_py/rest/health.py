"""Liveness, readiness and the Prometheus scrape endpoint."""

from __future__ import annotations

import asyncio
from typing import Literal

import asyncpg
import msgspec
from redis.asyncio import Redis
from redis.exceptions import RedisError
from starlette.requests import Request
from starlette.responses import Response

from gochat_py.metrics import Metrics
from gochat_py.redis.recent import RecentCache
from gochat_py.rest.error_responses import ErrorDetail, error_body
from gochat_py.rest.jsonio import json_response

PROBE_TIMEOUT = 2.0  # a dependency slower than this is as good as down for a load balancer

Checks = dict[str, str]  # dependency name -> "ok" or "down: <error>"


class Liveness(msgspec.Struct, frozen=True):
    status: Literal["ok"]


class Readiness(msgspec.Struct, frozen=True):
    status: Literal["ready"]
    checks: Checks


class NotReady(msgspec.Struct, frozen=True):
    """The error shape plus what each dependency answered."""

    error: ErrorDetail
    checks: Checks


async def health(request: Request) -> Response:
    return json_response(Liveness("ok"))


async def _ping_postgres(pool: asyncpg.Pool) -> None:
    async with pool.acquire(timeout=PROBE_TIMEOUT) as conn:
        await conn.fetchval("SELECT 1", timeout=PROBE_TIMEOUT)


async def _ping_redis(redis: Redis) -> None:
    await redis.ping()


async def _check(name: str, probe: asyncio.Future[None] | asyncio.Task[None]) -> tuple[str, str]:
    try:
        await asyncio.wait_for(probe, PROBE_TIMEOUT)
    except Exception as exc:  # noqa: BLE001 - any failure means "not ready"
        return name, f"down: {type(exc).__name__}"
    return name, "ok"


async def readiness_checks(pg_pool: asyncpg.Pool, redis: Redis) -> Checks:
    """Ping both dependencies at once, each bounded by PROBE_TIMEOUT."""
    return dict(
        await asyncio.gather(
            _check("postgres", asyncio.ensure_future(_ping_postgres(pg_pool))),
            _check("redis", asyncio.ensure_future(_ping_redis(redis))),
        )
    )


async def ready(request: Request) -> Response:
    checks = await readiness_checks(request.state.pg_pool, request.state.redis)
    down = sorted(name for name, state in checks.items() if state != "ok")
    if down:
        body = error_body("not_ready", f"{' and '.join(down)} unavailable")
        return json_response(NotReady(body.error, checks), 503)
    return json_response(Readiness("ready", checks))


async def metrics(request: Request) -> Response:
    registry: Metrics = request.state.metrics
    recent: RecentCache = request.state.recent
    try:
        # A GET per partition and one INFO: cheap enough for every scrape, no SCAN.
        held, used = await asyncio.wait_for(
            asyncio.gather(recent.held(), recent.used_memory()), PROBE_TIMEOUT
        )
    except (RedisError, OSError, TimeoutError):
        pass  # the scrape still answers, with the last values; readiness reports Redis down
    else:
        registry.observe_redis(held, used)
    return Response(registry.render(), media_type="text/plain; version=0.0.4; charset=utf-8")
