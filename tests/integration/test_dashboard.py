"""`GET /dashboard` and `/dashboard/stats` against a real server, Redis and PostgreSQL: the
figures follow real sockets and sends, the health strip follows outages, and the access
modes hold."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from gochat_py.devstack.services import free_port
from gochat_py.redis import keys
from gochat_py.settings import load_settings
from tests.harness import (
    connect,
    create_direct,
    is_message,
    next_frame,
    poll_until,
    register,
    serve_app,
    server_environment,
    ws_url,
)

TOKEN = "dashboard-token-for-tests-0123456789"


async def stats(client: httpx.AsyncClient, **params: str) -> dict[str, Any]:
    response = await client.get("/dashboard/stats", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def stats_where(client: httpx.AsyncClient, check: Any, what: str) -> dict[str, Any]:
    """The first reading that satisfies `check` (readings are cached for a second)."""

    async def reading() -> dict[str, Any] | None:
        body = await stats(client)
        return body if check(body) else None

    return await poll_until(reading, what=what)


@pytest.fixture
async def guarded(database_url: str, redis_url: str) -> AsyncIterator[httpx.AsyncClient]:
    env = server_environment(database_url, redis_url, DASHBOARD="token", DASHBOARD_TOKEN=TOKEN)
    async with serve_app(load_settings(env)) as url, httpx.AsyncClient(base_url=url) as client:
        yield client


async def test_sockets_and_users_online_follow_real_sockets(api: httpx.AsyncClient) -> None:
    before = await stats(api)
    assert (before["sockets"], before["users_online"]) == (0, 0)
    alice, bob = await register(api), await register(api)
    alice_url = ws_url(api, alice["tokens"]["access_token"])
    async with connect(alice_url), connect(alice_url):
        # Two devices of one user: two sockets, one user online.
        await stats_where(api, lambda s: s["sockets"] == 2, "alice's two sockets")
        reading = await stats(api)
        assert reading["users_online"] == 1
        async with connect(ws_url(api, bob["tokens"]["access_token"])):
            reading = await stats_where(api, lambda s: s["sockets"] == 3, "bob's socket")
            assert reading["users_online"] == 2
    reading = await stats_where(api, lambda s: s["sockets"] == 0, "every socket closed")
    assert reading["users_online"] == 0


async def test_a_real_send_moves_the_message_total_deliveries_and_latency(
    api: httpx.AsyncClient,
) -> None:
    alice, bob = await register(api), await register(api)
    conversation = await create_direct(api, alice["tokens"], bob["user"]["id"])
    before = await stats(api)
    assert before["delivery_latency"]["samples"] == 0
    assert before["delivery_latency"]["p50_ms"] is None
    async with (
        connect(ws_url(api, alice["tokens"]["access_token"])) as alice_ws,
        connect(ws_url(api, bob["tokens"]["access_token"])) as bob_ws,
    ):
        await alice_ws.send(f'{{"conversation_id": "{conversation["id"]}", "content": "hi"}}')
        await next_frame(bob_ws, is_message)
        await next_frame(alice_ws, is_message)
        after = await stats_where(
            api, lambda s: s["delivery_latency"]["samples"] >= 1, "a timed delivery"
        )
    assert after["messages_total"] == before["messages_total"] + 1
    assert after["deliveries_total"] >= before["deliveries_total"] + 2  # alice's and bob's
    latency = after["delivery_latency"]
    assert 0 <= latency["p50_ms"] <= latency["p95_ms"] <= latency["p99_ms"] < 5000
    # No worker runs here: everything sent waits in the stream, unread.
    assert after["backlog"]["undelivered"] == after["messages_total"]
    assert after["backlog"]["oldest_age_s"] is not None


async def test_the_backlog_reads_the_consumer_group_and_the_dead_letters(
    api: httpx.AsyncClient, redis: Redis
) -> None:
    stream = keys.stream(0)
    for n in range(3):
        await redis.xadd(stream, {"m": f"entry {n}"})
    await redis.xgroup_create(stream, keys.CONSUMER_GROUP, id="0")
    read = await redis.xreadgroup(keys.CONSUMER_GROUP, "worker-1", {stream: ">"}, count=2)
    await redis.xadd(keys.dead_letters(0), {"reason": "undecodable"})
    backlog = (await stats(api))["backlog"]
    assert backlog == {
        "messages_total": 3,
        "undelivered": 1,
        "pending": 2,
        "finished": 0,
        "oldest_age_s": backlog["oldest_age_s"],
        "dead_letters": 1,
        "consumers": 1,
    }
    assert 0 <= backlog["oldest_age_s"] < 60
    await redis.xack(stream, keys.CONSUMER_GROUP, *[i for i, _ in read[0][1]])
    reading = await stats_where(api, lambda s: s["backlog"]["pending"] == 0, "the ack")
    backlog = reading["backlog"]
    assert (backlog["finished"], backlog["undelivered"]) == (2, 1)


async def test_health_shows_both_up(api: httpx.AsyncClient) -> None:
    health = (await stats(api))["health"]
    assert health == [
        {"name": "postgres", "up": True, "detail": "ok"},
        {"name": "redis", "up": True, "detail": "ok"},
    ]


async def test_health_shows_postgres_down_when_it_is_unreachable(redis_url: str) -> None:
    dead = f"postgresql://gochat@127.0.0.1:{free_port()}/gochat"
    async with serve_app(load_settings(server_environment(dead, redis_url))) as url:
        async with httpx.AsyncClient(base_url=url) as client:
            reading = await stats(client)
    health = {check["name"]: check for check in reading["health"]}
    assert health["postgres"]["up"] is False
    assert health["postgres"]["detail"].startswith("down")
    assert health["redis"]["up"] is True
    assert reading["backlog"] is not None  # Redis' figures still come


async def test_the_page_is_served_with_its_security_headers(api: httpx.AsyncClient) -> None:
    response = await api.get("/dashboard")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    csp = response.headers["content-security-policy"]
    assert "default-src 'self'" in csp
    assert "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"


async def test_the_page_loads_only_same_origin_assets_that_exist(api: httpx.AsyncClient) -> None:
    html = (await api.get("/dashboard")).text
    references = re.findall(r'(?:src|href)="([^"]*)"', html)
    assert references, "the page names its stylesheet and script"
    for reference in references:
        assert reference.startswith("/") and not reference.startswith("//"), reference
        response = await api.get(reference)
        assert response.status_code == 200, reference
        assert response.headers["x-content-type-options"] == "nosniff"
    assert "<script>" not in html and "style=" not in html  # nothing inline for the CSP to block
    script = (await api.get("/dashboard/dashboard.js")).text
    assert "/dashboard/stats" in script
    assert "http://" not in script.replace("http://www.w3.org/2000/svg", "")
    assert "https://" not in script


async def test_token_mode_refuses_a_missing_or_wrong_token(guarded: httpx.AsyncClient) -> None:
    for headers, params in [
        ({}, {}),
        ({}, {"token": "wrong"}),
        ({"Authorization": "Bearer wrong"}, {}),
        ({}, {"token": TOKEN[:-1]}),
    ]:
        response = await guarded.get("/dashboard/stats", headers=headers, params=params)
        assert response.status_code == 401, (headers, params)
        assert response.json()["error"]["code"] == "unauthorized"
        assert "sockets" not in response.text
        page = await guarded.get("/dashboard", headers=headers, params=params)
        assert page.status_code == 401
        assert page.headers["content-type"].startswith("text/plain")
        assert page.headers["x-frame-options"] == "DENY"


async def test_token_mode_admits_the_token_in_the_query_or_a_bearer_header(
    guarded: httpx.AsyncClient,
) -> None:
    assert (await guarded.get("/dashboard", params={"token": TOKEN})).status_code == 200
    assert (await guarded.get("/dashboard/stats", params={"token": TOKEN})).status_code == 200
    header = {"Authorization": f"Bearer {TOKEN}"}
    assert (await guarded.get("/dashboard", headers=header)).status_code == 200
    response = await guarded.get("/dashboard/stats", headers=header)
    assert response.status_code == 200
    assert response.json()["sockets"] == 0


async def test_off_answers_404_as_if_there_were_no_dashboard(
    database_url: str, redis_url: str
) -> None:
    env = server_environment(database_url, redis_url, DASHBOARD="off", DASHBOARD_TOKEN=TOKEN)
    async with serve_app(load_settings(env)) as url, httpx.AsyncClient(base_url=url) as client:
        for path in ("/dashboard", "/dashboard/stats", "/dashboard/dashboard.js"):
            response = await client.get(path, params={"token": TOKEN})
            assert response.status_code == 404, path
            assert response.json()["error"]["code"] == "not_found"
