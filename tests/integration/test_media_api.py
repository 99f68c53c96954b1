"""Uploads and downloads through the real server: types read from the bytes, limits while
the body streams, thumbnails, who may read what, and the headers of a download."""

from __future__ import annotations

import hashlib
import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from gochat_py.settings import Settings, load_settings
from tests.harness import bearer, register, serve_app, server_environment
from tests.media_files import jpeg_turned, png, png_bomb

MEDIA = "/api/v1/media"
UPLOADED_FIELDS = {
    "id", "content_type", "size", "name", "width", "height", "sha256", "url", "thumbnail_url",
}  # fmt: skip


async def upload(
    api: httpx.AsyncClient,
    user: dict[str, Any],
    data: bytes,
    name: str = "file.bin",
    content_type: str = "application/octet-stream",
) -> httpx.Response:
    return await api.post(
        MEDIA, files={"file": (name, data, content_type)}, headers=bearer(user["tokens"])
    )


async def uploaded(api: httpx.AsyncClient, user: dict[str, Any], data: bytes, **kw: str) -> Any:
    response = await upload(api, user, data, **kw)
    assert response.status_code == 201, response.text
    return response.json()


async def test_an_image_is_stored_with_its_size_hash_and_thumbnail_and_read_back_whole(
    api: httpx.AsyncClient,
) -> None:
    alice = await register(api)
    data = png(64, 48)
    body = await uploaded(api, alice, data, name="photo.png", content_type="image/png")
    assert set(body) == UPLOADED_FIELDS
    assert body["content_type"] == "image/png"
    assert (body["size"], body["name"]) == (len(data), "photo.png")
    assert (body["width"], body["height"]) == (64, 48)
    assert body["sha256"] == hashlib.sha256(data).hexdigest()
    assert body["url"] == f"{MEDIA}/{body['id']}"
    assert body["thumbnail_url"] == f"{MEDIA}/{body['id']}/thumbnail"

    response = await api.get(body["url"], headers=bearer(alice["tokens"]))
    assert response.status_code == 200
    assert response.content == data
    assert response.headers["content-type"] == "image/png"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["etag"] == f'"{body["sha256"]}"'
    assert response.headers["content-disposition"].startswith("inline;")


async def test_a_raw_body_is_an_upload_too_named_by_the_query(api: httpx.AsyncClient) -> None:
    alice = await register(api)
    response = await api.post(
        MEDIA,
        content=b"plain words\n",
        params={"name": "notes.txt"},
        headers={**bearer(alice["tokens"]), "Content-Type": "text/plain"},
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["content_type"], body["name"], body["size"]) == ("text/plain", "notes.txt", 12)
    assert body["thumbnail_url"] is None and body["width"] is None


async def test_a_png_named_pdf_and_sent_as_pdf_is_stored_as_the_png_it_is(
    api: httpx.AsyncClient,
) -> None:
    alice = await register(api)
    body = await uploaded(api, alice, png(), name="report.pdf", content_type="application/pdf")
    assert body["content_type"] == "image/png"
    response = await api.get(body["url"], headers=bearer(alice["tokens"]))
    assert response.headers["content-type"] == "image/png"


async def test_text_sent_as_a_png_is_refused_and_nothing_is_kept(
    api: httpx.AsyncClient, media_dir: Path
) -> None:
    alice = await register(api)
    response = await upload(api, alice, b"not an image at all\n", "cat.png", "image/png")
    assert response.status_code == 415
    assert response.json()["error"]["code"] == "not_an_image"
    assert not [p for p in media_dir.rglob("*") if p.is_file()]


async def test_a_type_off_the_allow_list_is_refused(api: httpx.AsyncClient) -> None:
    alice = await register(api)
    elf = b"\x7fELF\x02\x01\x01" + b"\0" * 200
    response = await upload(api, alice, elf, "tool", "application/octet-stream")
    assert response.status_code == 415
    assert response.json()["error"]["code"] == "unsupported_file_type"


