"""The conversation's log in the web client, in Chromium: edits and deletes reach the other
person's screen (and a refused one is said in words), a group's joins and leaves are lines
of its timeline, my messages tick once when sent, twice when delivered and light up when
read, a reconnect resumes from the last seq held with nothing missing or doubled (and one
it cannot replay reads the held messages again, their edits and deletes with them), an
edit that overtakes the first history page still shows, and a reply quotes its original
while a mention lights up and rings the bell."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Mapping
from typing import Any

import httpx
from playwright.async_api import BrowserContext, Locator, Page, Route, WebSocket, expect

from gochat_py.settings import load_settings
from tests.browser.conftest import Screenshot, new_context
from tests.browser.test_webclient import (
    assert_no_empty_or_duplicate_bubbles,
    bubbles,
    log_in_in_ui,
    member_action,
    open_client,
    send,
)
from tests.harness import (
    bearer,
    create_direct,
    create_group,
    poll_until,
    register,
    serve_app,
    server_environment,
    unique_name,
)

# A replay holds at most half of WS_SEND_QUEUE frames; with 16 a socket that missed more
# than 8 is told `recovered: false` and reads history instead.
SMALL_SEND_QUEUE = "16"


def bubble(page: Page, text: str) -> Locator:
    return page.locator(".message-list .message", has_text=text)


async def message_action(page: Page, text: str, action: str) -> None:
    """Hover the message showing `text` and click one of its actions."""
    item = bubble(page, text)
    await item.locator(".bubble").hover()
    await item.locator(f".message-actions [data-action={action}]").click()


async def post(
    client: httpx.AsyncClient, tokens: Mapping[str, Any], conversation_id: str, text: str
) -> dict[str, Any]:
    response = await client.post(
        f"/api/v1/conversations/{conversation_id}/messages",
        json={"content": text},
        headers=bearer(tokens),
    )
    assert response.status_code == 201, response.text
    message: dict[str, Any] = response.json()
    return message


async def group_of_three(
    client: httpx.AsyncClient, name: str, alice_name: str, bob_name: str
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Alice, Bob and Carol registered, and Alice's group `name` with the other two."""
    alice = await register(client, alice_name)
    bob = await register(client, bob_name)
    carol = await register(client)
    group = await create_group(
        client, alice["tokens"], name, [bob["user"]["id"], carol["user"]["id"]]
    )
    return alice, bob, carol, group


class SocketLog:
    """The JSON frames a page's sockets sent and received, in order."""

    def __init__(self, page: Page) -> None:
        self.sent: list[dict[str, Any]] = []
        self.received: list[dict[str, Any]] = []
        page.on("websocket", self._watch)

    def _watch(self, socket: WebSocket) -> None:
        socket.on("framesent", lambda payload: self.sent.append(_frame(payload)))
        socket.on("framereceived", lambda payload: self.received.append(_frame(payload)))

    def sent_events(self, event: str) -> list[dict[str, Any]]:
        return [f for f in self.sent if f.get("event") == event]

    def received_events(self, event: str) -> list[dict[str, Any]]:
        return [f for f in self.received if f.get("event") == event]


def _frame(payload: str | bytes) -> dict[str, Any]:
    try:
        frame = json.loads(payload)
    except ValueError:
        return {}
    return frame if isinstance(frame, dict) else {}


def history_catch_ups(requests: list[str]) -> list[str]:
    return [url for url in requests if "after_seq=" in url]


