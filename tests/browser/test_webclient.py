"""The web client at `/`, in Chromium: two people register, chat live, see each other type
and read, one drops off the network and comes back to every message once and in order;
a reload keeps the history; scrolling up pages through older messages."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from playwright.async_api import Browser, BrowserContext, Locator, Page, expect

from tests.browser.conftest import ACTION_TIMEOUT_MS, Screenshot
from tests.harness import PASSWORD, bearer, create_direct, register, unique_name

VIEWPORT = {"width": 1200, "height": 760}
# The client's first history page (js/sync.js PAGE_SIZE).
PAGE_SIZE = 30


@pytest.fixture
async def contexts(browser: Browser) -> AsyncIterator[list[BrowserContext]]:
    """Two separate browser profiles (cookies and all), one per person."""
    made = [await browser.new_context(viewport=VIEWPORT) for _ in range(2)]
    for context in made:
        context.set_default_timeout(ACTION_TIMEOUT_MS)
    yield made
    for context in made:
        await context.close()


async def open_client(context: BrowserContext, base_url: str, errors: list[str]) -> Page:
    """The client in a new tab; uncaught script errors are collected in `errors`."""
    page = await context.new_page()
    page.on("pageerror", lambda error: errors.append(str(error)))
    await page.goto(f"{base_url}/")
    return page


async def register_in_ui(page: Page, name: str) -> str:
    """Register through the form; returns the new user's id, as the sidebar shows it."""
    await page.click("[data-tab=register]")
    await page.fill("input[name=email]", f"{name}@example.com")
    await page.fill("input[name=username]", name)
    await page.fill("input[name=password]", PASSWORD)
    await page.click("form.auth-form button[type=submit]")
    await expect(page.locator(".status-pill")).to_have_attribute("data-status", "connected")
    user_id = await page.get_attribute(".my-id", "data-user-id")
    assert user_id
    return user_id


async def log_in_in_ui(page: Page, name: str) -> None:
    await page.fill("input[name=email]", f"{name}@example.com")
    await page.fill("input[name=password]", PASSWORD)
    await page.click("form.auth-form button[type=submit]")
    await expect(page.locator(".status-pill")).to_have_attribute("data-status", "connected")


async def send(page: Page, text: str) -> None:
    await page.fill(".composer-input", text)
    await page.press(".composer-input", "Enter")


def bubbles(page: Page) -> Locator:
    return page.locator(".message-list .message .content")


async def assert_no_empty_or_duplicate_bubbles(page: Page) -> None:
    texts = await bubbles(page).all_inner_texts()
    assert all(t.strip() for t in texts), texts
    ids = await page.locator(".message-list .message").evaluate_all(
        "nodes => nodes.map(n => n.dataset.id)"
    )
    assert len(ids) == len(set(ids)), ids


