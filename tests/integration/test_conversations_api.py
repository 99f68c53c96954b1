from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from tests.harness import bearer, create_direct, create_group, register

CONVERSATIONS = "/api/v1/conversations"


CONVERSATION_FIELDS = {
    "id", "type", "name", "created_by", "created_at", "updated_at", "last_seq",
    "last_activity_at", "description", "avatar_url",
}  # fmt: skip
PARTICIPANT_FIELDS = {
    "id", "username", "role", "joined_at", "is_active", "created_at", "avatar_url",
}  # fmt: skip


def assert_item_shape(item: dict[str, Any]) -> None:
    """gochat's conversation item: the conversation beside what a member sees of it."""
    assert set(item) >= {"conversation", "participants", "last_message", "unread_count"}
    assert set(item["conversation"]) == CONVERSATION_FIELDS
    assert item["conversation"]["updated_at"] == item["conversation"]["last_activity_at"]
    for participant in item["participants"]:
        assert set(participant) == PARTICIPANT_FIELDS  # no email among them
        assert participant["is_active"] is True


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
    assert [r.json()["is_new"] for r in (first, again, reverse)] == [True, False, False]
    ids = {r.json()["conversation"]["id"] for r in (first, again, reverse)}
    assert len(ids) == 1
    body = first.json()
    assert set(body) == {"conversation", "participants", "last_message", "unread_count", "is_new"}
    assert_item_shape(body)
    assert body["conversation"]["type"] == "direct"
    assert body["conversation"]["name"] is None
    assert body["conversation"]["created_by"] == alice["user"]["id"]
    assert body["conversation"]["last_seq"] == 0
    assert {p["id"] for p in body["participants"]} == {alice["user"]["id"], bob["user"]["id"]}
    assert body["last_message"] is None and body["unread_count"] == 0


async def test_a_group_includes_its_creator(api: httpx.AsyncClient) -> None:
    alice, bob, carol = await register(api), await register(api), await register(api)
    response = await api.post(
        CONVERSATIONS,
        json={"name": "Team", "participant_ids": [bob["user"]["id"], carol["user"]["id"]]},
        headers=bearer(alice["tokens"]),
    )
    assert response.status_code == 201 and response.json()["is_new"] is True
    group = response.json()
    assert_item_shape(group)
    assert group["conversation"]["type"] == "group" and group["conversation"]["name"] == "Team"
    roles = {p["id"]: p["role"] for p in group["participants"]}
    assert roles == {alice["user"]["id"]: "owner", bob["user"]["id"]: "member",
                     carol["user"]["id"]: "member"}  # fmt: skip


async def test_participants_carry_their_account_but_not_its_email(
    api: httpx.AsyncClient,
) -> None:
    alice, bob = await register(api), await register(api)
    conversation = await create_direct(api, alice["tokens"], bob["user"]["id"])
    response = await api.get(
        f"{CONVERSATIONS}/{conversation['id']}", headers=bearer(alice["tokens"])
    )
    assert bob["user"]["email"] not in response.text
    assert alice["user"]["email"] not in response.text
    accounts = {p["id"]: (p["username"], p["is_active"], p["created_at"])
                for p in response.json()["participants"]}  # fmt: skip
    assert accounts == {
        u["id"]: (u["username"], True, u["created_at"]) for u in (alice["user"], bob["user"])
    }


async def test_one_conversation_and_the_list_have_the_same_item_shape(
    api: httpx.AsyncClient,
) -> None:
    alice, bob, carol = await register(api), await register(api), await register(api)
    direct = await create_direct(api, alice["tokens"], bob["user"]["id"])
    group = await create_group(api, alice["tokens"], "g", [carol["user"]["id"]])
    sent = await api.post(
        f"{CONVERSATIONS}/{direct['id']}/messages",
        json={"content": "hi"},
        headers=bearer(bob["tokens"]),
    )
    listed = (await api.get(CONVERSATIONS, headers=bearer(alice["tokens"]))).json()
    assert set(listed) == {"conversations", "count", "next_cursor"}
    assert listed["count"] == len(listed["conversations"]) == 2
    by_id = {item["conversation"]["id"]: item for item in listed["conversations"]}
    assert set(by_id) == {direct["id"], group["id"]}
    for conversation_id, item in by_id.items():
        assert_item_shape(item)
        one = await api.get(f"{CONVERSATIONS}/{conversation_id}", headers=bearer(alice["tokens"]))
        assert one.json() == item
    item = by_id[direct["id"]]
    assert item["last_message"] == sent.json() and item["unread_count"] == 1
    assert item["conversation"]["updated_at"] == sent.json()["sent_at"]
    assert item["conversation"]["last_seq"] == 1


async def test_the_list_counts_the_items_of_each_page(api: httpx.AsyncClient) -> None:
    alice = await register(api)
    for _ in range(3):
        await create_direct(api, alice["tokens"], (await register(api))["user"]["id"])
    first = (await api.get(CONVERSATIONS, params={"limit": "2"},
                           headers=bearer(alice["tokens"]))).json()  # fmt: skip
    rest = (await api.get(CONVERSATIONS, params={"cursor": first["next_cursor"]},
                          headers=bearer(alice["tokens"]))).json()  # fmt: skip
    assert (first["count"], rest["count"], rest["next_cursor"]) == (2, 1, None)