async def test_edits_and_deletes_reach_the_other_person_and_a_refusal_is_said_in_words(
    base_url: str, contexts: list[BrowserContext], screenshot: Screenshot
) -> None:
    alice_name, bob_name = unique_name("alice"), unique_name("bob")
    errors: list[str] = []
    async with httpx.AsyncClient(base_url=base_url) as client:
        await register(client, alice_name)
        bob = await register(client, bob_name)
        alice = await open_client(contexts[0], base_url, errors)
        await log_in_in_ui(alice, alice_name)
        await alice.click("[data-action=new]")
        await alice.fill("input[name=person]", bob["user"]["id"])
        await alice.click(".dialog-form button[type=submit]")
        bob_page = await open_client(contexts[1], base_url, errors)
        await log_in_in_ui(bob_page, bob_name)

        await send(alice, "Lunch at noon?")
        await send(alice, "Bring the tickets")
        await bob_page.click(".conversation")
        await expect(bubbles(bob_page)).to_have_text(["Lunch at noon?", "Bring the tickets"])

        # Alice edits in place: Bob's screen shows the new text, marked edited.
        await message_action(alice, "Lunch at noon?", "edit")
        editor = alice.locator(".edit-input")
        await expect(editor).to_be_focused()
        await editor.fill("Lunch at one?")
        await editor.press("Enter")
        await expect(bubble(bob_page, "Lunch at one?").locator(".edited")).to_have_text("edited")
        await expect(bubble(alice, "Lunch at one?").locator(".edited")).to_be_visible()
        await expect(bubbles(bob_page)).to_have_text(["Lunch at one?", "Bring the tickets"])
        await screenshot(bob_page, "bob-sees-the-edit")

        # In a direct conversation Bob may reply to Alice's message, not change it.
        await bubble(bob_page, "Lunch at one?").locator(".bubble").hover()
        actions = bubble(bob_page, "Lunch at one?").locator(".message-action")
        await expect(actions).to_have_count(1)
        await expect(actions).to_have_attribute("data-action", "reply")

        # Deleting asks first; Cancel keeps the message.
        await message_action(alice, "Bring the tickets", "delete")
        await expect(alice.locator("dialog.confirm")).to_be_visible()
        await screenshot(alice, "alice-confirms-delete")
        await alice.click("dialog.confirm button[value=cancel]")
        await expect(bubbles(alice)).to_have_text(["Lunch at one?", "Bring the tickets"])
        await message_action(alice, "Bring the tickets", "delete")
        await alice.click("dialog.confirm [data-action=confirm]")
        tombstone = "This message was deleted"
        await expect(bob_page.locator(".message.deleted .content")).to_have_text([tombstone])
        await expect(alice.locator(".message.deleted .content")).to_have_text([tombstone])
        await expect(bob_page.locator(".conversation .preview")).to_have_text(tombstone)
        await screenshot(bob_page, "bob-sees-the-tombstone")

        # Bob blocks Alice: her next edit is refused, and she is told why in words.
        response = await client.post(
            "/api/v1/blocks", json={"user_id": await my_id(alice)}, headers=bearer(bob["tokens"])
        )
        assert response.status_code in (200, 201), response.text
        lunch = alice.locator(
            f".message[data-id='{await bubble(alice, 'Lunch at one?').get_attribute('data-id')}']"
        )
        await message_action(alice, "Lunch at one?", "edit")
        await alice.locator(".edit-input").fill("Lunch at two?")
        await alice.locator("[data-action=save-edit]").click()
        await expect(lunch.locator(".message-error")).to_contain_text("blocked")
        await screenshot(alice, "alice-edit-refused")
    await expect(bubbles(bob_page)).to_have_text(["Lunch at one?", tombstone])
    await assert_no_empty_or_duplicate_bubbles(bob_page)
    assert errors == []


async def my_id(page: Page) -> str:
    user_id = await page.get_attribute(".my-id", "data-user-id")
    assert user_id
    return user_id


