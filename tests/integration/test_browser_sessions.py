"""Browser sessions: the cookies login sets, their use over REST and the socket, and the
origin checks (CSRF, CORS, the handshake's Origin) that keep foreign pages from using them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from http.cookies import Morsel, SimpleCookie
from typing import Any

import httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.typing import Origin

from gochat_py.settings import load_settings
from tests.harness import (
    PASSWORD,
    bearer,
    connect,
    error_code,
    next_frame,
    register,
    serve_app,
    server_environment,
    unique_name,
    ws_url,
)

LOGIN = "/api/v1/auth/login"
REFRESH = "/api/v1/auth/refresh"
LOGOUT = "/api/v1/auth/logout"
ME = "/api/v1/auth/me"
CONVERSATIONS = "/api/v1/conversations"
PARTNER = "https://app.example.com"  # the CORS_ORIGINS of every server in this module
FOREIGN = "https://evil.example.net"


@pytest.fixture
async def browser(database_url: str, redis_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client that keeps cookies as a browser does, of a server that trusts PARTNER."""
    env = server_environment(database_url, redis_url, CORS_ORIGINS=PARTNER)
    async with serve_app(load_settings(env)) as url, httpx.AsyncClient(base_url=url) as client:
        yield client


def set_cookies(response: httpx.Response) -> dict[str, Morsel[str]]:
    jar: SimpleCookie = SimpleCookie()
    for header in response.headers.get_list("set-cookie"):
        jar.load(header)
    return dict(jar)


def own_origin(client: httpx.AsyncClient) -> str:
    return str(client.base_url).rstrip("/")


async def conversation_count(client: httpx.AsyncClient, tokens: dict[str, Any]) -> int:
    response = await client.get(CONVERSATIONS, headers=bearer(tokens))
    return len(response.json()["conversations"])


async def test_login_and_register_set_both_cookies(browser: httpx.AsyncClient) -> None:
    name = unique_name()
    registered = await browser.post(
        "/api/v1/auth/register",
        json={"email": f"{name}@example.com", "username": name, "password": PASSWORD},
    )
    logged_in = await browser.post(
        LOGIN, json={"email": f"{name}@example.com", "password": PASSWORD}
    )
    for response in (registered, logged_in):
        cookies = set_cookies(response)
        tokens = response.json()["tokens"]
        access, refresh = cookies["access_token"], cookies["refresh_token"]
        assert access.value == tokens["access_token"]
        assert refresh.value == tokens["refresh_token"]
        assert (access["path"], refresh["path"]) == ("/", "/api/v1/auth")
        assert (access["max-age"], refresh["max-age"]) == ("900", str(168 * 3600))
        for cookie in (access, refresh):
            assert cookie["httponly"] is True
            assert cookie["samesite"].lower() == "lax"
            assert not cookie["secure"]  # ENV=test: plain http
            assert not cookie["domain"]


async def test_secure_samesite_and_domain_follow_the_settings(
    database_url: str, redis_url: str
) -> None:
    env = server_environment(
        database_url,
        redis_url,
        COOKIE_SECURE="true",
        COOKIE_SAMESITE="strict",
        COOKIE_DOMAIN="chat.example.com",
    )
    async with serve_app(load_settings(env)) as url, httpx.AsyncClient(base_url=url) as client:
        response = await client.post(
            "/api/v1/auth/register",
            json={
                "email": f"{unique_name()}@example.com",
                "username": unique_name(),
                "password": PASSWORD,
            },
        )
    for cookie in set_cookies(response).values():
        assert cookie["secure"] is True
        assert cookie["samesite"].lower() == "strict"
        assert cookie["domain"] == "chat.example.com"


async def test_rest_works_with_only_the_cookie(browser: httpx.AsyncClient) -> None:
    registered = await register(browser)
    response = await browser.get(ME)  # the jar sends the access cookie; no header
    assert response.status_code == 200
    assert response.json() == registered["user"]


