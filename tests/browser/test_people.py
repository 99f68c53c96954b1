"""People in the web client, in Chromium: two people (two browser profiles) find each other
by name, one takes messages from contacts only and the other's send is refused in words;
a contact request reaches the bell and the people panel live, is accepted, and from then
on each sees the other online (a green dot) while their page is open and offline once it
closes."""

from __future__ import annotations

from playwright.async_api import BrowserContext, Locator, Page, expect

from tests.browser.conftest import Screenshot
from tests.browser.test_webclient import create_group_in_ui, open_client, register_in_ui, send
from tests.harness import unique_name


async def search_person(page: Page, name: str) -> Locator:
    """Open the people panel, search for `name`; returns that person's result row."""
    if not await page.locator("dialog.people").is_visible():
        await page.click("[data-action=people]")
    await page.fill("input[name=people-search]", name)
    return page.locator(f".search-results .person[data-username={name}]")


async def test_contacts_requests_presence_and_a_contacts_only_inbox(
    base_url: str, contexts: list[BrowserContext], screenshot: Screenshot
) -> None:
    alice_name, bob_name = unique_name("alice"), unique_name("bob")
    errors: list[str] = []
    alice = await open_client(contexts[0], base_url, errors)
    bob = await open_client(contexts[1], base_url, errors)
    await register_in_ui(alice, alice_name)
    await register_in_ui(bob, bob_name)

    # Bob chooses a display name: it is what Alice sees of him from now on.
    await bob.click("[data-action=profile]")
    await bob.fill("input[name=display_name]", "Bob Stone")
    await bob.click("dialog[aria-label=Profile] button[type=submit]")
    await expect(bob.locator(".form-note")).to_have_text("Saved")
    await expect(bob.locator(".me-name")).to_have_text("Bob Stone")
    await bob.click("dialog[aria-label=Profile] [aria-label=Close]")

    # Alice finds Bob by name and writes to him: he takes messages from anyone for now.
    bob_row = await search_person(alice, bob_name)
    await expect(bob_row.locator(".person-name")).to_have_text("Bob Stone")
    await expect(bob_row.locator("[data-action=add-contact]")).to_be_visible()
    await screenshot(alice, "alice-finds-bob")
    await bob_row.locator("[data-action=message]").click()
    await expect(alice.locator(".chat-title")).to_have_text("Bob Stone")
    await send(alice, "Hi Bob!")
    await expect(alice.locator(".message.mine:not(.pending) .content")).to_have_text(["Hi Bob!"])
    await expect(bob.locator(".conversation", has_text=alice_name)).to_be_visible()

    # Bob takes direct messages from contacts only: Alice's next send is refused, in words.
    await bob.click("[data-action=profile]")
    await bob.check("input[name=dm_policy]")
    await bob.click("dialog[aria-label=Profile] button[type=submit]")
    await expect(bob.locator(".form-note")).to_have_text("Saved")
    await screenshot(bob, "bob-profile-contacts-only")
    await bob.click("dialog[aria-label=Profile] [aria-label=Close]")
    await send(alice, "Still there?")
    refused = alice.locator(".send-refused[data-code=not_a_contact]")
    await expect(refused).to_contain_text("Bob Stone only takes messages from contacts")
    await screenshot(alice, "alice-send-refused")

    # Alice asks to be Bob's contact; Bob's bell and people panel show it live.
    bob_row = await search_person(alice, bob_name)
    await bob_row.locator("[data-action=add-contact]").click()
    await expect(bob_row.locator(".tag")).to_have_text("Requested")
    await expect(
        alice.locator(".people-section .person[data-username=" + bob_name + "] .person-sub")
    ).to_have_text("request sent")
    await expect(bob.locator(".bell-badge")).to_have_text("1")
    await bob.click("[data-action=notifications]")
    await expect(bob.locator(".notification.unread .notification-text")).to_have_text(
        [f"{alice_name} wants to be your contact"]
    )
    await screenshot(bob, "bob-notifications")
    await bob.click(".notification[data-type=contact_request]")
    await expect(bob.locator(".bell-badge")).to_be_hidden()
    incoming = bob.locator(f".people-section .person[data-username={alice_name}]")
    await expect(incoming.locator(".person-sub")).to_have_text("wants to be your contact")
    await screenshot(bob, "bob-incoming-request")
    await incoming.locator("[data-action=accept]").click()

    # Contacts now, both online: a green dot on each side, in the panel and the chat list.
    bob_contact = alice.locator(f".people-section .person[data-username={bob_name}]")
    await expect(bob_contact.locator(".avatar")).to_have_class("avatar avatar-md online")
    await expect(bob_contact.locator(".person-sub")).to_have_text(f"@{bob_name} · online")
    await expect(
        bob.locator(f".people-section .person[data-username={alice_name}] .avatar.online")
    ).to_be_visible()
    await expect(alice.locator(".bell-badge")).to_have_text("1")
    await screenshot(alice, "alice-contacts-bob-online")
    await alice.click("dialog.people [aria-label=Close]")
    await expect(alice.locator(".chat-subtitle")).to_have_text("online")
    await expect(alice.locator(".conversation.active .avatar.online")).to_be_visible()

    # Alice's refused message goes through now that they are contacts.
    await refused.locator("button").click()
    await expect(
        bob.locator(".conversation", has_text=alice_name).locator(".preview")
    ).to_have_text("Still there?")
    await alice.click("[data-action=notifications]")
    await expect(alice.locator(".notification-text")).to_have_text(
        ["Bob Stone accepted your contact request"]
    )
    await alice.click("[data-action=mark-all-read]")
    await expect(alice.locator(".bell-badge")).to_be_hidden()
    # A click outside the panel closes it.
    await alice.click(".sidebar-title")
    await expect(alice.locator(".notifications-panel")).to_be_hidden()
    await screenshot(alice, "alice-chat-bob-online")

    # Alice makes a group with Bob in it: his bell says so in words, and the group is in his
    # list at once, before anyone writes there.
    await create_group_in_ui(alice, "Weekend", f"{bob_name}@example.com")
    await expect(bob.locator(".bell-badge")).to_have_text("1")
    await expect(bob.locator(".conversation", has_text="Weekend")).to_be_visible()
    await bob.click("dialog.people [aria-label=Close]")
    await bob.click("[data-action=notifications]")
    await expect(bob.locator(".notification.unread .notification-text")).to_have_text(
        [f"{alice_name} added you to Weekend"]
    )
    await screenshot(bob, "bob-added-to-group")
    await alice.locator(".conversation", has_text="Bob Stone").click()

    # Bob's last page closes: Alice sees him go offline at once.
    await bob.close()
    await expect(alice.locator(".chat-subtitle")).to_have_text("last seen just now")
    await expect(alice.locator(".conversation.active .avatar.online")).to_have_count(0)
    await screenshot(alice, "alice-sees-bob-offline")

    # Alice blocks Bob from his menu: no longer a contact, listed as blocked, and her send
    # in their chat is refused in words; unblocking lifts it.
    await alice.click("[data-action=people]")
    await alice.click(f".people-section .person[data-username={bob_name}] .menu summary")
    await alice.click(f".people-section .person[data-username={bob_name}] [data-action=block]")
    blocked = alice.locator(f".people-section .person[data-username={bob_name}]")
    await expect(blocked.locator("[data-action=unblock]")).to_have_count(2)
    await expect(alice.locator(".people-title")).to_have_text(["Contacts · 0", "Blocked"])
    await screenshot(alice, "alice-blocked-bob")
    await alice.click("dialog.people [aria-label=Close]")
    await send(alice, "Blocked?")
    await expect(alice.locator(".send-refused[data-code=blocked]")).to_contain_text(
        "one of you has blocked the other"
    )
    await alice.click("[data-action=people]")
    await blocked.locator(".person-actions [data-action=unblock]").click()
    await expect(blocked).to_have_count(0)
    assert errors == []