async def test_a_group_shows_joins_and_leaves_as_lines_and_its_owner_deletes_any_message(
    base_url: str, contexts: list[BrowserContext], screenshot: Screenshot
) -> None:
    alice_name, bob_name, carol_name = (unique_name(n) for n in ("alice", "bob", "carol"))
    errors: list[str] = []
    async with httpx.AsyncClient(base_url=base_url) as client:
        alice = await register(client, alice_name)
        bob = await register(client, bob_name)
        carol = await register(client, carol_name)
        group = await create_group(client, alice["tokens"], "Book club", [bob["user"]["id"]])
        await post(client, bob["tokens"], group["id"], "Chapter 3 tonight?")
    alice_page = await open_client(contexts[0], base_url, errors)
    await log_in_in_ui(alice_page, alice_name)
    bob_page = await open_client(contexts[1], base_url, errors)
    await log_in_in_ui(bob_page, bob_name)
    for page in (alice_page, bob_page):
        await page.click(".conversation")
    created = f'{alice_name} created the group "Book club"'
    await expect(bob_page.locator(".message-list .system")).to_have_text([created])

    # Alice adds Carol, then removes her: both are lines of the timeline on Bob's screen,
    # between the messages they came between, and his header counts the members.
    await alice_page.click("[data-action=members]")
    await alice_page.fill("input[name=user-ids]", carol["user"]["id"])
    await alice_page.click(".add-member button[type=submit]")
    await expect(alice_page.locator(".member-list .member-name")).to_have_count(3)
    await alice_page.keyboard.press("Escape")
    added = f"{alice_name} added {carol_name}"
    await expect(bob_page.locator(".message-list .system")).to_have_text([created, added])
    await expect(bob_page.locator(".chat-subtitle")).to_contain_text("3 members")
    await send(alice_page, "Welcome Carol!")
    await alice_page.click("[data-action=members]")
    await member_action(alice_page, carol_name, "remove-member")
    await expect(alice_page.locator(".member-list .member-name")).to_have_count(2)
    await alice_page.keyboard.press("Escape")
    removed = f"{alice_name} removed {carol_name}"
    await expect(bob_page.locator(".message-list .system")).to_have_text([created, added, removed])
    await expect(bob_page.locator(".chat-subtitle")).to_contain_text("2 members")
    timeline = await bob_page.locator(".message-list > li:not(.day)").evaluate_all(
        "items => items.map(i => (i.querySelector('.content') ?? i).textContent)"
    )
    assert timeline == [created, "Chapter 3 tonight?", added, "Welcome Carol!", removed]
    await screenshot(bob_page, "bob-sees-joins-and-leaves")

    # The owner may delete anyone's message: Bob's becomes a tombstone on his screen too.
    await message_action(alice_page, "Chapter 3 tonight?", "delete")
    await alice_page.click("dialog.confirm [data-action=confirm]")
    await expect(bob_page.locator(".message.deleted .content")).to_have_text(
        ["This message was deleted"]
    )
    await screenshot(alice_page, "alice-deleted-bobs-message")
    # Bob, a plain member, may delete his own messages only.
    await send(bob_page, "Sorry!")
    await bubble(bob_page, "Welcome Carol!").locator(".bubble").hover()
    await expect(
        bubble(bob_page, "Welcome Carol!").locator(".message-action[data-action=delete]")
    ).to_have_count(0)
    await bubble(bob_page, "Sorry!").locator(".bubble").hover()
    await expect(
        bubble(bob_page, "Sorry!").locator(".message-action[data-action=delete]")
    ).to_have_count(1)
    await assert_no_empty_or_duplicate_bubbles(bob_page)
    assert errors == []