async def test_a_direct_conversation_starts_by_email_in_any_case(api: httpx.AsyncClient) -> None:
    alice, bob = await register(api), await register(api)
    shouted = bob["user"]["email"].upper()
    first = await api.post(
        CONVERSATIONS, json={"participant_email": shouted}, headers=bearer(alice["tokens"])
    )
    assert first.status_code == 201, first.text
    assert first.json()["is_new"] is True
    assert {p["id"] for p in first.json()["participants"]} == {
        alice["user"]["id"],
        bob["user"]["id"],
    }
    assert bob["user"]["email"] not in first.text.lower()
    by_id = await api.post(
        CONVERSATIONS, json={"participant_id": bob["user"]["id"]}, headers=bearer(alice["tokens"])
    )
    assert (by_id.status_code, by_id.json()["is_new"]) == (200, False)
    assert by_id.json()["conversation"]["id"] == first.json()["conversation"]["id"]


async def test_a_group_starts_from_emails_and_ids_together(api: httpx.AsyncClient) -> None:
    alice, bob, carol, dave = [await register(api) for _ in range(4)]
    response = await api.post(
        CONVERSATIONS,
        json={
            "name": "mixed",
            "participant_ids": [bob["user"]["id"]],
            # bob twice (by id and by email) and alice herself: one member each.
            "participant_emails": [carol["user"]["email"].upper(), dave["user"]["email"],
                                   bob["user"]["email"], alice["user"]["email"]],
        },
        headers=bearer(alice["tokens"]),
    )  # fmt: skip
    assert response.status_code == 201, response.text
    roles = {p["id"]: p["role"] for p in response.json()["participants"]}
    assert roles == {alice["user"]["id"]: "owner", bob["user"]["id"]: "member",
                     carol["user"]["id"]: "member", dave["user"]["id"]: "member"}  # fmt: skip
    by_emails = await api.post(
        CONVERSATIONS,
        json={"name": "emails", "participant_emails": [carol["user"]["email"]]},
        headers=bearer(alice["tokens"]),
    )
    assert by_emails.status_code == 201, by_emails.text
    assert {p["id"] for p in by_emails.json()["participants"]} == {
        alice["user"]["id"],
        carol["user"]["id"],
    }


async def test_an_unknown_email_is_404_and_tells_nothing_else(api: httpx.AsyncClient) -> None:
    alice, bob, carol = await register(api), await register(api), await register(api)
    ghost = f"ghost-{uuid.uuid4().hex}@example.com"
    direct = await api.post(
        CONVERSATIONS, json={"participant_email": ghost}, headers=bearer(alice["tokens"])
    )
    assert direct.status_code == 404
    assert direct.json()["error"]["code"] == "unknown_users"
    assert ghost not in direct.text
    # Which of several addresses is unknown does not change the answer.
    answers = []
    for emails in ([ghost, bob["user"]["email"], carol["user"]["email"]],
                   [bob["user"]["email"], carol["user"]["email"], ghost]):  # fmt: skip
        group = await api.post(
            CONVERSATIONS,
            json={"name": "g", "participant_emails": emails},
            headers=bearer(alice["tokens"]),
        )
        assert group.status_code == 404
        answers.append(group.json())
        for email in emails:
            assert email not in group.text
    assert answers[0] == answers[1]
    assert answers[0]["error"]["code"] == "unknown_users"
    # Nothing was created by the refused requests.
    listed = (await api.get(CONVERSATIONS, headers=bearer(alice["tokens"]))).json()
    assert listed["conversations"] == []


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
        ({"participant_id": "{bob}", "participant_email": "{bob_email}"}, "invalid_conversation"),
        (
            {"participant_email": "{bob_email}", "participant_ids": ["{bob}"]},
            "invalid_conversation",
        ),
        ({"participant_emails": ["{bob_email}"]}, "invalid_conversation"),
        ({"participant_email": "not-an-address"}, "validation_failed"),
        ({"participant_email": "{alice_email}"}, "cannot_message_self"),
        (
            {"name": "g", "participant_emails": ["{bob_email}", "{BOB_EMAIL}"]},
            "duplicate_participants",
        ),
        ({"name": "g", "participant_emails": []}, "no_participants"),
        ({"name": "g", "participant_ids": [], "participant_emails": []}, "no_participants"),
        (
            {"name": "g", "participant_emails": [f"x{n}@example.com" for n in range(10_001)]},
            "too_many_participants",
        ),
    ],
)
async def test_bad_create_requests_get_a_clear_422(
    api: httpx.AsyncClient, body: dict[str, Any], code: str
) -> None:
    alice, bob = await register(api), await register(api)
    names = {
        "bob": bob["user"]["id"], "bob_email": bob["user"]["email"],
        "BOB_EMAIL": bob["user"]["email"].upper(), "alice_email": alice["user"]["email"],
    }  # fmt: skip
    filled = {
        k: [x.format(**names) for x in v] if isinstance(v, list)
        else v.format(**names) if isinstance(v, str) else v
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
        seen += [c["conversation"]["id"] for c in page["conversations"]]
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
