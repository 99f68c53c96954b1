from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from gochat_py.settings import load_settings
from tests.harness import PASSWORD, register, serve_app, server_environment, unique_name

LOGIN = "/api/v1/auth/login"


@pytest.fixture
async def strict_api(database_url: str, redis_url: str) -> AsyncIterator[httpx.AsyncClient]:
    env = server_environment(
        database_url,
        redis_url,
        LOGIN_LIMIT_PER_ACCOUNT="3",
        LOGIN_LIMIT_PER_ADDRESS="6",
        REGISTER_LIMIT_PER_ADDRESS="4",
        RATE_LIMIT_WINDOW="60s",
    )
    async with serve_app(load_settings(env)) as url, httpx.AsyncClient(base_url=url) as client:
        yield client


async def test_logins_past_the_per_account_limit_get_429_with_retry_after(
    strict_api: httpx.AsyncClient,
) -> None:
    email = (await register(strict_api))["user"]["email"]
    statuses = [
        (
            await strict_api.post(LOGIN, json={"email": email, "password": "wrong-password"})
        ).status_code
        for _ in range(3)
    ]
    assert statuses == [401, 401, 401]
    blocked = await strict_api.post(LOGIN, json={"email": email, "password": PASSWORD})
    assert blocked.status_code == 429
    assert blocked.json()["error"]["code"] == "rate_limited"
    assert 1 <= int(blocked.headers["retry-after"]) <= 60


async def test_the_per_account_limit_ignores_email_case(strict_api: httpx.AsyncClient) -> None:
    email = (await register(strict_api))["user"]["email"]
    for variant in (email, email.upper(), email.title()):
        await strict_api.post(LOGIN, json={"email": variant, "password": "wrong-password"})
    blocked = await strict_api.post(LOGIN, json={"email": email, "password": PASSWORD})
    assert blocked.status_code == 429


async def test_logins_past_the_per_address_limit_get_429_across_accounts(
    strict_api: httpx.AsyncClient,
) -> None:
    statuses = [
        (
            await strict_api.post(
                LOGIN, json={"email": f"{unique_name()}@example.com", "password": "whatever1"}
            )
        ).status_code
        for _ in range(7)
    ]
    assert statuses[:6] == [401] * 6
    assert statuses[6] == 429


async def test_registrations_past_the_per_address_limit_get_429(
    strict_api: httpx.AsyncClient,
) -> None:
    for _ in range(4):
        await register(strict_api)
    name = unique_name()
    blocked = await strict_api.post(
        "/api/v1/auth/register",
        json={"email": f"{name}@example.com", "username": name, "password": PASSWORD},
    )
    assert blocked.status_code == 429
    assert "retry-after" in blocked.headers