async def test_my_messages_tick_once_when_sent_twice_when_delivered_and_light_up_when_read(
    base_url: str, contexts: list[BrowserContext], screenshot: Screenshot
) -> None:
    alice_name, bob_name = unique_name("alice"), unique_name("bob")
    errors: list[str] = []
    async with httpx.AsyncClient(base_url=base_url) as client:
        alice, bob, carol, group = await group_of_three(client, "Trip", alice_name, bob_name)
        direct = await create_direct(client, alice["tokens"], bob["user"]["id"])
        alice_page = await open_client(contexts[0], base_url, errors)
        await log_in_in_ui(alice_page, alice_name)
        bob_page = await open_client(contexts[1], base_url, errors)
        await log_in_in_ui(bob_page, bob_name)
        bob_log = SocketLog(bob_page)

        # Bob is offline: Alice's message is sent (one tick), not delivered.
        await contexts[1].set_offline(True)
        await expect(bob_page.locator(".status-pill")).to_have_attribute("data-status", "offline")
        await alice_page.click(f".conversation[data-id='{direct['id']}']")
        await send(alice_page, "Are you up?")
        tick = bubble(alice_page, "Are you up?").locator(".tick")
        await expect(tick).to_have_attribute("data-status", "sent")
        await screenshot(alice_page, "one-tick")

        # Back online, Bob's device has it (though he has not opened it): two ticks.
        await contexts[1].set_offline(False)
        await expect(tick).to_have_attribute("data-status", "delivered")
        await expect(
            bob_page.locator(f".conversation[data-id='{direct['id']}'] .badge")
        ).to_have_text("1")
        await screenshot(alice_page, "two-ticks")
        # ... which it said with `received`, at most once a second.
        received = [
            f for f in bob_log.sent_events("received") if f["conversation_id"] == direct["id"]
        ]
        assert received, bob_log.sent
        # Bob opens it: read.
        await bob_page.click(f".conversation[data-id='{direct['id']}']")
        await expect(tick).to_have_attribute("data-status", "read")
        await screenshot(alice_page, "read")

        # In a group, two ticks wait for every other member: Bob's device has it at once,
        # Carol (no device) only when she reads it over REST.
        await alice_page.click(f".conversation[data-id='{group['id']}']")
        await send(alice_page, "Who books the hotel?")
        group_tick = bubble(alice_page, "Who books the hotel?").locator(".tick")
        await expect(group_tick).to_have_attribute("data-status", "sent")
        bob_has_it = bob_page.locator(f".conversation[data-id='{group['id']}'] .preview")
        await expect(bob_has_it).to_have_text(f"{alice_name}: Who books the hotel?")
        await alice_page.wait_for_timeout(1_500)
        await expect(group_tick).to_have_attribute("data-status", "sent")
        last_seq = int(
            await bubble(alice_page, "Who books the hotel?").get_attribute("data-seq") or 0
        )
        response = await client.post(
            f"/api/v1/conversations/{group['id']}/read",
            json={"seq": last_seq},
            headers=bearer(carol["tokens"]),
        )
        assert response.status_code == 200, response.text
        await expect(group_tick).to_have_attribute("data-status", "delivered")
        await bob_page.click(f".conversation[data-id='{group['id']}']")
        await expect(group_tick).to_have_attribute("data-status", "read")
        await screenshot(alice_page, "group-read")

    # A reload reads the marks back (GET receipts): the ticks stay as they were.
    await alice_page.reload()
    await expect(alice_page.locator(".status-pill")).to_have_attribute("data-status", "connected")
    await expect(group_tick).to_have_attribute("data-status", "read")
    assert errors == []


async def test_a_reconnect_resumes_from_the_last_seq_held_with_nothing_missing_or_doubled(
    base_url: str, contexts: list[BrowserContext], screenshot: Screenshot
) -> None:
    bob_name = unique_name("bob")
    errors: list[str] = []
    requests: list[str] = []
    async with httpx.AsyncClient(base_url=base_url) as client:
        alice = await register(client)
        bob = await register(client, bob_name)
        direct = await create_direct(client, alice["tokens"], bob["user"]["id"])
        first = await post(client, alice["tokens"], direct["id"], "before 1")
        await post(client, alice["tokens"], direct["id"], "before 2")
        page = await open_client(contexts[0], base_url, errors)
        log = SocketLog(page)
        page.on("request", lambda request: requests.append(request.url))
        await log_in_in_ui(page, bob_name)
        await page.click(".conversation")
        await expect(bubbles(page)).to_have_text(["before 1", "before 2"])

        # Offline while Alice writes five messages and edits her first.
        await contexts[0].set_offline(True)
        await expect(page.locator(".status-pill")).to_have_attribute("data-status", "offline")
        missed = [f"missed {i}" for i in range(1, 6)]
        for text in missed:
            await post(client, alice["tokens"], direct["id"], text)
        response = await client.patch(
            f"/api/v1/conversations/{direct['id']}/messages/{first['id']}",
            json={"content": "before 1 (fixed)"},
            headers=bearer(alice["tokens"]),
        )
        assert response.status_code == 200, response.text
        await screenshot(page, "offline")
        caught_up_before = len(history_catch_ups(requests))
        await contexts[0].set_offline(False)

    everything = ["before 1 (fixed)", "before 2", *missed]
    await expect(bubbles(page)).to_have_text(everything)
    await expect(bubble(page, "before 1 (fixed)").locator(".edited")).to_be_visible()
    await assert_no_empty_or_duplicate_bubbles(page)
    await screenshot(page, "resumed")

    # The second socket said where it stood, got the frames it missed and `resumed`, and
    # needed no history request.
    resumes = log.sent_events("resume")
    assert len(resumes) == 2, resumes
    assert resumes[1]["positions"] == {direct["id"]: 2}
    resumed = log.received_events("resumed")[-1]
    assert resumed["conversations"] == [
        {
            "conversation_id": direct["id"],
            "recovered": True,
            "from_seq": 3,
            "to_seq": 8,
            "replayed": 6,
        }
    ]
    assert len(history_catch_ups(requests)) == caught_up_before

    # The six frames of the replay are told back in one `received`, with the last seq.
    async def received_after_the_replay() -> list[int]:
        seqs = [f["seq"] for f in log.sent_events("received") if f["seq"] > 2]
        return seqs

    assert await poll_until(received_after_the_replay, what="received") == [8]
    await page.wait_for_timeout(1_200)
    assert await received_after_the_replay() == [8]
    assert errors == []