async def test_two_people_chat_live_and_catch_up_after_going_offline(
    base_url: str, contexts: list[BrowserContext], screenshot: Screenshot
) -> None:
    alice_name, bob_name = unique_name("alice"), unique_name("bob")
    errors: list[str] = []
    alice = await open_client(contexts[0], base_url, errors)
    bob = await open_client(contexts[1], base_url, errors)
    await register_in_ui(alice, alice_name)
    bob_id = await register_in_ui(bob, bob_name)

    # Alice starts the direct conversation with Bob's id and writes first.
    await alice.click("[data-action=new]")
    await alice.fill("input[name=person]", bob_id)
    await alice.click(".dialog-form button[type=submit]")
    await expect(alice.locator(".chat-title")).to_have_text(bob_name)
    await send(alice, "Hi Bob!")
    await expect(alice.locator(".message.mine:not(.pending) .content")).to_have_text(["Hi Bob!"])

    # Bob was not in the conversation when his page loaded: the message brings it.
    conversation = bob.locator(".conversation", has_text=alice_name)
    await expect(conversation.locator(".badge")).to_have_text("1")
    await expect(conversation.locator(".preview")).to_have_text("Hi Bob!")
    await screenshot(bob, "bob-sees-new-conversation")
    await conversation.click()
    await expect(bubbles(bob)).to_have_text(["Hi Bob!"])
    await expect(conversation.locator(".badge")).to_have_count(0)

    # Bob has it open, so he has read it; Alice sees that.
    await expect(alice.locator(".read-receipt")).to_have_text("Read")

    # Alice types; Bob sees it before she sends.
    await alice.fill(".composer-input", "How are")
    await expect(bob.locator(".typing-line")).to_have_text(f"{alice_name} is typing…")
    await screenshot(bob, "bob-sees-alice-typing")
    await alice.fill(".composer-input", "How are you?")
    await alice.press(".composer-input", "Enter")
    await expect(bubbles(bob)).to_have_text(["Hi Bob!", "How are you?"])
    await send(bob, "Great, thanks!")
    await expect(bubbles(alice)).to_have_text(["Hi Bob!", "How are you?", "Great, thanks!"])
    await expect(alice.locator(".message.theirs .content")).to_have_text(["Great, thanks!"])
    await screenshot(alice, "alice-chatting")

    # Bob drops off the network while Alice writes on: back online, the socket reconnects
    # and history fills the hole.
    await contexts[1].set_offline(True)
    await expect(bob.locator(".status-pill")).to_have_attribute("data-status", "offline")
    missed = [f"While you were away {i}" for i in range(1, 6)]
    for text in missed:
        await send(alice, text)
    await expect(alice.locator(".message.mine:not(.pending)")).to_have_count(7)
    await screenshot(bob, "bob-offline")
    await contexts[1].set_offline(False)
    await expect(bob.locator(".status-pill")).to_have_attribute("data-status", "connected")
    everything = ["Hi Bob!", "How are you?", "Great, thanks!", *missed]
    await expect(bubbles(bob)).to_have_text(everything)

    # Offline again, Bob writes: his message shows at once as pending, and goes (once)
    # when the connection is back.
    await contexts[1].set_offline(True)
    await expect(bob.locator(".status-pill")).to_have_attribute("data-status", "offline")
    await send(bob, "Anyone there?")
    await expect(bob.locator(".message.pending .content")).to_have_text(["Anyone there?"])
    await screenshot(bob, "bob-offline-sending")
    await contexts[1].set_offline(False)
    everything.append("Anyone there?")
    await expect(bob.locator(".message.pending")).to_have_count(0)
    await expect(bubbles(bob)).to_have_text(everything)
    await expect(bubbles(alice)).to_have_text(everything)
    await assert_no_empty_or_duplicate_bubbles(bob)
    await assert_no_empty_or_duplicate_bubbles(alice)
    await screenshot(bob, "bob-caught-up")

    # A reload keeps the session (cookies) and shows the same history, once.
    await bob.reload()
    await expect(bob.locator(".status-pill")).to_have_attribute("data-status", "connected")
    await expect(bubbles(bob)).to_have_text(everything)
    await assert_no_empty_or_duplicate_bubbles(bob)
    assert errors == []


async def test_scrolling_up_loads_older_pages_in_order(
    base_url: str, contexts: list[BrowserContext], screenshot: Screenshot
) -> None:
    alice_name = unique_name("alice")
    total = 2 * PAGE_SIZE + 15
    expected = [f"seed {i}" for i in range(1, total + 1)]
    errors: list[str] = []
    async with httpx.AsyncClient(base_url=base_url) as client:
        alice_auth = await register(client, alice_name)
        bob_auth = await register(client)
        conversation = await create_direct(client, alice_auth["tokens"], bob_auth["user"]["id"])
        conversation_id = (conversation.get("conversation") or conversation)["id"]

        async def post(i: int) -> None:
            tokens = alice_auth["tokens"] if i % 3 else bob_auth["tokens"]
            response = await client.post(
                f"/api/v1/conversations/{conversation_id}/messages",
                json={"content": expected[i - 1]},
                headers=bearer(tokens),
            )
            assert response.status_code == 201, response.text

        for i in range(1, total):
            await post(i)
        page = await open_client(contexts[0], base_url, errors)
        await log_in_in_ui(page, alice_name)
        # The newest arrives live before the conversation is opened; the first page
        # brings it again, and it must show once.
        await post(total)
        await expect(page.locator(".conversation .preview")).to_have_text(expected[-1])

    await page.click(".conversation")
    await expect(bubbles(page)).to_have_text(expected[-PAGE_SIZE:])
    await screenshot(page, "newest-page")

    for shown in (2 * PAGE_SIZE, total):
        await page.locator(".messages").evaluate("node => node.scrollTo(0, 0)")
        await expect(bubbles(page)).to_have_text(expected[-shown:])
    await expect(page.locator(".older")).to_have_text("This is the beginning of the conversation")
    await assert_no_empty_or_duplicate_bubbles(page)
    await screenshot(page, "all-pages")
    assert errors == []
