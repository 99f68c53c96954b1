"""`/dashboard` in Chromium, with no network beyond the server: real sockets and sends
through the server (and a real worker persisting them) show up in the page's figures,
charts and health strip; in token mode the page needs its token."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, BrowserContext, Locator, Page, expect

from gochat_py.settings import Settings, load_settings
from tests.browser.conftest import Screenshot, new_context, server_only
from tests.harness import (
    connect,
    create_direct,
    is_message,
    next_frame,
    register,
    serve_app,
    server_environment,
    ws_url,
)
from tests.stream_traffic import running_consumer

TOKEN = "dashboard-token-for-browser-tests"
# The page's poll interval (dashboard.js POLL_MS): the test moves the page's clock on by it
# instead of waiting it out.
POLL_MS = 2500
# The server reuses a reading for a second (dashboard/stats.py CACHE_SECONDS): each poll
# waits this long of real time, so it shows a fresh one.
FRESH_READING_S = 1.05
# Messages per poll: uneven, so the charts have a shape to draw.
BURSTS = [3, 7, 2, 9, 5, 4, 8]


@pytest.fixture
async def context(browser: Browser) -> AsyncIterator[tuple[BrowserContext, list[str]]]:
    """A browser profile that reaches only the server; the second item collects the
    addresses of requests it refused."""
    context = await new_context(browser)
    blocked = await server_only(context)
    yield context, blocked
    await context.close()


async def open_dashboard(context: BrowserContext, url: str, errors: list[str]) -> Page:
    """The dashboard in a new tab whose timers the test drives (page.clock); uncaught
    script errors and console errors (CSP refusals and failed loads among them) are
    collected in `errors`."""
    page = await context.new_page()
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on(
        "console",
        lambda message: errors.append(message.text) if message.type == "error" else None,
    )
    # A paused clock: the page's timers fire only when poll() moves it on.
    start = datetime.now(UTC)
    await page.clock.install(time=start)
    await page.clock.pause_at(start + timedelta(seconds=1))
    await page.goto(url)
    await expect(page.locator("#conn")).to_have_text("live")
    return page


async def poll(page: Page) -> None:
    """Let the page poll /dashboard/stats once more, for a reading newer than the call;
    returns once the answer has arrived (the page renders it just after)."""
    await asyncio.sleep(FRESH_READING_S)
    async with page.expect_response(lambda r: "/dashboard/stats" in r.url):
        await page.clock.run_for(POLL_MS)


def figure(page: Page, name: str, selector: str = ".num") -> Locator:
    return page.locator(f'.card[data-figure="{name}"] {selector}')


async def chart_points(page: Page, name: str) -> int:
    """How many points the card's sparkline draws (its line path's M/L commands)."""
    lines = figure(page, name, "svg path.line")
    d: str = await lines.evaluate_all("paths => paths.map(p => p.getAttribute('d')).join(' ')")
    return d.count("M") + d.count("L")


async def send_burst(alice: Any, bob: Any, conversation_id: str, count: int) -> None:
    for n in range(count):
        await alice.send(f'{{"conversation_id": "{conversation_id}", "content": "hi {n}"}}')
    # Alice reads hers too: a client that stops reading stalls its socket's close.
    for _ in range(count):
        await next_frame(bob, is_message)
        await next_frame(alice, is_message)


async def test_real_sockets_and_sends_move_the_figures_and_draw_the_charts(
    settings: Settings,
    database_url: str,
    redis_url: str,
    context: tuple[BrowserContext, list[str]],
    screenshot: Screenshot,
) -> None:
    browser_context, blocked = context
    errors: list[str] = []
    async with (
        serve_app(settings) as base_url,
        httpx.AsyncClient(base_url=base_url) as api,
        running_consumer(
            redis_url, database_url, partitions=settings.stream_partitions, stop_grace=1
        ),
    ):
        page = await open_dashboard(browser_context, f"{base_url}/dashboard", errors)
        await expect(figure(page, "sockets")).to_have_text("0")
        await expect(figure(page, "users")).to_have_text("0")
        for check in ("postgres", "redis"):
            chip = page.locator(f'.chip[data-check="{check}"]')
            await expect(chip).to_have_class("chip up")
            await expect(chip.locator(".chip-detail")).to_have_text("up")

        alice, bob = await register(api), await register(api)
        conversation = await create_direct(api, alice["tokens"], bob["user"]["id"])
        async with (
            connect(ws_url(api, alice["tokens"]["access_token"])) as alice_ws,
            connect(ws_url(api, bob["tokens"]["access_token"])) as bob_ws,
        ):
            await poll(page)
            await expect(figure(page, "sockets")).to_have_text("2")
            await expect(figure(page, "users")).to_have_text("2")

            for burst in BURSTS:
                await send_burst(alice_ws, bob_ws, conversation["id"], burst)
                await poll(page)
            await expect(figure(page, "rate", ".total")).to_have_text(str(sum(BURSTS)))
            rate = float(await figure(page, "rate").inner_text())
            assert rate > 0
            # Each delivered message reached both sockets (alice's own copy too).
            deliveries = int(await figure(page, "deliveries", ".total").inner_text())
            assert deliveries >= 2 * sum(BURSTS)
            await expect(figure(page, "latency", ".num.p50")).not_to_have_text("–")
            await expect(page.locator('.chip[data-check="worker"]')).to_have_class("chip up")
            await expect(figure(page, "throughput", ".total")).not_to_have_text("–")

            polls = 1 + 1 + len(BURSTS)  # on load, after connecting, after each burst
            for name in ("sockets", "users", "recent", "memory"):
                assert await chart_points(page, name) == polls, name
            # A rate needs two readings: no point for the first.
            for name in ("rate", "deliveries"):
                assert await chart_points(page, name) == polls - 1, name
            # The worker's figures start once its consumer group exists.
            assert await chart_points(page, "throughput") >= len(BURSTS) - 2
            await screenshot(page, "dashboard")

        await poll(page)
        await expect(figure(page, "sockets")).to_have_text("0")
        await expect(figure(page, "users")).to_have_text("0")
    assert errors == []
    assert blocked == []


@pytest.fixture
async def guarded_url(database_url: str, redis_url: str) -> AsyncIterator[str]:
    env = server_environment(database_url, redis_url, DASHBOARD="token", DASHBOARD_TOKEN=TOKEN)
    async with serve_app(load_settings(env)) as url:
        yield url


async def test_in_token_mode_the_page_shows_figures_only_with_its_token(
    guarded_url: str, context: tuple[BrowserContext, list[str]]
) -> None:
    browser_context, blocked = context
    errors: list[str] = []
    page = await open_dashboard(browser_context, f"{guarded_url}/dashboard?token={TOKEN}", errors)
    await expect(figure(page, "sockets")).to_have_text("0")
    await expect(page.locator('.chip[data-check="redis"]')).to_have_class("chip up")
    assert errors == []

    for address in ("/dashboard", "/dashboard?token=not-the-token"):
        response = await page.goto(f"{guarded_url}{address}")
        assert response is not None and response.status == 401, address
        await expect(page.locator("body")).to_contain_text("This dashboard needs its token")
        await expect(page.locator(".card")).to_have_count(0)
    assert blocked == []