async def test_a_reconnect_the_server_cannot_replay_is_filled_from_history(
    database_url: str, redis_url: str, browser: Any, screenshot: Screenshot
) -> None:
    env = server_environment(database_url, redis_url, WS_SEND_QUEUE=SMALL_SEND_QUEUE)
    context = await new_context(browser)
    errors: list[str] = []
    requests: list[str] = []
    bob_name = unique_name("bob")
    async with (
        serve_app(load_settings(env)) as base_url,
        httpx.AsyncClient(base_url=base_url) as client,
    ):
        alice = await register(client)
        bob = await register(client, bob_name)
        direct = await create_direct(client, alice["tokens"], bob["user"]["id"])
        hello = await post(client, alice["tokens"], direct["id"], "hello")
        typo = await post(client, alice["tokens"], direct["id"], "helo")
        page = await open_client(context, base_url, errors)
        log = SocketLog(page)
        page.on("request", lambda request: requests.append(request.url))
        await log_in_in_ui(page, bob_name)
        await page.click(".conversation")
        await expect(bubbles(page)).to_have_text(["hello", "helo"])

        # Offline while Alice writes twelve messages, then edits and deletes the two Bob
        # held: changes of messages older than his position, which no page after it shows.
        await context.set_offline(True)
        await expect(page.locator(".status-pill")).to_have_attribute("data-status", "offline")
        missed = [f"missed {i}" for i in range(1, 13)]
        for text in missed:
            await post(client, alice["tokens"], direct["id"], text)
        response = await client.patch(
            f"/api/v1/conversations/{direct['id']}/messages/{hello['id']}",
            json={"content": "hello again"},
            headers=bearer(alice["tokens"]),
        )
        assert response.status_code == 200, response.text
        response = await client.delete(
            f"/api/v1/conversations/{direct['id']}/messages/{typo['id']}",
            headers=bearer(alice["tokens"]),
        )
        assert response.status_code == 204, response.text
        await context.set_offline(False)
        tombstone = "This message was deleted"
        await expect(bubbles(page)).to_have_text(["hello again", tombstone, *missed])
        await expect(bubble(page, "hello again").locator(".edited")).to_be_visible()
        # Live traffic after the seam comes once, after what was fetched.
        await post(client, alice["tokens"], direct["id"], "after")
        await expect(bubbles(page)).to_have_text(["hello again", tombstone, *missed, "after"])
        await assert_no_empty_or_duplicate_bubbles(page)
        await screenshot(page, "filled-from-history")
    resumed = log.received_events("resumed")[-1]
    assert [c["recovered"] for c in resumed["conversations"]] == [False]
    # The messages held were read again, newest first, down to the oldest held.
    reread = [url for url in requests if f"/conversations/{direct['id']}/messages?limit=100" in url]
    assert len(reread) == 1, requests
    await context.close()
    assert errors == []


