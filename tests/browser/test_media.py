"""Media in the web client, in Chromium: in a group, Alice attaches an image with a caption
and a PDF; Bob sees the thumbnail live, opens the whole image and downloads the file; a
file the server refuses is said in words; Alice sets her picture and the group's, which Bob
sees. With the S3 store, images load from the bucket the page's policy names."""

from __future__ import annotations

import io
from pathlib import Path

import httpx
from PIL import Image, ImageDraw
from playwright.async_api import BrowserContext, Locator, Page, expect

from gochat_py.settings import load_settings
from tests.browser.conftest import Screenshot
from tests.browser.test_group_lifecycle import open_group
from tests.browser.test_webclient import log_in_in_ui, open_client
from tests.harness import bearer, create_direct, create_group, register, serve_app, unique_name
from tests.integration.test_media_api import uploaded
from tests.integration.test_media_stores import s3_environment
from tests.media_files import png

# The smallest PDF a reader opens: one empty page.
PDF = (
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
    b"2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
    b"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 612 792]>>endobj\n"
    b"trailer<</Root 1 0 R>>\n%%EOF\n"
)


def picture(width: int, height: int, hue: tuple[int, int, int]) -> bytes:
    """A PNG that looks like something in a screenshot: a sky, a sun, a hill."""
    image = Image.new("RGB", (width, height), (150, 200, 240))
    draw = ImageDraw.Draw(image)
    draw.ellipse((width * 0.65, height * 0.12, width * 0.85, height * 0.44), fill=(250, 200, 60))
    draw.ellipse((-width * 0.2, height * 0.6, width * 0.9, height * 1.6), fill=hue)
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


COMPOSER_FILE = ".composer [data-action=attach-file]"
# A file handed to the page as a drop on `target` or a paste into it would hand it.
HAND_OVER = """([how, target, name, bytes]) => {
    const files = new DataTransfer();
    files.items.add(new File([new Uint8Array(bytes)], name, {type: "image/png"}));
    const node = document.querySelector(target);
    const event = {bubbles: true, cancelable: true};
    if (how === "paste") {
        node.dispatchEvent(new ClipboardEvent("paste", {...event, clipboardData: files}));
    } else {
        for (const type of ["dragover", "drop"])
            node.dispatchEvent(new DragEvent(type, {...event, dataTransfer: files}));
    }
}"""


async def choose(page: Page, file_input: str, name: str, mime_type: str, data: bytes) -> None:
    """Pick a file in the file input `file_input`, as the file chooser would."""
    await page.set_input_files(
        file_input, files=[{"name": name, "mimeType": mime_type, "buffer": data}]
    )


async def natural_width(image: Locator) -> int:
    """The width of the image as decoded: 0 when it did not load (or CSP refused it)."""
    await expect(image).to_be_visible()
    return int(
        await image.evaluate(
            "img => img.complete ? img.naturalWidth"
            " : new Promise(r => img.addEventListener('load', () => r(img.naturalWidth),"
            " {once: true}))"
        )
    )


