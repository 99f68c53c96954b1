"""Browser tests: the real server over real HTTP on a free port, driven by the system's
Chromium through Playwright (no browser download: scripts/system-deps.sh installs it).
Screenshots are saved under .artifacts/screenshots/ and listed at the end of the run."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.async_api import Browser, BrowserContext, Page, Route, async_playwright

from gochat_py.settings import Settings
from tests.harness import ROOT, serve_app

SCREENSHOTS = ROOT / ".artifacts" / "screenshots"
CHROMIUM_ARGS = [
    "--no-sandbox",  # required when the tests run as root
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    # No calls home (updates, field trials, sync): on a closed network they only fail.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
LOCAL_HOSTS = {"127.0.0.1", "localhost"}
# Playwright's own default is 30 s per action; a step of these tests takes well under one.
ACTION_TIMEOUT_MS = 10_000

_saved: list[Path] = []

Screenshot = Callable[[Page, str], Awaitable[Path]]


def chromium_path() -> str:
    path = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(path).exists():
        pytest.fail(f"no Chromium at {path}: run `make system-deps` or set CHROMIUM")
    return path


async def new_context(
    browser: Browser, width: int = 1200, height: int = 760, phone: bool = False
) -> BrowserContext:
    """A fresh browser profile (its own cookies) with a window of this size; `phone`: a
    touch screen without hover."""
    context = await browser.new_context(
        viewport={"width": width, "height": height}, has_touch=phone, is_mobile=phone
    )
    context.set_default_timeout(ACTION_TIMEOUT_MS)
    return context


async def server_only(context: BrowserContext) -> list[str]:
    """Abort every request of the context to another host than the server's; returns the
    list the refused addresses are added to."""
    blocked: list[str] = []

    async def local_only(route: Route) -> None:
        if urlsplit(route.request.url).hostname in LOCAL_HOSTS:
            await route.continue_()
        else:
            blocked.append(route.request.url)
            await route.abort()

    await context.route("**/*", local_only)
    return blocked


@pytest.fixture
async def base_url(settings: Settings) -> AsyncIterator[str]:
    async with serve_app(settings) as url:
        yield url


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=chromium_path(), headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        await browser.close()


@pytest.fixture
async def contexts(browser: Browser) -> AsyncIterator[list[BrowserContext]]:
    """Two separate browser profiles (cookies and all), one per person."""
    made = [await new_context(browser) for _ in range(2)]
    yield made
    for context in made:
        await context.close()


@pytest.fixture
def screenshot(request: pytest.FixtureRequest) -> Screenshot:
    """Save a page's screenshot as a test artifact: .artifacts/screenshots/<test>/<name>.png."""
    folder = SCREENSHOTS / request.node.name

    async def take(page: Page, name: str) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{name}.png"
        await page.screenshot(path=path)
        _saved.append(path)
        return path

    return take


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _saved:
        terminalreporter.write_sep("-", "browser screenshots")
        for path in _saved:
            terminalreporter.write_line(str(path.relative_to(ROOT)))