@pytest.mark.parametrize("content_type", [None, "application/json"])
async def test_refresh_with_only_the_cookie_rotates_the_cookies(
    browser: httpx.AsyncClient, content_type: str | None
) -> None:
    # gochat's web client sends its empty refresh with the Content-Type of all its requests.
    registered = await register(browser)
    headers = {"Origin": own_origin(browser)}
    if content_type:
        headers["Content-Type"] = content_type
    response = await browser.post(REFRESH, headers=headers)
    assert response.status_code == 200, response.text
    cookies = set_cookies(response)
    assert cookies["refresh_token"].value != registered["tokens"]["refresh_token"]
    assert cookies["access_token"].value == response.json()["tokens"]["access_token"]
    assert (await browser.get(ME)).status_code == 200
    # The old refresh token is spent.
    spent = {"refresh_token": registered["tokens"]["refresh_token"]}
    assert (await browser.post(REFRESH, json=spent)).status_code == 401


async def test_logout_with_only_the_cookie_clears_them_and_ends_the_session(
    browser: httpx.AsyncClient,
) -> None:
    registered = await register(browser)
    tokens = registered["tokens"]
    response = await browser.post(LOGOUT, headers={"Origin": own_origin(browser)})
    assert response.status_code == 204, response.text
    cookies = set_cookies(response)
    for name, path in (("access_token", "/"), ("refresh_token", "/api/v1/auth")):
        assert cookies[name].value == ""
        assert cookies[name]["max-age"] == "0"
        assert cookies[name]["path"] == path
    assert not browser.cookies
    # The logged-out cookies, sent again, are refused.
    stale = {"Cookie": f"access_token={tokens['access_token']}"}
    me = await browser.get(ME, headers=stale)
    assert (me.status_code, error_code(me)) == (401, "session_revoked")
    stale_refresh = {
        "Cookie": f"refresh_token={tokens['refresh_token']}",
        "Origin": own_origin(browser),
    }
    refresh = await browser.post(REFRESH, headers=stale_refresh)
    assert refresh.status_code == 401


async def test_refresh_without_a_body_or_cookie_is_401(browser: httpx.AsyncClient) -> None:
    response = await browser.post(REFRESH, headers={"Origin": own_origin(browser)})
    assert (response.status_code, error_code(response)) == (401, "missing_token")