async def test_a_reply_quotes_its_original_and_a_mention_lights_up_and_rings_the_bell(
    base_url: str, contexts: list[BrowserContext], screenshot: Screenshot
) -> None:
    # Needs the server's replies and mentions (`reply_to` on send, `mentions` on messages,
    # the `mention` notification).
    alice_name, bob_name = unique_name("alice"), unique_name("bob")
    errors: list[str] = []
    async with httpx.AsyncClient(base_url=base_url) as client:
        alice, _, _, group = await group_of_three(client, "Climbing", alice_name, bob_name)
        await post(client, alice["tokens"], group["id"], "Gym on Friday at 6?")
    alice_page = await open_client(contexts[0], base_url, errors)
    await log_in_in_ui(alice_page, alice_name)
    bob_page = await open_client(contexts[1], base_url, errors)
    await log_in_in_ui(bob_page, bob_name)
    await bob_page.click(".conversation")

    # Bob replies to Alice's message: the quote sits above his composer, then above his text.
    await message_action(bob_page, "Gym on Friday at 6?", "reply")
    await expect(bob_page.locator(".reply-bar .quote-text")).to_have_text("Gym on Friday at 6?")
    # He names her with "@", picking her from the members offered.
    await bob_page.fill(".composer-input", "Count me in @" + alice_name[:3])
    suggestion = bob_page.locator(f".mention-suggestions [data-username={alice_name}]")
    await expect(suggestion).to_be_visible()
    await screenshot(bob_page, "bob-replies-and-mentions")
    await bob_page.keyboard.press("Enter")
    await expect(bob_page.locator(".composer-input")).to_have_value(f"Count me in @{alice_name} ")
    await bob_page.keyboard.type("see you there")
    await bob_page.keyboard.press("Enter")
    await expect(bob_page.locator(".reply-bar")).to_be_hidden()

    reply = bubble(alice_page, "see you there")
    await alice_page.click(".conversation")
    await expect(reply.locator(".quote .quote-text")).to_have_text("Gym on Friday at 6?")
    await expect(reply.locator(".quote .quote-sender")).to_have_text("You")
    await expect(reply).to_have_class(re.compile(r"\bmentioned\b"))
    await expect(reply.locator(".mention")).to_have_text(f"@{alice_name}")
    # Bob's own copy carries the quote from the server too.
    await expect(bubble(bob_page, "see you there").locator(".quote-sender")).to_have_text(
        alice_name
    )
    # A click on the quote shows the original.
    await reply.locator(".quote").click()
    original = alice_page.locator(".message.mine", has_text="Gym on Friday at 6?")
    await expect(original).to_have_class(re.compile(r"\bflash\b"))
    await screenshot(alice_page, "alice-sees-reply-and-mention")

    # The mention rings Alice's bell, and the notification opens the group.
    await expect(alice_page.locator(".bell-badge")).to_have_text("1")
    await alice_page.click("[data-action=notifications]")
    item = alice_page.locator(".notification[data-type=mention]")
    await expect(item).to_contain_text(f"{bob_name} mentioned you in Climbing")
    await screenshot(alice_page, "alice-mention-notification")
    await item.click()
    await expect(alice_page.locator(".chat-title")).to_have_text("Climbing")
    assert errors == []


async def test_an_edit_that_overtakes_the_first_history_page_is_not_lost(
    base_url: str, contexts: list[BrowserContext]
) -> None:
    bob_name = unique_name("bob")
    errors: list[str] = []
    async with httpx.AsyncClient(base_url=base_url) as client:
        alice = await register(client)
        bob = await register(client, bob_name)
        direct = await create_direct(client, alice["tokens"], bob["user"]["id"])
        first = await post(client, alice["tokens"], direct["id"], "See you at 5")
        page = await open_client(contexts[0], base_url, errors)
        log = SocketLog(page)
        await log_in_in_ui(page, bob_name)

        # The first page is read before Alice's edit and reaches Bob's page after it.
        edit_seen = asyncio.Event()

        async def late_page(route: Route) -> None:
            response = await route.fetch()
            await edit_seen.wait()
            await route.fulfill(response=response)

        await page.route(f"**/conversations/{direct['id']}/messages?limit=*", late_page)
        await page.click(".conversation")
        response = await client.patch(
            f"/api/v1/conversations/{direct['id']}/messages/{first['id']}",
            json={"content": "See you at 6"},
            headers=bearer(alice["tokens"]),
        )
        assert response.status_code == 200, response.text

        async def edits_received() -> list[dict[str, Any]]:
            return log.received_events("message_updated")

        await poll_until(edits_received, what="message_updated")
        edit_seen.set()
    await expect(bubbles(page)).to_have_text(["See you at 6"])
    await expect(bubble(page, "See you at 6").locator(".edited")).to_be_visible()
    assert errors == []