async def test_images_and_files_travel_live_open_and_download_and_an_avatar_shows(
    base_url: str, contexts: list[BrowserContext], screenshot: Screenshot
) -> None:
    alice_name, bob_name = unique_name("alice"), unique_name("bob")
    errors: list[str] = []
    async with httpx.AsyncClient(base_url=base_url) as client:
        alice, bob = await register(client, alice_name), await register(client, bob_name)
        group = await create_group(client, alice["tokens"], "Hikers", [bob["user"]["id"]])
    alice_page = await open_group(contexts[0], base_url, alice_name, errors, group["id"])
    bob_page = await open_group(contexts[1], base_url, bob_name, errors, group["id"])

    # Alice attaches a photo: it uploads, shows its thumbnail above the field, and goes
    # with her caption.
    photo = picture(960, 600, (70, 150, 80))
    await choose(alice_page, COMPOSER_FILE, "hills.png", "image/png", photo)
    bar = alice_page.locator(".attachment-bar")
    await expect(bar.locator(".attachment-body")).to_have_attribute("data-state", "ready")
    assert await natural_width(bar.locator("img.attachment-preview")) == 320
    await alice_page.fill(".composer-input", "The view from the top")
    await alice_page.press(".composer-input", "Enter")
    await expect(bar).to_be_hidden()

    # Bob sees it live: the thumbnail (320 px wide), the caption; a click shows it whole.
    received = bob_page.locator(".message.theirs").filter(has=bob_page.locator(".media-image"))
    await expect(received.locator(".content")).to_have_text("The view from the top")
    assert await natural_width(received.locator(".media-image img")) == 320
    await expect(bob_page.locator(".preview")).to_contain_text("Photo · The view from the top")
    await screenshot(bob_page, "bob-image-received")
    await received.locator("[data-action=open-image]").click()
    whole = bob_page.locator("dialog.lightbox img")
    assert await natural_width(whole) == 960
    await screenshot(bob_page, "bob-lightbox")
    await bob_page.keyboard.press("Escape")
    await expect(bob_page.locator("dialog.lightbox")).to_have_count(0)

    # A PDF, sent with Enter before its upload is done: it goes once uploaded.
    await choose(alice_page, COMPOSER_FILE, "minutes.pdf", "application/pdf", PDF)
    await alice_page.press(".composer-input", "Enter")
    card = bob_page.locator(".message.theirs .media-file")
    await expect(card.locator(".media-file-name")).to_have_text("minutes.pdf")
    await expect(card.locator(".media-file-size")).to_have_text(f"{len(PDF)} B")
    async with bob_page.expect_download() as downloading:
        await card.click()
    download = await downloading.value
    assert download.suggested_filename == "minutes.pdf"
    path = await download.path()
    assert path.read_bytes() == PDF
    await screenshot(bob_page, "bob-file-received")

    # A file the server refuses (a program) is said in words, and nothing is sent.
    await choose(
        alice_page,
        COMPOSER_FILE,
        "setup.exe",
        "application/octet-stream",
        b"MZ\x90\x00" + bytes(64),
    )
    refused = alice_page.locator(".attachment-bar .attachment-error")
    await expect(refused).to_have_text(
        "This kind of file can't be sent. Images, PDF, text, audio, video and zip files can."
    )
    await screenshot(alice_page, "alice-refused-file")
    await alice_page.click(".attachment-bar [data-action=remove-attachment]")
    await expect(alice_page.locator(".message.mine")).to_have_count(2)

    # An image dropped on the conversation is attached as the paperclip attaches it; one
    # pasted into the field too, and it goes.
    for how, target, name in (
        ("drop", ".messages", "dropped.png"),
        ("paste", ".composer-input", "pasted.png"),
    ):
        await alice_page.evaluate(HAND_OVER, [how, target, name, list(png(40, 30))])
        await expect(bar.locator(".attachment-name")).to_have_text(name)
        await expect(bar.locator(".attachment-body")).to_have_attribute("data-state", "ready")
    await alice_page.press(".composer-input", "Enter")
    await expect(
        bob_page.locator(".message.theirs .media-image img[alt='pasted.png']")
    ).to_be_visible()
    await expect(alice_page.locator(".message.mine")).to_have_count(3)

    # Alice sets her picture in her profile and the group's in its info panel; they replace
    # the initials on her screen and, once his list is read again, on Bob's.
    await alice_page.click("[data-action=profile]")
    me = picture(400, 400, (200, 90, 60))
    await choose(alice_page, "[data-action=change-avatar-file]", "me.png", "image/png", me)
    assert await natural_width(alice_page.locator(".profile-picture img.avatar-picture")) == 320
    await screenshot(alice_page, "alice-profile-picture")
    await alice_page.keyboard.press("Escape")
    assert await natural_width(alice_page.locator(".me-avatar img.avatar-picture")) == 320
    await alice_page.click("[data-action=info]")
    ours = picture(500, 300, (60, 60, 60))
    await choose(alice_page, "[data-action=change-group-avatar-file]", "g.png", "image/png", ours)
    assert await natural_width(alice_page.locator(".group-card img.avatar-picture")) == 320
    await screenshot(alice_page, "alice-group-picture")
    await bob_page.reload()
    listed = bob_page.locator(f".conversation[data-id='{group['id']}'] img.avatar-picture")
    assert await natural_width(listed) == 320
    await bob_page.click(f".conversation[data-id='{group['id']}']")
    assert await natural_width(bob_page.locator(".chat-avatar img.avatar-picture")) == 320
    beside = bob_page.locator(".message.theirs .avatar img.avatar-picture").first
    assert await natural_width(beside) == 320
    # Bob, a plain member, may not change the group's picture.
    await bob_page.click("[data-action=info]")
    await expect(bob_page.locator(".group-info .member img.avatar-picture")).to_have_count(1)
    await expect(bob_page.locator(".group-info [data-action=change-group-avatar]")).to_have_count(0)
    await screenshot(bob_page, "bob-sees-the-pictures")
    assert errors == []


async def test_with_the_s3_store_images_load_from_the_bucket_the_page_allows(
    database_url: str,
    redis_url: str,
    media_dir: Path,
    s3_endpoint: str,
    s3_bucket: str,
    contexts: list[BrowserContext],
) -> None:
    """Downloads redirect to signed URLs of the bucket: the page's CSP names its origin,
    or every thumbnail and avatar would be refused."""
    environment = s3_environment(database_url, redis_url, media_dir, s3_endpoint, s3_bucket)
    errors: list[str] = []
    async with (
        serve_app(load_settings(environment)) as base_url,
        httpx.AsyncClient(base_url=base_url) as client,
    ):
        alice_name = unique_name("alice")
        alice, bob = await register(client, alice_name), await register(client)
        conversation = await create_direct(client, alice["tokens"], bob["user"]["id"])
        image = await uploaded(client, alice, picture(640, 400, (90, 90, 200)), name="sea.png")
        sent = await client.post(
            f"/api/v1/conversations/{conversation['id']}/messages",
            json={"type": "image", "media_id": image["id"]},
            headers=bearer(alice["tokens"]),
        )
        assert sent.status_code == 201, sent.text
        redirect = await client.get(image["thumbnail_url"], headers=bearer(alice["tokens"]))
        assert redirect.status_code == 307
        assert redirect.headers["location"].startswith(f"{s3_endpoint}/")
        page = await open_client(contexts[0], base_url, errors)
        await log_in_in_ui(page, alice_name)
        await page.click(f".conversation[data-id='{conversation['id']}']")
        assert await natural_width(page.locator(".media-image img")) == 320
    assert errors == []