@pytest.mark.parametrize(
    "headers",
    [{"Origin": FOREIGN}, {}, {"Origin": "null"}, {"Referer": f"{FOREIGN}/page"}],
    ids=["foreign-origin", "no-origin-no-referer", "null-origin", "foreign-referer"],
)
async def test_a_cookie_write_from_elsewhere_is_refused_and_changes_nothing(
    browser: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    alice, bob = await register(browser), await register(browser)  # the jar holds bob's
    create = await browser.post(
        CONVERSATIONS, json={"participant_id": alice["user"]["id"]}, headers=headers
    )
    assert (create.status_code, error_code(create)) == (403, "csrf_rejected")
    assert await conversation_count(browser, bob["tokens"]) == 0
    for path in (REFRESH, LOGOUT):
        response = await browser.post(path, headers=headers)
        assert (response.status_code, error_code(response)) == (403, "csrf_rejected")
    # Neither spent nor revoked: the session goes on.
    assert (
        await browser.post(REFRESH, json={"refresh_token": bob["tokens"]["refresh_token"]})
    ).status_code == 200


async def test_a_login_or_registration_from_a_foreign_page_is_refused_and_sets_nothing(
    browser: httpx.AsyncClient,
) -> None:
    name = unique_name()
    account = {"email": f"{name}@example.com", "username": name, "password": PASSWORD}
    foreign = {"Origin": FOREIGN}
    registered = await browser.post("/api/v1/auth/register", json=account, headers=foreign)
    assert (registered.status_code, error_code(registered)) == (403, "csrf_rejected")
    assert "set-cookie" not in registered.headers
    # Nothing was created: the same registration from this server's page succeeds.
    own = {"Origin": own_origin(browser)}
    assert (
        await browser.post("/api/v1/auth/register", json=account, headers=own)
    ).status_code == 201
    credentials = {"email": account["email"], "password": PASSWORD}
    logged_in = await browser.post(LOGIN, json=credentials, headers=foreign)
    assert (logged_in.status_code, error_code(logged_in)) == (403, "csrf_rejected")
    assert "set-cookie" not in logged_in.headers
    for headers in ({"Origin": PARTNER}, {}):  # a partner's page; an app that sends no Origin
        assert (await browser.post(LOGIN, json=credentials, headers=headers)).status_code == 200


@pytest.mark.parametrize("origin", ["own", PARTNER])
async def test_a_cookie_write_from_this_server_or_a_cors_origin_succeeds(
    browser: httpx.AsyncClient, origin: str
) -> None:
    origin = own_origin(browser) if origin == "own" else origin
    alice, bob = await register(browser), await register(browser)
    create = await browser.post(
        CONVERSATIONS, json={"participant_id": alice["user"]["id"]}, headers={"Origin": origin}
    )
    assert create.status_code == 201, create.text
    assert await conversation_count(browser, bob["tokens"]) == 1


async def test_a_cookie_write_with_only_a_referer_of_this_server_succeeds(
    browser: httpx.AsyncClient,
) -> None:
    alice = await register(browser)
    await register(browser)
    referer = {"Referer": f"{own_origin(browser)}/chat/42"}
    create = await browser.post(
        CONVERSATIONS, json={"participant_id": alice["user"]["id"]}, headers=referer
    )
    assert create.status_code == 201, create.text


async def test_a_header_authenticated_write_from_a_foreign_origin_still_works(
    browser: httpx.AsyncClient,
) -> None:
    alice, bob = await register(browser), await register(browser)
    browser.cookies.clear()
    create = await browser.post(
        CONVERSATIONS,
        json={"participant_id": alice["user"]["id"]},
        headers={"Origin": FOREIGN, **bearer(bob["tokens"])},
    )
    assert create.status_code == 201, create.text


async def test_a_socket_with_only_the_cookie_opens_from_this_server(
    browser: httpx.AsyncClient,
) -> None:
    await register(browser)
    cookie = f"access_token={browser.cookies['access_token']}"
    headers = {"Cookie": cookie}
    async with connect(
        ws_url(browser),
        additional_headers=headers,
        origin=Origin(own_origin(browser)),
    ) as socket:
        await socket.send('{"event": "ping"}')
        assert (await next_frame(socket))["event"] == "pong"


@pytest.mark.parametrize("origin", [FOREIGN, None])
async def test_a_cookie_socket_from_a_foreign_or_no_origin_is_refused(
    browser: httpx.AsyncClient, origin: str | None
) -> None:
    await register(browser)
    headers = {"Cookie": f"access_token={browser.cookies['access_token']}"}
    with pytest.raises(InvalidStatus) as refused:
        async with connect(
            ws_url(browser), additional_headers=headers, origin=Origin(origin) if origin else None
        ):
            pass
    assert refused.value.response.status_code == 403


async def test_a_query_token_socket_from_a_foreign_origin_still_opens(
    browser: httpx.AsyncClient,
) -> None:
    alice = await register(browser)
    url = ws_url(browser, alice["tokens"]["access_token"])
    async with connect(url, origin=Origin(FOREIGN)) as socket:
        await socket.send('{"event": "ping"}')
        assert (await next_frame(socket))["event"] == "pong"


async def test_a_cors_preflight_is_answered_for_cors_origins_only(
    browser: httpx.AsyncClient,
) -> None:
    preflight = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type",
    }
    allowed = await browser.options(CONVERSATIONS, headers={"Origin": PARTNER, **preflight})
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == PARTNER
    assert allowed.headers["access-control-allow-credentials"] == "true"
    other = await browser.options(CONVERSATIONS, headers={"Origin": FOREIGN, **preflight})
    assert "access-control-allow-origin" not in other.headers
    await register(browser)
    simple = await browser.get(ME, headers={"Origin": PARTNER})
    assert simple.headers["access-control-allow-origin"] == PARTNER
    assert simple.headers["access-control-allow-credentials"] == "true"
