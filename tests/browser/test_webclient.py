"""The web client at `/`, in Chromium: two people register, chat live, see each other type
and read, one drops off the network and comes back to every message once and in order;
a reload keeps the history; scrolling up pages through older messages."""

from __future__ import annotations

import re

import httpx
from playwright.async_api import Browser, BrowserContext, Locator, Page, WebSocketRoute, expect

from gochat_py.settings import load_settings
from tests.browser.conftest import Screenshot, new_context
from tests.harness import (
    PASSWORD,
    bearer,
    create_direct,
    register,
    serve_app,
    server_environment,
    unique_name,
)

# The client's first history page (js/sync.js PAGE_SIZE).
PAGE_SIZE = 30
# The client's socket, opened with ?resume=1.
SOCKET_URL = re.compile(r"/ws(\?|$)")


async def open_client(context: BrowserContext, base_url: str, errors: list[str]) -> Page:
    """The client in a new tab; uncaught script errors and anything the page's
    Content-Security-Policy refused are collected in `errors`."""
    page = await context.new_page()
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on(
        "console",
        lambda message: (
            errors.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
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


async def create_group_in_ui(page: Page, name: str, people: str) -> None:
    """Create a group through the new-conversation dialog; `people`: ids or emails."""
    await page.click("[data-action=new]")
    await page.click("[data-tab=group]")
    await page.fill("input[name=group-name]", name)
    await page.fill("textarea[name=people]", people)
    await page.click(".dialog-form button[type=submit]")
    await expect(page.locator(".chat-title")).to_have_text(name)


async def send(page: Page, text: str) -> None:
    await page.fill(".composer-input", text)
    await page.press(".composer-input", "Enter")


async def member_action(page: Page, name: str, action: str) -> None:
    """In the open members panel, pick `action` from the row menu of the member `name`."""
    row = page.locator(".member", has_text=name)
    await row.locator("[data-action=member-menu]").click()
    await row.locator(f"[data-action={action}]").click()


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


async def test_a_group_names_who_wrote_and_its_owner_manages_the_members(
    base_url: str, contexts: list[BrowserContext], screenshot: Screenshot
) -> None:
    alice_name, bob_name, carol_name = (unique_name(n) for n in ("alice", "bob", "carol"))
    errors: list[str] = []
    async with httpx.AsyncClient(base_url=base_url) as client:
        await register(client, alice_name)
        bob = await register(client, bob_name)
        carol = await register(client, carol_name)
        page = await open_client(contexts[0], base_url, errors)
        await log_in_in_ui(page, alice_name)

        await create_group_in_ui(
            page, "Weekend plans", f"{bob['user']['id']}, {carol['user']['id']}"
        )
        await expect(page.locator(".chat-subtitle")).to_contain_text("3 members")

        conversation_id = await page.get_attribute(".conversation.active", "data-id")
        for text in ("Hi all! Saturday hike?", "I'll bring snacks"):
            response = await client.post(
                f"/api/v1/conversations/{conversation_id}/messages",
                json={"content": text},
                headers=bearer(bob["tokens"]),
            )
            assert response.status_code == 201, response.text
    # One sender's run shows the name once, on its first bubble.
    await expect(page.locator(".message.theirs .sender")).to_have_text([bob_name])
    await send(page, "Count me in!")
    await expect(page.locator(".message.mine:not(.pending) .content")).to_have_text(
        ["Count me in!"]
    )
    await screenshot(page, "group")

    await page.click("[data-action=members]")
    members = page.locator(".member-list .member-name")
    await expect(members).to_have_count(3)
    await member_action(page, carol_name, "remove-member")
    await expect(members).to_have_count(2)
    await page.fill("input[name=user-ids]", carol["user"]["id"])
    await page.click(".add-member button[type=submit]")
    await expect(members).to_have_count(3)
    await screenshot(page, "group-members")
    await page.keyboard.press("Escape")
    await expect(page.locator(".chat-subtitle")).to_contain_text("3 members")

    # Logging out ends the session: the cookies are gone, a reload shows the login card.
    await page.click("[data-action=logout]")
    await expect(page.locator("form.auth-form")).to_be_visible()
    await page.reload()
    await expect(page.locator("form.auth-form")).to_be_visible()
    assert not [c for c in await page.context.cookies() if c["name"].endswith("_token")]
    assert errors == []


async def test_on_a_narrow_screen_the_list_and_the_chat_take_turns(
    base_url: str, browser: Browser, screenshot: Screenshot
) -> None:
    context = await new_context(browser, width=390, phone=True)
    errors: list[str] = []
    async with httpx.AsyncClient(base_url=base_url) as client:
        alice_name = unique_name("alice")
        alice = await register(client, alice_name)
        bob = await register(client)
        await create_direct(client, alice["tokens"], bob["user"]["id"])
    page = await open_client(context, base_url, errors)
    await log_in_in_ui(page, alice_name)
    await expect(page.locator(".chat-pane")).to_be_hidden()
    await page.click(".conversation")
    await expect(page.locator(".sidebar")).to_be_hidden()
    await send(page, "Sent from my phone")
    await expect(page.locator(".message.mine:not(.pending)")).to_have_count(1)
    # No hover on a phone: a tap on the bubble shows what can be done with it.
    actions = page.locator(".message.mine .message-actions")
    await expect(actions).to_be_hidden()
    await page.tap(".message.mine .bubble")
    await expect(actions).to_be_visible()
    await screenshot(page, "phone-chat")
    await page.tap(".message.mine .bubble")
    await expect(actions).to_be_hidden()
    await page.click(".chat-header .back")
    await expect(page.locator(".conversation .preview")).to_have_text("You: Sent from my phone")
    await screenshot(page, "phone-list")
    await context.close()
    assert errors == []


async def test_the_socket_is_renewed_before_its_token_expires_and_stays_open(
    database_url: str, redis_url: str, browser: Browser
) -> None:
    # A 4 s token: token_expiring comes 1 s ahead of the close, and the cookies expire too.
    env = server_environment(database_url, redis_url, JWT_ACCESS_EXPIRY="4s")
    context = await new_context(browser)
    errors: list[str] = []
    sockets: list[str] = []
    alice_name, bob_name = unique_name("alice"), unique_name("bob")
    async with (
        serve_app(load_settings(env)) as base_url,
        httpx.AsyncClient(base_url=base_url) as client,
    ):
        await register(client, alice_name)
        await register(client, bob_name)
        page = await open_client(context, base_url, errors)
        await log_in_in_ui(page, alice_name)
        alice_id = await page.get_attribute(".my-id", "data-user-id")
        page.on("websocket", lambda socket: sockets.append(socket.url))
        # Two lifetimes of the first token: renewed at least twice on the open socket.
        await page.wait_for_timeout(8_000)
        await expect(page.locator(".status-pill")).to_have_attribute("data-status", "connected")

        login = await client.post(
            "/api/v1/auth/login", json={"email": f"{bob_name}@example.com", "password": PASSWORD}
        )
        bob_tokens = login.json()["tokens"]
        conversation = await create_direct(client, bob_tokens, alice_id or "")
        conversation_id = (conversation.get("conversation") or conversation)["id"]
        response = await client.post(
            f"/api/v1/conversations/{conversation_id}/messages",
            json={"content": "Still there?"},
            headers=bearer(bob_tokens),
        )
        assert response.status_code == 201, response.text
        await expect(page.locator(".conversation .preview")).to_have_text("Still there?")
    assert sockets == [], "the socket was closed and opened again"
    await context.close()
    assert errors == []


async def test_a_message_lost_on_the_way_is_fetched_when_the_next_one_skips_its_seq(
    base_url: str, contexts: list[BrowserContext]
) -> None:
    lost = "lost in transit"
    errors: list[str] = []
    dropped: list[str] = []

    def drop_one_message(socket: WebSocketRoute) -> None:
        server = socket.connect_to_server()

        def to_page(frame: str | bytes) -> None:
            if isinstance(frame, str) and f'"content":"{lost}"' in frame:
                dropped.append(frame)
            else:
                socket.send(frame)

        server.on_message(to_page)

    async with httpx.AsyncClient(base_url=base_url) as client:
        alice = await register(client)
        bob_name = unique_name("bob")
        bob = await register(client, bob_name)
        conversation = await create_direct(client, alice["tokens"], bob["user"]["id"])
        conversation_id = (conversation.get("conversation") or conversation)["id"]
        page = await contexts[0].new_page()
        page.on("pageerror", lambda error: errors.append(str(error)))
        await page.route_web_socket(SOCKET_URL, drop_one_message)
        await page.goto(f"{base_url}/")
        await log_in_in_ui(page, bob_name)
        await page.click(".conversation")
        await expect(page.locator(".older")).to_have_text("")  # the (empty) history is loaded
        texts = ["one", lost, "three"]
        for text in texts:
            response = await client.post(
                f"/api/v1/conversations/{conversation_id}/messages",
                json={"content": text},
                headers=bearer(alice["tokens"]),
            )
            assert response.status_code == 201, response.text
    await expect(bubbles(page)).to_have_text(texts)
    assert len(dropped) == 1
    await assert_no_empty_or_duplicate_bubbles(page)
    assert errors == []
