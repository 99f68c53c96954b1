"""A group's life in the web client, in Chromium: its owner renames it, describes it, makes
a member an admin and hands it over, and the other member sees each change live in the
header, the list and the group info panel; a refused change is said in words; the new
owner deletes the group and it is gone from the other member's screen. A group lost while
the page was offline is dropped when the resume no longer finds it."""

from __future__ import annotations

import httpx
from playwright.async_api import BrowserContext, Locator, Page, expect

from tests.browser.conftest import Screenshot
from tests.browser.test_webclient import log_in_in_ui, member_action, open_client
from tests.harness import bearer, create_group, register, unique_name


def member_row(page: Page, user_id: str) -> Locator:
    """The row of the member `user_id` in the open group info panel."""
    return page.locator(f".group-info .member[data-user-id='{user_id}']")


async def open_group(
    context: BrowserContext, base_url: str, name: str, errors: list[str], group_id: str
) -> Page:
    """The client of user `name`, logged in, with the group open (its history loaded)."""
    page = await open_client(context, base_url, errors)
    await log_in_in_ui(page, name)
    await page.click(f".conversation[data-id='{group_id}']")
    await expect(page.locator(".message-list .system")).not_to_have_count(0)
    return page


async def confirm(page: Page) -> None:
    """Say yes to the confirmation asked."""
    await page.click("dialog.confirm [data-action=confirm]")


async def test_owner_changes_reach_the_other_member_live_and_a_deleted_group_is_gone(
    base_url: str, contexts: list[BrowserContext], screenshot: Screenshot
) -> None:
    alice_name, bob_name = unique_name("alice"), unique_name("bob")
    errors: list[str] = []
    async with httpx.AsyncClient(base_url=base_url) as client:
        alice = await register(client, alice_name)
        bob = await register(client, bob_name)
        group = await create_group(client, alice["tokens"], "Book club", [bob["user"]["id"]])
    alice_id, bob_id = alice["user"]["id"], bob["user"]["id"]
    alice_page = await open_group(contexts[0], base_url, alice_name, errors, group["id"])
    bob_page = await open_group(contexts[1], base_url, bob_name, errors, group["id"])
    for page in (alice_page, bob_page):
        await page.click("[data-action=info]")
        await expect(page.locator(".group-info .group-name")).to_have_text("Book club")

    # Alice renames the group in place: Bob's panel, header and list follow.
    await alice_page.click(".group-info [data-action=edit-name]")
    await alice_page.fill(".group-info input[name=group-name]", "Reading circle")
    await alice_page.press(".group-info input[name=group-name]", "Enter")
    await expect(bob_page.locator(".group-info .group-name")).to_have_text("Reading circle")
    await expect(bob_page.locator(".chat-title")).to_have_text("Reading circle")
    await expect(bob_page.locator(".conversation-name")).to_have_text("Reading circle")
    # Bob, a plain member, may change neither.
    await expect(bob_page.locator(".group-info [data-action^=edit-]")).to_have_count(0)

    # ... and describes it.
    about = "One book a month, Thursdays at eight."
    await alice_page.click(".group-info [data-action=edit-description]")
    await alice_page.fill(".group-info textarea[name=group-description]", about)
    await alice_page.click(".group-info .edit-description [data-action=save-edit]")
    await expect(bob_page.locator(".group-info .group-description")).to_have_text(about)
    await screenshot(alice_page, "alice-group-info")

    # Alice makes Bob an admin: his badge shows on his screen, and he may edit now.
    await member_action(alice_page, bob_name, "make-admin")
    await expect(member_row(bob_page, bob_id).locator(".role")).to_have_text("Admin")
    await expect(bob_page.locator(".group-info [data-action=edit-name]")).to_be_visible()
    await expect(bob_page.locator(".group-info [data-action=delete-group]")).to_be_hidden()

    # She hands the group to Bob, after a confirmation: he is the owner, she an admin.
    await member_action(alice_page, bob_name, "make-owner")
    await expect(alice_page.locator("dialog.confirm")).to_contain_text("You stay in the group")
    await confirm(alice_page)
    await expect(member_row(bob_page, bob_id).locator(".role")).to_have_text("Owner")
    await expect(member_row(bob_page, alice_id).locator(".role")).to_have_text("Admin")
    await expect(bob_page.locator(".group-info [data-action=delete-group]")).to_be_visible()
    await expect(alice_page.locator(".group-info [data-action=delete-group]")).to_be_hidden()
    await screenshot(bob_page, "bob-owns-the-group")

    # Alice starts renaming it again, and Bob dismisses her as admin meanwhile: her save is
    # refused, in words.
    await alice_page.click(".group-info [data-action=edit-name]")
    await alice_page.fill(".group-info input[name=group-name]", "Alice's circle")
    await member_action(bob_page, alice_name, "make-member")
    await expect(member_row(alice_page, alice_id).locator(".role")).to_have_count(0)
    await alice_page.press(".group-info input[name=group-name]", "Enter")
    await expect(alice_page.locator(".group-info .form-error")).to_have_text(
        "Only the group's owner or an admin can do that."
    )
    await screenshot(alice_page, "alice-refused")
    await alice_page.keyboard.press("Escape")

    # The timeline recorded each change.
    await expect(bob_page.locator(".message-list .system")).to_contain_text(
        [
            f'{alice_name} renamed the group to "Reading circle"',
            f"{alice_name} changed the group's description",
            f"{alice_name} made {bob_name} an admin",
            f"{alice_name} made {bob_name} the owner",
            f"{bob_name} made {alice_name} a member",
        ]
    )

    # Bob, the owner, is told who would take over if he left; he deletes the group instead.
    await bob_page.click(".group-info [data-action=leave-group]")
    await expect(bob_page.locator("dialog.confirm")).to_contain_text(
        f"{alice_name} will become the owner"
    )
    await bob_page.click("dialog.confirm button[value=cancel]")
    await bob_page.click(".group-info [data-action=delete-group]")
    await expect(bob_page.locator("dialog.confirm")).to_contain_text("whole history")
    await confirm(bob_page)
    await expect(bob_page.locator(".chat-placeholder")).to_be_visible()

    # Alice's open conversation gives way to a notice, and her list no longer has it.
    gone = alice_page.locator(".chat-gone")
    await expect(gone.locator(".gone-title")).to_have_text(f"{bob_name} deleted this group")
    await expect(alice_page.locator(".conversation")).to_have_count(0)
    await expect(alice_page.locator(".composer-input")).to_be_hidden()
    await screenshot(alice_page, "alice-sees-it-deleted")
    await gone.locator("[data-action=close-gone]").click()
    await expect(alice_page.locator(".chat-placeholder")).to_be_visible()
    assert errors == []


