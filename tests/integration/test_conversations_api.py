from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from tests.harness import bearer, create_direct, create_group, register

CONVERSATIONS = "/api/v1/conversations"


async def test_a_direct_conversation_is_the_same_whoever_starts_it(api: httpx.AsyncClient) -> None:
    alice, bob = await register(api), await register(api)
    first = await api.post(
        CONVERSATIONS, json={"participant_id": bob["user"]["id"]}, headers=bearer(alice["tokens"])
    )
    again = await api.post(
        CONVERSATIONS, json={"participant_id": bob["user"]["id"]}, headers=bearer(alice["tokens"])
    )
    reverse = await api.post(
        CONVERSATIONS, json={"participant_id": alice["user"]["id"]}, headers=bearer(bob["tokens"])
    )
    assert (first.status_code, again.status_code, reverse.status_code) == (201, 200, 200)
    assert first.json()["id"] == again.json()["id"] == reverse.json()["id"]
    body = first.json()
    assert body["type"] == "direct"
    assert body["name"] is None
    assert {p["id"] for p in body["participants"]} == {alice["user"]["id"], bob["user"]["id"]}
    assert body["last_message"] is None and body["unread_count"] == 0 and body["last_seq"] == 0


async def test_a_group_includes_its_creator(api: httpx.AsyncClient) -> None:
    alice, bob, carol = await register(api), await register(api), await register(api)
    group = await create_group(
        api, alice["tokens"], "Team", [bob["user"]["id"], carol["user"]["id"]]
    )
    assert group["type"] == "group" and group["name"] == "Team"
    roles = {p["id"]: p["role"] for p in group["participants"]}
    assert roles == {alice["user"]["id"]: "owner", bob["user"]["id"]: "member",
                     carol["user"]["id"]: "member"}  # fmt: skip


async def test_talking_to_yourself_is_refused(api: httpx.AsyncClient) -> None:
    alice = await register(api)
    response = await api.post(
        CONVERSATIONS, json={"participant_id": alice["user"]["id"]}, headers=bearer(alice["tokens"])
    )
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "cannot_message_self"


async def test_unknown_users_are_named_in_the_error(api: httpx.AsyncClient) -> None:
    alice, bob = await register(api), await register(api)
    ghost = str(uuid.uuid4())
    direct = await api.post(
        CONVERSATIONS, json={"participant_id": ghost}, headers=bearer(alice["tokens"])
    )
    group = await api.post(
        CONVERSATIONS,
        json={"name": "g", "participant_ids": [bob["user"]["id"], ghost]},
        headers=bearer(alice["tokens"]),
    )
    for response in (direct, group):
        assert response.status_code == 422
        assert response.json()["error"]["code"] == "unknown_users"
        assert ghost in response.json()["error"]["message"]


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"name": "", "participant_ids": ["{bob}"]}, "validation_failed"),
        ({"name": "   ", "participant_ids": ["{bob}"]}, "invalid_name"),
        ({"name": "x" * 101, "participant_ids": ["{bob}"]}, "validation_failed"),
        # PostgreSQL's text cannot hold U+0000: the insert failed with a 500.
        ({"name": "nul \u0000", "participant_ids": ["{bob}"]}, "validation_failed"),
        ({"name": "dupes", "participant_ids": ["{bob}", "{bob}"]}, "duplicate_participants"),
        ({"name": "alone", "participant_ids": []}, "no_participants"),
        ({"name": "no ids"}, "invalid_conversation"),
        ({"participant_id": "{bob}", "name": "both"}, "invalid_conversation"),
        ({}, "invalid_conversation"),
        ({"participant_id": "not-a-uuid"}, "validation_failed"),
        ({"name": "g", "participant_ids": "{bob}"}, "validation_failed"),
    ],
)
async def test_bad_create_requests_get_a_clear_422(
    api: httpx.AsyncClient, body: dict[str, Any], code: str
) -> None:
    alice, bob = await register(api), await register(api)
    filled = {
        k: [x.format(bob=bob["user"]["id"]) for x in v] if isinstance(v, list)
        else v.format(bob=bob["user"]["id"]) if isinstance(v, str) else v
        for k, v in body.items()
    }  # fmt: skip
    response = await api.post(CONVERSATIONS, json=filled, headers=bearer(alice["tokens"]))
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == code


async def test_creating_needs_a_token(api: httpx.AsyncClient) -> None:
    response = await api.post(CONVERSATIONS, json={"participant_id": str(uuid.uuid4())})
    assert response.status_code == 401


async def test_a_non_member_gets_404_for_details_and_messages(api: httpx.AsyncClient) -> None:
    alice, bob, mallory = await register(api), await register(api), await register(api)
    conversation = await create_direct(api, alice["tokens"], bob["user"]["id"])
    for path in (
        f"{CONVERSATIONS}/{conversation['id']}",
        f"{CONVERSATIONS}/{conversation['id']}/messages",
    ):
        response = await api.get(path, headers=bearer(mallory["tokens"]))
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "conversation_not_found"
    mark = await api.post(
        f"{CONVERSATIONS}/{conversation['id']}/read",
        json={"seq": 1},
        headers=bearer(mallory["tokens"]),
    )
    assert mark.status_code == 404
    listed = await api.get(CONVERSATIONS, headers=bearer(mallory["tokens"]))
    assert listed.json()["conversations"] == []


