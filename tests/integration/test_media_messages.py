"""Image and file messages: only the uploader posts a media, members receive it live and in
history, and may read it while they are members; the worker marks it attached."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import asyncpg
import httpx

from gochat_py.ids import uuid7
from gochat_py.settings import load_settings
from tests.harness import (
    bearer,
    connect,
    create_direct,
    create_group,
    is_message,
    next_frame,
    poll_until,
    register,
    send_frame,
    serve_app,
    server_environment,
    ws_url,
)
from tests.integration.test_media_api import uploaded
from tests.media_files import png
from tests.stream_traffic import running_consumer

MEDIA_FIELDS = {
    "id", "content_type", "size", "name", "width", "height", "url", "thumbnail_url",
}  # fmt: skip


def messages_url(conversation_id: str) -> str:
    return f"/api/v1/conversations/{conversation_id}/messages"


async def send(
    api: httpx.AsyncClient, user: dict[str, Any], conversation_id: str, **body: Any
) -> httpx.Response:
    return await api.post(messages_url(conversation_id), json=body, headers=bearer(user["tokens"]))


async def history(api: httpx.AsyncClient, user: dict[str, Any], conversation_id: str) -> Any:
    response = await api.get(messages_url(conversation_id), headers=bearer(user["tokens"]))
    assert response.status_code == 200, response.text
    return response.json()["messages"]


async def test_an_image_message_reaches_members_live_and_in_history_with_its_media(
    api: httpx.AsyncClient,
) -> None:
    alice, bob = await register(api), await register(api)
    conversation = (await create_direct(api, alice["tokens"], bob["user"]["id"]))["id"]
    image = await uploaded(api, alice, png(30, 20), name="cat.png")
    async with connect(ws_url(api, bob["tokens"]["access_token"])) as socket:
        response = await send(
            api, alice, conversation, type="image", media_id=image["id"], content="my cat"
        )
        assert response.status_code == 201, response.text
        frame = await next_frame(socket, is_message)
    assert (frame["type"], frame["content"]) == ("image", "my cat")
    assert set(frame["media"]) == MEDIA_FIELDS
    assert frame["media"]["id"] == image["id"]
    assert (frame["media"]["width"], frame["media"]["height"]) == (30, 20)
    assert frame["media"]["thumbnail_url"] == image["thumbnail_url"]
    [stored] = await history(api, bob, conversation)
    assert stored["media"] == frame["media"]
    # A member reads what was posted to them.
    for url in (image["url"], image["thumbnail_url"]):
        assert (await api.get(url, headers=bearer(bob["tokens"]))).status_code == 200


async def test_a_file_message_over_the_socket_may_have_no_caption(api: httpx.AsyncClient) -> None:
    alice, bob = await register(api), await register(api)
    conversation = (await create_direct(api, alice["tokens"], bob["user"]["id"]))["id"]
    document = await uploaded(api, alice, b"minutes of the meeting\n", name="minutes.txt")
    async with connect(ws_url(api, alice["tokens"]["access_token"])) as socket:
        await send_frame(socket, conversation_id=conversation, type="file", media_id=document["id"])
        frame = await next_frame(socket, is_message)
    assert (frame["type"], frame["content"]) == ("file", "")
    assert frame["media"]["content_type"] == "text/plain"
    assert frame["media"]["thumbnail_url"] is None


async def test_only_the_uploader_may_post_a_media(api: httpx.AsyncClient) -> None:
    alice, bob = await register(api), await register(api)
    conversation = (await create_direct(api, alice["tokens"], bob["user"]["id"]))["id"]
    image = await uploaded(api, alice, png(), name="a.png")
    response = await send(api, bob, conversation, type="image", media_id=image["id"])
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "media_not_found"
    assert await history(api, bob, conversation) == []
    # Bob was not given access by trying.
    assert (await api.get(image["url"], headers=bearer(bob["tokens"]))).status_code == 404


async def test_the_kind_of_message_and_its_media_must_agree(api: httpx.AsyncClient) -> None:
    alice, bob = await register(api), await register(api)
    conversation = (await create_direct(api, alice["tokens"], bob["user"]["id"]))["id"]
    document = await uploaded(api, alice, b"plain\n", name="a.txt")
    cases = [
        ({"type": "image", "media_id": document["id"]}, "not_an_image"),
        ({"type": "file"}, "missing_media"),
        ({"content": "hi", "media_id": document["id"]}, "unexpected_media"),
        ({"type": "text"}, "validation_failed"),
    ]
    for body, code in cases:
        response = await send(api, alice, conversation, **body)
        assert response.status_code == 422, body
        assert response.json()["error"]["code"] == code, response.text


async def test_a_member_who_left_gets_404_for_the_media_and_its_thumbnail(
    api: httpx.AsyncClient,
) -> None:
    alice, bob, carol = await register(api), await register(api), await register(api)
    group = await create_group(
        api, alice["tokens"], "pictures", [bob["user"]["id"], carol["user"]["id"]]
    )
    image = await uploaded(api, alice, png(), name="p.png")
    response = await send(api, alice, group["id"], type="image", media_id=image["id"])
    assert response.status_code == 201, response.text
    for url in (image["url"], image["thumbnail_url"]):
        assert (await api.get(url, headers=bearer(bob["tokens"]))).status_code == 200
    left = await api.delete(
        f"/api/v1/conversations/{group['id']}/members/{bob['user']['id']}",
        headers=bearer(bob["tokens"]),
    )
    assert left.status_code == 204
    for url in (image["url"], image["thumbnail_url"]):
        response = await api.get(url, headers=bearer(bob["tokens"]))
        assert response.status_code == 404, url
        assert response.json()["error"]["code"] == "media_not_found"
    assert (await api.get(image["url"], headers=bearer(carol["tokens"]))).status_code == 200


async def test_the_worker_stores_the_media_and_marks_it_attached_and_a_delete_detaches_it(
    api: httpx.AsyncClient, db: asyncpg.Connection, redis_url: str, database_url: str
) -> None:
    alice, bob = await register(api), await register(api)
    conversation = (await create_direct(api, alice["tokens"], bob["user"]["id"]))["id"]
    image = await uploaded(api, alice, png(), name="a.png")
    first = (await send(api, alice, conversation, type="image", media_id=image["id"])).json()
    second = (await send(api, alice, conversation, type="image", media_id=image["id"])).json()

    async def attached() -> bool:
        value = await db.fetchval("SELECT attached_at FROM media WHERE id = $1", image["id"])
        return value is not None

    async with running_consumer(redis_url, database_url):
        await poll_until(attached, what="the media to be marked attached")
        stored = await db.fetchval("SELECT media FROM messages WHERE id = $1", first["id"])
        assert stored is not None
        # One of two messages deleted: the media stays attached and readable.
        deleted = await api.delete(
            f"{messages_url(conversation)}/{first['id']}", headers=bearer(alice["tokens"])
        )
        assert deleted.status_code == 204

        async def post_dropped() -> bool:
            return not await db.fetchval(
                "SELECT count(*) FROM media_posts WHERE message_id = $1", first["id"]
            )

        await poll_until(post_dropped, what="the deleted message's post to go")
        assert await attached()
        assert (await api.get(image["url"], headers=bearer(bob["tokens"]))).status_code == 200
        deleted = await api.delete(
            f"{messages_url(conversation)}/{second['id']}", headers=bearer(alice["tokens"])
        )
        assert deleted.status_code == 204

        async def detached() -> bool:
            return not await attached()

        await poll_until(detached, what="the media to be unattached")
    assert (await api.get(image["url"], headers=bearer(bob["tokens"]))).status_code == 404
    [tomb, _] = await history(api, bob, conversation)
    assert tomb["deleted"] and "media" not in tomb


async def test_a_stranger_cannot_post_into_a_conversation_nor_read_what_is_there(
    api: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    alice, bob, mallory = await register(api), await register(api), await register(api)
    conversation = (await create_direct(api, alice["tokens"], bob["user"]["id"]))["id"]
    image = await uploaded(api, alice, png(), name="private.png")
    sent = await send(api, alice, conversation, type="image", media_id=image["id"])
    assert sent.status_code == 201
    own = await uploaded(api, mallory, png(3, 3), name="spam.png")
    refused = await send(api, mallory, conversation, type="image", media_id=own["id"])
    assert refused.status_code == 404
    assert refused.json()["error"]["code"] == "conversation_not_found"
    assert not await db.fetchval("SELECT count(*) FROM media_posts WHERE media_id = $1", own["id"])
    for url in (image["url"], image["thumbnail_url"]):
        response = await api.get(url, headers=bearer(mallory["tokens"]))
        assert response.status_code == 404
        assert "private" not in response.text


async def test_a_send_refused_as_backlogged_leaves_no_post_and_the_media_unreadable(
    database_url: str, redis_url: str, media_dir: Path, db: asyncpg.Connection
) -> None:
    settings = load_settings(
        server_environment(database_url, redis_url, MEDIA_DIR=str(media_dir), RECENT_CACHE_MAX="1")
    )
    async with serve_app(settings) as base_url, httpx.AsyncClient(base_url=base_url) as api:
        alice, bob = await register(api), await register(api)
        conversation = (await create_direct(api, alice["tokens"], bob["user"]["id"]))["id"]
        assert (await send(api, alice, conversation, content="fills the cache")).status_code == 201
        image = await uploaded(api, alice, png(), name="never-sent.png")
        refused = await send(api, alice, conversation, type="image", media_id=image["id"])
        assert refused.status_code == 503
        assert refused.json()["error"]["code"] == "backlogged"
        assert not await db.fetchval(
            "SELECT count(*) FROM media_posts WHERE media_id = $1", image["id"]
        )
        for url in (image["url"], image["thumbnail_url"]):
            assert (await api.get(url, headers=bearer(bob["tokens"]))).status_code == 404


async def test_a_send_refused_after_its_media_was_posted_leaves_no_post(
    api: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    """A refusal that comes once the media is posted (not an image, an unknown reply)
    leaves the media where it was: the conversation's members cannot read it."""
    alice, bob = await register(api), await register(api)
    conversation = (await create_direct(api, alice["tokens"], bob["user"]["id"]))["id"]
    document = await uploaded(api, alice, b"minutes of the meeting\n", name="minutes.txt")
    picture = await uploaded(api, alice, png(), name="holiday.png")
    refusals = [
        ({"type": "image", "media_id": document["id"]}, "not_an_image", document),
        (
            {"type": "image", "media_id": picture["id"], "reply_to": str(uuid7())},
            "reply_not_found",
            picture,
        ),
    ]
    for body, code, media in refusals:
        response = await send(api, alice, conversation, **body)
        assert response.status_code in (404, 422), response.text
        assert response.json()["error"]["code"] == code, response.text
        assert not await db.fetchval(
            "SELECT count(*) FROM media_posts WHERE media_id = $1", media["id"]
        )
        assert (await api.get(media["url"], headers=bearer(bob["tokens"]))).status_code == 404


