from __future__ import annotations

import httpx

from gochat_py.devstack.services import RedisServer, free_port
from gochat_py.settings import load_settings
from tests.harness import serve_app, server_environment


async def test_liveness_answers_ok(api: httpx.AsyncClient) -> None:
    response = await api.get("/api/v1/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readiness_checks_postgres_and_redis(api: httpx.AsyncClient) -> None:
    response = await api.get("/api/v1/health/ready")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "checks": {"postgres": "ok", "redis": "ok"}}


async def test_readiness_is_503_naming_redis_when_redis_stops(
    database_url: str, own_redis: RedisServer
) -> None:
    settings = load_settings(server_environment(database_url, own_redis.url))
    async with serve_app(settings) as url, httpx.AsyncClient(base_url=url) as client:
        assert (await client.get("/api/v1/health/ready")).status_code == 200
        own_redis.stop()
        response = await client.get("/api/v1/health/ready")
        assert response.status_code == 503
        body = response.json()
        assert body["error"]["code"] == "not_ready"
        assert "redis" in body["error"]["message"]
        assert body["checks"]["postgres"] == "ok"
        assert body["checks"]["redis"].startswith("down")
        assert (await client.get("/api/v1/health")).status_code == 200


async def test_readiness_is_503_naming_postgres_when_it_is_unreachable(redis_url: str) -> None:
    dead = f"postgresql://gochat@127.0.0.1:{free_port()}/gochat"
    async with serve_app(load_settings(server_environment(dead, redis_url))) as url:
        async with httpx.AsyncClient(base_url=url) as client:
            response = await client.get("/api/v1/health/ready")
            assert (await client.get("/api/v1/health")).status_code == 200
            register = await client.post(
                "/api/v1/auth/register",
                json={"email": "a@example.com", "username": "abc", "password": "12345678"},
            )
            assert register.status_code == 503
            assert register.json()["error"]["code"] == "unavailable"
            assert register.headers["retry-after"] == "1"
    assert response.status_code == 503
    assert response.json()["checks"] == {"postgres": response.json()["checks"]["postgres"],
                                         "redis": "ok"}  # fmt: skip
    assert response.json()["checks"]["postgres"].startswith("down")
    assert "postgres" in response.json()["error"]["message"]


async def test_metrics_count_requests_by_route_template(api: httpx.AsyncClient) -> None:
    await api.get("/api/v1/health")
    await api.get("/api/v1/no/such/path/12345")
    await api.post("/api/v1/auth/login", json={"email": "a@b.co", "password": "whatever1"})
    response = await api.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert (
        'gochat_http_requests_total{method="GET",route="/api/v1/health",status="200"} 1.0' in text
    )
    assert 'route="unmatched",status="404"' in text
    assert "12345" not in text
    assert (
        'gochat_http_requests_total{method="POST",route="/api/v1/auth/login",status="401"}' in text
    )
    assert "gochat_http_request_duration_seconds_bucket" in text
    assert "process_resident_memory_bytes" in text