async def test_an_unknown_or_malformed_conversation_id_is_404(api: httpx.AsyncClient) -> None:
    alice = await register(api)
    for path in (f"{CONVERSATIONS}/{uuid.uuid4()}", f"{CONVERSATIONS}/not-a-uuid"):
        assert (await api.get(path, headers=bearer(alice["tokens"]))).status_code == 404


async def test_the_list_is_paged_by_cursor_without_repeats(api: httpx.AsyncClient) -> None:
    alice = await register(api)
    created = set()
    for _ in range(7):
        other = await register(api)
        created.add((await create_direct(api, alice["tokens"], other["user"]["id"]))["id"])
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": "3"} | ({"cursor": cursor} if cursor else {})
        page = (await api.get(CONVERSATIONS, params=params, headers=bearer(alice["tokens"]))).json()
        seen += [c["id"] for c in page["conversations"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == 7 and set(seen) == created


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"limit": "0"}, "invalid_limit"),
        ({"limit": "101"}, "invalid_limit"),
        ({"limit": "x"}, "invalid_limit"),
        ({"limit": "\u00b2"}, "invalid_limit"),
        ({"cursor": "garbage!!"}, "invalid_cursor"),
    ],
)
async def test_bad_list_parameters_are_400_with_their_code(
    api: httpx.AsyncClient, params: dict[str, str], code: str
) -> None:
    alice = await register(api)
    response = await api.get(CONVERSATIONS, params=params, headers=bearer(alice["tokens"]))
    assert (response.status_code, response.json()["error"]["code"]) == (400, code), response.text


async def test_the_read_mark_only_moves_forward(api: httpx.AsyncClient) -> None:
    alice, bob = await register(api), await register(api)
    conversation = await create_direct(api, alice["tokens"], bob["user"]["id"])
    path = f"{CONVERSATIONS}/{conversation['id']}/read"
    first = await api.post(path, json={"seq": 5}, headers=bearer(bob["tokens"]))
    back = await api.post(path, json={"seq": 2}, headers=bearer(bob["tokens"]))
    assert first.json()["last_read_seq"] == 5 and back.json()["last_read_seq"] == 5
    bad = await api.post(path, json={"seq": -1}, headers=bearer(bob["tokens"]))
    assert bad.status_code == 422
    # Past PostgreSQL's bigint: refused as a bad field, where it used to fail the query (500).
    huge = await api.post(path, json={"seq": 2**63}, headers=bearer(bob["tokens"]))
    assert (huge.status_code, huge.json()["error"]["field"]) == (422, "seq")


async def test_the_owner_adds_and_removes_members_and_others_may_not(
    api: httpx.AsyncClient,
) -> None:
    owner, bob, carol, dave = [await register(api) for _ in range(4)]
    group = await create_group(api, owner["tokens"], "g", [bob["user"]["id"]])
    members = f"{CONVERSATIONS}/{group['id']}/members"
    refused = await api.post(members, json={"user_ids": [carol["user"]["id"]]},
                             headers=bearer(bob["tokens"]))  # fmt: skip
    assert refused.status_code == 403
    added = await api.post(members, json={"user_ids": [carol["user"]["id"], bob["user"]["id"]]},
                           headers=bearer(owner["tokens"]))  # fmt: skip
    assert added.status_code == 200 and added.json()["added"] == [carol["user"]["id"]]
    cannot_kick = await api.delete(
        f"{members}/{carol['user']['id']}", headers=bearer(bob["tokens"])
    )
    assert cannot_kick.status_code == 403
    kicked = await api.delete(f"{members}/{carol['user']['id']}", headers=bearer(owner["tokens"]))
    assert kicked.status_code == 204
    left = await api.delete(f"{members}/{bob['user']['id']}", headers=bearer(bob["tokens"]))
    assert left.status_code == 204
    gone = await api.get(f"{CONVERSATIONS}/{group['id']}", headers=bearer(bob["tokens"]))
    assert gone.status_code == 404
    outsider = await api.post(members, json={"user_ids": [dave["user"]["id"]]},
                              headers=bearer(dave["tokens"]))  # fmt: skip
    assert outsider.status_code == 404


async def test_a_direct_conversation_has_fixed_members(api: httpx.AsyncClient) -> None:
    alice, bob, carol = [await register(api) for _ in range(3)]
    direct = await create_direct(api, alice["tokens"], bob["user"]["id"])
    members = f"{CONVERSATIONS}/{direct['id']}/members"
    add = await api.post(members, json={"user_ids": [carol["user"]["id"]]},
                         headers=bearer(alice["tokens"]))  # fmt: skip
    leave = await api.delete(f"{members}/{alice['user']['id']}", headers=bearer(alice["tokens"]))
    assert add.status_code == leave.status_code == 409