async def test_a_resend_with_the_same_client_msg_id_leaves_one_post(
    api: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    alice, bob = await register(api), await register(api)
    conversation = (await create_direct(api, alice["tokens"], bob["user"]["id"]))["id"]
    image = await uploaded(api, alice, png(), name="twice.png")
    body = {"type": "image", "media_id": image["id"], "client_msg_id": "once"}
    first = await send(api, alice, conversation, **body)
    again = await send(api, alice, conversation, **body)
    assert first.status_code == 201 and again.status_code in (200, 201)
    assert again.json()["id"] == first.json()["id"]
    posts = await db.fetch("SELECT message_id FROM media_posts WHERE media_id = $1", image["id"])
    assert [str(row["message_id"]) for row in posts] == [first.json()["id"]]


async def test_the_worker_posts_again_a_stored_message_whose_post_was_undone(
    api: httpx.AsyncClient, db: asyncpg.Connection, redis_url: str, database_url: str
) -> None:
    """A send whose answer was lost in an outage is undone by the server, yet may have
    reached the stream: once stored, its media is readable by the members again."""
    alice, bob = await register(api), await register(api)
    conversation = (await create_direct(api, alice["tokens"], bob["user"]["id"]))["id"]
    image = await uploaded(api, alice, png(), name="lost-answer.png")
    sent = (await send(api, alice, conversation, type="image", media_id=image["id"])).json()
    await db.execute("DELETE FROM media_posts WHERE message_id = $1", sent["id"])
    assert (await api.get(image["url"], headers=bearer(bob["tokens"]))).status_code == 404

    async def posted() -> bool:
        return bool(
            await db.fetchval("SELECT count(*) FROM media_posts WHERE message_id = $1", sent["id"])
        )

    async with running_consumer(redis_url, database_url):
        await poll_until(posted, what="the stored message's post written again")
    assert (await api.get(image["url"], headers=bearer(bob["tokens"]))).status_code == 200