async def test_a_decompression_bomb_is_refused_before_it_is_decoded(
    api: httpx.AsyncClient,
) -> None:
    alice = await register(api)
    bomb = png_bomb()
    assert len(bomb) < 100_000
    response = await upload(api, alice, bomb, "bomb.png", "image/png")
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "image_too_large"


async def test_a_corrupt_image_is_refused(api: httpx.AsyncClient) -> None:
    alice = await register(api)
    response = await upload(api, alice, png()[:60], "cut.png", "image/png")
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_image"


async def test_exif_orientation_gives_the_displayed_size_and_an_upright_thumbnail(
    api: httpx.AsyncClient,
) -> None:
    alice = await register(api)
    body = await uploaded(api, alice, jpeg_turned(800, 400, 6), name="turned.jpg")
    assert body["content_type"] == "image/jpeg"
    assert (body["width"], body["height"]) == (400, 800)
    response = await api.get(body["thumbnail_url"], headers=bearer(alice["tokens"]))
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/webp"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert Image.open(io.BytesIO(response.content)).size == (160, 320)


async def test_a_path_in_the_file_name_is_harmless(api: httpx.AsyncClient, media_dir: Path) -> None:
    alice = await register(api)
    body = await uploaded(api, alice, b"root:x:0:0\n", name="../../etc/passwd")
    assert body["name"] == "passwd"
    stored = [p for p in media_dir.rglob("*") if p.is_file()]
    assert [p.name for p in stored] == [body["sha256"]]
    response = await api.get(body["url"], headers=bearer(alice["tokens"]))
    assert response.content == b"root:x:0:0\n"
    assert response.headers["content-disposition"] == (
        "attachment; filename=\"passwd\"; filename*=UTF-8''passwd"
    )


async def test_a_name_with_quotes_and_line_breaks_cannot_break_the_header(
    api: httpx.AsyncClient,
) -> None:
    alice = await register(api)
    # A raw body: a form's file name arrives with quotes and line breaks percent-encoded.
    sent = await api.post(
        MEDIA,
        content=b"x\n",
        params={"name": 'a"b\r\nSet-Cookie: x=1;é.txt'},
        headers=bearer(alice["tokens"]),
    )
    body = sent.json()
    response = await api.get(body["url"], headers=bearer(alice["tokens"]))
    disposition = response.headers["content-disposition"]
    assert "set-cookie" not in response.headers
    assert disposition.startswith('attachment; filename="a_bSet-Cookie: x=1;_.txt"; ')
    assert disposition.endswith("filename*=UTF-8''a%22bSet-Cookie%3A%20x%3D1%3B%C3%A9.txt")


async def test_svg_is_no_image_and_as_a_file_it_is_text_only_ever_downloaded(
    api: httpx.AsyncClient,
) -> None:
    alice = await register(api)
    svg = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
    refused = await upload(api, alice, svg, name="logo.svg", content_type="image/svg+xml")
    assert refused.status_code == 415
    body = await uploaded(api, alice, svg, name="logo.svg")
    assert (body["content_type"], body["thumbnail_url"]) == ("text/plain", None)
    response = await api.get(body["url"], headers=bearer(alice["tokens"]))
    assert response.headers["content-type"].startswith("text/plain")
    assert response.headers["content-disposition"].startswith("attachment;")
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "sandbox" in response.headers["content-security-policy"]


