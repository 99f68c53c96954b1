"""Message search in the web client, in Chromium: a member types words in the sidebar's box,
the matches of their conversations replace the list with the words marked, a click opens
the conversation, and Escape brings the list back."""

from __future__ import annotations

from playwright.async_api import BrowserContext, expect
from redis.asyncio import Redis

from gochat_py.redis.backlog import read_backlog
from gochat_py.settings import Settings
from tests.browser.conftest import Screenshot
from tests.browser.test_webclient import create_group_in_ui, open_client, register_in_ui, send
from tests.harness import poll_until, unique_name
from tests.stream_traffic import running_consumer


async def test_a_search_lists_the_matches_marked_and_opens_their_conversation(
    base_url: str,
    contexts: list[BrowserContext],
    screenshot: Screenshot,
    settings: Settings,
    redis: Redis,
) -> None:
    errors: list[str] = []
    alice = await open_client(contexts[0], base_url, errors)
    bob = await open_client(contexts[1], base_url, errors)
    await register_in_ui(alice, unique_name("alice"))
    bob_id = await register_in_ui(bob, unique_name("bob"))
    await create_group_in_ui(alice, "Weekend", bob_id)
    await send(alice, "Meet at the old lighthouse at noon")
    await send(alice, "Bring <b>snacks</b> please")
    await expect(alice.locator(".message.mine:not(.pending)")).to_have_count(2)

    # Searchable once the worker has stored them.
    partitions = settings.stream_partitions
    async with running_consumer(settings.redis_url, settings.database_url, partitions=partitions):

        async def stored() -> bool:
            backlog = await read_backlog(redis, partitions)
            return backlog.finished == backlog.messages_total

        await poll_until(stored, what="the messages stored")

    await bob.fill("input[name=message-search]", "lighthouse")
    result = bob.locator(".message-result")
    await expect(result).to_have_count(1)
    await expect(result.locator(".conversation-name")).to_have_text("Weekend")
    await expect(result.locator("mark")).to_have_text("lighthouse")
    await expect(bob.locator(".conversation-list:not(.message-results)")).to_be_hidden()
    await screenshot(bob, "bob-finds-lighthouse")

    # Markup in a message is never markup in the excerpt (ts_headline leaves tags out).
    await bob.fill("input[name=message-search]", "snacks")
    await expect(result.locator("mark")).to_have_text("snacks")
    await expect(result.locator(".result-excerpt")).to_contain_text("Bring")
    await expect(result.locator("b")).to_have_count(0)

    await bob.fill("input[name=message-search]", "nowhere")
    await expect(bob.locator(".search-status")).to_have_text("No messages found.")

    await bob.fill("input[name=message-search]", "lighthouse")
    await result.click()
    await expect(bob.locator(".chat-title")).to_have_text("Weekend")
    await bob.press("input[name=message-search]", "Escape")
    await expect(bob.locator(".message-result")).to_have_count(0)
    await expect(bob.locator(".conversation", has_text="Weekend")).to_be_visible()
    assert errors == []
