"""Avatars: a user's and a group's picture is an image its setter uploaded; anyone may read
it; profiles and conversations show its URL."""

from __future__ import annotations

import asyncpg
import httpx

from tests.harness import bearer, create_direct, create_group, register
from tests.integration.test_media_api import uploaded
from tests.media_files import png

ME = "/api/v1/users/me"


async def test_a_users_avatar_is_shown_in_profiles_and_readable_by_anyone(
    api: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    alice, stranger = await register(api), await register(api)
    picture = await uploaded(api, alice, png(), name="me.png")
    response = await api.patch(
        ME, json={"avatar_media_id": picture["id"]}, headers=bearer(alice["tokens"])
    )
    assert response.status_code == 200, response.text
    assert response.json()["avatar_url"] == picture["url"]
    public = await api.get(
        f"/api/v1/users/{alice['user']['id']}", headers=bearer(stranger["tokens"])
    )
    assert public.json()["avatar_url"] == picture["url"]
    for url in (picture["url"], picture["thumbnail_url"]):
        assert (await api.get(url, headers=bearer(stranger["tokens"]))).status_code == 200
    assert await db.fetchval("SELECT attached_at FROM media WHERE id = $1", picture["id"])

    cleared = await api.patch(ME, json={"avatar_media_id": None}, headers=bearer(alice["tokens"]))
    assert cleared.json()["avatar_url"] is None
    assert (await api.get(picture["url"], headers=bearer(stranger["tokens"]))).status_code == 404
    # No longer in use: the cleanup may take it once its grace period is over.
    assert await db.fetchval("SELECT attached_at FROM media WHERE id = $1", picture["id"]) is None


async def test_an_avatar_must_be_an_image_of_your_own(api: httpx.AsyncClient) -> None:
    alice, bob = await register(api), await register(api)
    theirs = await uploaded(api, bob, png(), name="bob.png")
    text = await uploaded(api, alice, b"words\n", name="a.txt")
    for media_id, code in ((theirs["id"], "media_not_found"), (text["id"], "not_an_image")):
        response = await api.patch(
            ME, json={"avatar_media_id": media_id}, headers=bearer(alice["tokens"])
        )
        assert response.status_code == 422
        assert response.json()["error"]["code"] == code
    profile = await api.get(ME, headers=bearer(alice["tokens"]))
    assert profile.json()["avatar_url"] is None


async def test_a_groups_avatar_is_set_by_a_manager_and_shown_to_its_members(
    api: httpx.AsyncClient,
) -> None:
    owner, member, stranger = await register(api), await register(api), await register(api)
    group = await create_group(api, owner["tokens"], "team", [member["user"]["id"]])
    url = f"/api/v1/conversations/{group['id']}"
    theirs = await uploaded(api, member, png(), name="m.png")
    refused = await api.patch(
        url, json={"avatar_media_id": theirs["id"]}, headers=bearer(member["tokens"])
    )
    assert refused.status_code == 403
    picture = await uploaded(api, owner, png(10, 10), name="team.png")
    changed = await api.patch(
        url, json={"avatar_media_id": picture["id"]}, headers=bearer(owner["tokens"])
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["conversation"]["avatar_url"] == picture["url"]
    seen = await api.get(url, headers=bearer(member["tokens"]))
    assert seen.json()["conversation"]["avatar_url"] == picture["url"]
    listed = await api.get("/api/v1/conversations", headers=bearer(member["tokens"]))
    [item] = listed.json()["conversations"]
    assert item["conversation"]["avatar_url"] == picture["url"]
    # A stranger learns nothing of the group, yet may read an avatar as anyone may.
    assert (await api.get(url, headers=bearer(stranger["tokens"]))).status_code == 404
    assert (await api.get(picture["url"], headers=bearer(stranger["tokens"]))).status_code == 200
    stranger_patch = await api.patch(url, json={"name": "x"}, headers=bearer(stranger["tokens"]))
    assert stranger_patch.status_code == 404


async def test_a_members_avatar_is_shown_with_them_in_their_conversations(
    api: httpx.AsyncClient,
) -> None:
    alice, bob = await register(api), await register(api)
    conversation = await create_direct(api, alice["tokens"], bob["user"]["id"])
    picture = await uploaded(api, alice, png(), name="me.png")
    response = await api.patch(
        ME, json={"avatar_media_id": picture["id"]}, headers=bearer(alice["tokens"])
    )
    assert response.status_code == 200, response.text
    seen = await api.get(
        f"/api/v1/conversations/{conversation['id']}", headers=bearer(bob["tokens"])
    )
    avatars = {p["id"]: p["avatar_url"] for p in seen.json()["participants"]}
    assert avatars == {alice["user"]["id"]: picture["url"], bob["user"]["id"]: None}