async def test_range_and_if_none_match_are_answered(api: httpx.AsyncClient) -> None:
    alice = await register(api)
    body = await uploaded(api, alice, b"text " + b"0123456789" * 50, name="n.txt")
    headers = bearer(alice["tokens"])
    part = await api.get(body["url"], headers={**headers, "Range": "bytes=5-14"})
    assert part.status_code == 206
    assert part.content == b"0123456789"
    assert part.headers["content-range"] == f"bytes 5-14/{body['size']}"
    etag = part.headers["etag"]
    again = await api.get(body["url"], headers={**headers, "If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    other = await api.get(body["url"], headers={**headers, "If-None-Match": '"other"'})
    assert other.status_code == 200


async def test_a_stranger_gets_404_for_the_media_and_its_thumbnail(
    api: httpx.AsyncClient,
) -> None:
    alice, mallory = await register(api), await register(api)
    body = await uploaded(api, alice, png(), name="a.png")
    for url in (body["url"], body["thumbnail_url"], f"{MEDIA}/{'0' * 8}-0000-7000-8000-{'0' * 12}"):
        response = await api.get(url, headers=bearer(mallory["tokens"]))
        assert response.status_code == 404, url
        assert response.json()["error"]["code"] == "media_not_found"
        assert b"PNG" not in response.content


async def test_no_token_no_download(api: httpx.AsyncClient) -> None:
    alice = await register(api)
    body = await uploaded(api, alice, png())
    api.cookies.clear()  # register's session cookies would stand in for the token
    assert (await api.get(body["url"])).status_code == 401
    assert (await api.post(MEDIA, files={"file": ("a", b"x")})).status_code == 401


async def test_a_form_without_a_file_field_is_refused(api: httpx.AsyncClient) -> None:
    alice = await register(api)
    response = await api.post(
        MEDIA, files={"other": ("a.txt", b"x")}, headers=bearer(alice["tokens"])
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "missing_file"


async def test_an_empty_file_is_refused(api: httpx.AsyncClient) -> None:
    alice = await register(api)
    response = await upload(api, alice, b"", "empty.txt")
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "empty_file"


@pytest.fixture
def small_limits(database_url: str, redis_url: str, media_dir: Path) -> Settings:
    return load_settings(
        server_environment(
            database_url,
            redis_url,
            MEDIA_DIR=str(media_dir),
            MEDIA_MAX_BYTES="100000",
            MEDIA_QUOTA_BYTES="250000",
            MEDIA_UPLOAD_RATE="6/1m",
        )
    )


@pytest.fixture
async def limited(small_limits: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with serve_app(small_limits) as url, httpx.AsyncClient(base_url=url) as client:
        yield client


async def test_a_declared_length_past_the_limit_is_refused_before_the_body_is_read(
    limited: httpx.AsyncClient, media_dir: Path
) -> None:
    alice = await register(limited)
    response = await limited.post(
        MEDIA,
        content=b"a" * 100_001,
        headers={**bearer(alice["tokens"]), "Content-Type": "text/plain"},
    )
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "file_too_large"


async def test_a_streamed_body_is_refused_once_it_passes_the_limit(
    limited: httpx.AsyncClient, media_dir: Path
) -> None:
    alice = await register(limited)
    sent = 0

    async def body() -> AsyncIterator[bytes]:
        nonlocal sent
        for _ in range(10):
            sent += 1
            yield b"a" * 60_000

    response = await limited.post(
        MEDIA, content=body(), headers={**bearer(alice["tokens"]), "Content-Type": "text/plain"}
    )
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "file_too_large"
    assert not [p for p in media_dir.rglob("*") if p.is_file()]


async def test_uploads_past_the_quota_are_refused_with_507(limited: httpx.AsyncClient) -> None:
    alice = await register(limited)
    for i in range(2):
        await uploaded(limited, alice, f"{i}".encode() * 90_000, name="big.txt")
    response = await upload(limited, alice, b"z" * 90_000, "third.txt")
    assert response.status_code == 507
    assert response.json()["error"]["code"] == "media_quota_exceeded"
    # Someone else's quota is their own.
    bob = await register(limited)
    await uploaded(limited, bob, b"z" * 90_000, name="bob.txt")


async def test_uploads_are_rate_limited(limited: httpx.AsyncClient) -> None:
    alice = await register(limited)
    for i in range(6):
        await uploaded(limited, alice, f"note {i}".encode(), name="n.txt")
    response = await upload(limited, alice, b"one more", "n.txt")
    assert response.status_code == 429
    assert float(response.headers["retry-after"]) > 0