async def test_a_group_lost_while_offline_is_dropped_when_the_resume_no_longer_finds_it(
    base_url: str, contexts: list[BrowserContext], screenshot: Screenshot
) -> None:
    bob_name = unique_name("bob")
    errors: list[str] = []
    async with httpx.AsyncClient(base_url=base_url) as client:
        alice = await register(client)
        bob = await register(client, bob_name)
        group = await create_group(client, alice["tokens"], "Hiking", [bob["user"]["id"]])
        page = await open_group(contexts[0], base_url, bob_name, errors, group["id"])

        # Alice removes Bob while his page is offline: he misses the line that says so.
        await contexts[0].set_offline(True)
        await expect(page.locator(".status-pill")).to_have_attribute("data-status", "offline")
        response = await client.delete(
            f"/api/v1/conversations/{group['id']}/members/{bob['user']['id']}",
            headers=bearer(alice["tokens"]),
        )
        assert response.status_code == 204, response.text
        await contexts[0].set_offline(False)

    await expect(page.locator(".chat-gone .gone-title")).to_have_text(
        "This conversation is no longer available"
    )
    await expect(page.locator(".conversation")).to_have_count(0)
    await screenshot(page, "gone-after-resume")
    assert errors == []


async def test_a_member_removed_or_leaving_loses_the_group_at_once(
    base_url: str, contexts: list[BrowserContext], screenshot: Screenshot
) -> None:
    alice_name, bob_name, carol_name = (unique_name(n) for n in ("alice", "bob", "carol"))
    errors: list[str] = []
    async with httpx.AsyncClient(base_url=base_url) as client:
        alice = await register(client, alice_name)
        bob = await register(client, bob_name)
        carol = await register(client, carol_name)
        group = await create_group(
            client, alice["tokens"], "Choir", [bob["user"]["id"], carol["user"]["id"]]
        )
        bob_page = await open_group(contexts[0], base_url, bob_name, errors, group["id"])
        carol_page = await open_group(contexts[1], base_url, carol_name, errors, group["id"])

        # Alice removes Carol: Carol's open chat gives way to a notice saying who did it.
        response = await client.delete(
            f"/api/v1/conversations/{group['id']}/members/{carol['user']['id']}",
            headers=bearer(alice["tokens"]),
        )
        assert response.status_code == 204, response.text
    await expect(carol_page.locator(".chat-gone .gone-title")).to_have_text(
        f"{alice_name} removed you from this group"
    )
    await expect(carol_page.locator(".conversation")).to_have_count(0)
    await screenshot(carol_page, "carol-removed")

    # Bob leaves, after a confirmation: the group is gone from his list.
    await bob_page.click("[data-action=info]")
    await bob_page.click(".group-info [data-action=leave-group]")
    await expect(bob_page.locator("dialog.confirm")).to_contain_text("stop getting its messages")
    await confirm(bob_page)
    await expect(bob_page.locator(".chat-placeholder")).to_be_visible()
    await expect(bob_page.locator(".conversation")).to_have_count(0)
    assert errors == []
