from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import httpx
import pytest

from gochat_py import cursors
from tests.harness import bearer, register

USERS = "/api/v1/users"
ME = f"{USERS}/me"
PROFILE_FIELDS = {
    "id", "email", "username", "display_name", "bio", "avatar_url", "dm_policy", "show_presence",
    "created_at",
}  # fmt: skip
PUBLIC_FIELDS = {"id", "username", "display_name", "bio", "avatar_url", "created_at"}


async def patch_me(api: httpx.AsyncClient, user: dict[str, Any], body: Any) -> httpx.Response:
    return await api.patch(ME, json=body, headers=bearer(user["tokens"]))


async def named(api: httpx.AsyncClient, username: str, display_name: str | None = None) -> str:
    """A new user with this username (and display name); returns the id."""
    user = await register(api, username)
    if display_name is not None:
        response = await patch_me(api, user, {"display_name": display_name})
        assert response.status_code == 200, response.text
    user_id: str = user["user"]["id"]
    return user_id


async def search(
    api: httpx.AsyncClient, user: dict[str, Any], q: str, **params: str
) -> httpx.Response:
    return await api.get(USERS, params={"q": q, **params}, headers=bearer(user["tokens"]))


async def found(api: httpx.AsyncClient, user: dict[str, Any], q: str) -> list[str]:
    """The ids of every match of q, in order, one page of the largest size."""
    response = await search(api, user, q, limit="50")
    assert response.status_code == 200, response.text
    assert response.json()["next_cursor"] is None
    return [u["id"] for u in response.json()["users"]]


# Profiles


async def test_my_profile_has_every_field_and_starts_with_the_defaults(
    api: httpx.AsyncClient,
) -> None:
    alice = await register(api)
    response = await api.get(ME, headers=bearer(alice["tokens"]))
    assert response.status_code == 200
    profile = response.json()
    assert set(profile) == PROFILE_FIELDS
    assert profile["id"] == alice["user"]["id"]
    assert profile["email"] == alice["user"]["email"]
    assert profile["username"] == alice["user"]["username"]
    assert profile["created_at"] == alice["user"]["created_at"]
    assert (profile["display_name"], profile["bio"], profile["avatar_url"]) == (None, None, None)
    assert (profile["dm_policy"], profile["show_presence"]) == ("everyone", True)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("display_name", "Alice Liddell"),
        ("bio", "Down the rabbit hole.\nAnd back."),
        ("dm_policy", "contacts"),
        ("show_presence", False),
    ],
)
async def test_each_field_changes_alone_and_the_change_is_kept(
    api: httpx.AsyncClient, field: str, value: Any
) -> None:
    alice = await register(api)
    before = (await api.get(ME, headers=bearer(alice["tokens"]))).json()
    response = await patch_me(api, alice, {field: value})
    assert response.status_code == 200, response.text
    assert response.json() == before | {field: value}
    assert (await api.get(ME, headers=bearer(alice["tokens"]))).json() == before | {field: value}


async def test_several_fields_change_at_once_and_dm_policy_can_go_back(
    api: httpx.AsyncClient,
) -> None:
    alice = await register(api)
    changed = await patch_me(
        api, alice, {"display_name": "Al", "bio": "hi", "dm_policy": "contacts",
                     "show_presence": False},
    )  # fmt: skip
    assert changed.status_code == 200
    back = await patch_me(api, alice, {"dm_policy": "everyone", "show_presence": True})
    body = back.json()
    assert (body["display_name"], body["bio"]) == ("Al", "hi")
    assert (body["dm_policy"], body["show_presence"]) == ("everyone", True)


async def test_a_display_name_is_trimmed(api: httpx.AsyncClient) -> None:
    alice = await register(api)
    response = await patch_me(api, alice, {"display_name": "\u00a0 Alice  \u3000"})
    assert response.json()["display_name"] == "Alice"


async def test_null_clears_the_display_name_and_the_bio(api: httpx.AsyncClient) -> None:
    alice = await register(api)
    await patch_me(api, alice, {"display_name": "Alice", "bio": "About me"})
    response = await patch_me(api, alice, {"display_name": None, "bio": None})
    assert response.status_code == 200
    assert (response.json()["display_name"], response.json()["bio"]) == (None, None)


async def test_an_empty_update_changes_nothing_and_answers_the_profile(
    api: httpx.AsyncClient,
) -> None:
    alice = await register(api)
    await patch_me(api, alice, {"display_name": "Alice"})
    before = (await api.get(ME, headers=bearer(alice["tokens"]))).json()
    response = await patch_me(api, alice, {})
    assert response.status_code == 200
    assert response.json() == before


async def test_the_longest_display_name_and_bio_are_accepted(api: httpx.AsyncClient) -> None:
    alice = await register(api)
    response = await patch_me(api, alice, {"display_name": "n" * 64, "bio": "b" * 500})
    assert response.status_code == 200
    assert (len(response.json()["display_name"]), len(response.json()["bio"])) == (64, 500)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"display_name": "n" * 65}, "display_name"),
        ({"display_name": ""}, "display_name"),
        ({"display_name": "   "}, "display_name"),
        ({"display_name": "bell\u0007"}, "display_name"),
        ({"display_name": "two\nlines"}, "display_name"),
        ({"display_name": "nul\u0000"}, "display_name"),
        ({"display_name": "c1\u0085"}, "display_name"),
        ({"display_name": 5}, "display_name"),
        ({"bio": "b" * 501}, "bio"),
        ({"bio": "nul\u0000"}, "bio"),
        ({"bio": "escape\u001b[31m"}, "bio"),
        ({"bio": ["a list"]}, "bio"),
        ({"dm_policy": "friends"}, "dm_policy"),
        ({"dm_policy": None}, "dm_policy"),
        ({"show_presence": "yes"}, "show_presence"),
        ({"show_presence": None}, "show_presence"),
        ({"show_presence": 1}, "show_presence"),
    ],
)
async def test_a_bad_field_is_refused_with_422_naming_it_and_nothing_changes(
    api: httpx.AsyncClient, body: dict[str, Any], field: str
) -> None:
    alice = await register(api)
    before = (await api.get(ME, headers=bearer(alice["tokens"]))).json()
    # Beside a good field, which must not be applied either.
    good = {"show_presence": False} if field != "show_presence" else {"bio": "Kept"}
    response = await patch_me(api, alice, body | good)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["field"] == field
    assert (await api.get(ME, headers=bearer(alice["tokens"]))).json() == before


@pytest.mark.parametrize("body", [{"email": "new@example.com"}, {"display_name": "A", "x": 1}])
async def test_an_unknown_field_is_refused_with_422(api: httpx.AsyncClient, body: Any) -> None:
    alice = await register(api)
    response = await patch_me(api, alice, body)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "validation_failed"
    assert (await api.get(ME, headers=bearer(alice["tokens"]))).json()["display_name"] is None


@pytest.mark.parametrize("body", [[], "text", 5])
async def test_a_body_that_is_not_an_object_is_refused_with_422(
    api: httpx.AsyncClient, body: Any
) -> None:
    alice = await register(api)
    assert (await patch_me(api, alice, body)).status_code == 422


async def test_a_public_profile_shows_no_email_and_no_settings(api: httpx.AsyncClient) -> None:
    alice, bob = await register(api), await register(api)
    await patch_me(api, bob, {"display_name": "Bob", "bio": "Builder", "dm_policy": "contacts",
                              "show_presence": False})  # fmt: skip
    response = await api.get(f"{USERS}/{bob['user']['id']}", headers=bearer(alice["tokens"]))
    assert response.status_code == 200
    profile = response.json()
    assert set(profile) == PUBLIC_FIELDS
    assert profile == {
        "id": bob["user"]["id"],
        "username": bob["user"]["username"],
        "display_name": "Bob",
        "bio": "Builder",
        "avatar_url": None,
        "created_at": bob["user"]["created_at"],
    }
    assert bob["user"]["email"] not in response.text


@pytest.mark.parametrize("user_id", [str(uuid.uuid4()), "not-a-uuid", "me-too"])
async def test_an_unknown_or_malformed_user_id_is_404(api: httpx.AsyncClient, user_id: str) -> None:
    alice = await register(api)
    response = await api.get(f"{USERS}/{user_id}", headers=bearer(alice["tokens"]))
    assert response.status_code == 404
    assert "error" in response.json()


async def test_auth_me_keeps_its_shape_after_a_profile_change(api: httpx.AsyncClient) -> None:
    alice = await register(api)
    await patch_me(api, alice, {"display_name": "Alice", "bio": "x"})
    me = (await api.get("/api/v1/auth/me", headers=bearer(alice["tokens"]))).json()
    assert set(me) == {"id", "email", "username", "is_active", "created_at"}


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", ME, None),
        ("PATCH", ME, {"display_name": "Anyone"}),
        ("GET", f"{USERS}/{uuid.uuid4()}", None),
        ("GET", f"{USERS}?q=alice", None),
    ],
)
async def test_every_route_refuses_a_caller_without_a_token(
    api: httpx.AsyncClient, method: str, path: str, body: Any
) -> None:
    for headers in ({}, {"Authorization": "Bearer not-a-token"}):
        response = await api.request(method, path, json=body, headers=headers)
        assert response.status_code == 401, (path, headers)
        assert response.json()["error"]["code"] in ("missing_token", "invalid_token")


# Search


async def test_search_ranks_exact_then_username_prefix_then_display_prefix_then_inside(
    api: httpx.AsyncClient,
) -> None:
    searcher = await register(api)
    exact = await named(api, "kiwi")
    prefix_b = await named(api, "kiwi_b")
    prefix_a = await named(api, "Kiwi_a")
    display_fan = await named(api, "zed_one", "Kiwi Fan")
    display_ant = await named(api, "zed_two", "kiwi ant")
    inside = sorted([await named(api, "big_kiwi"), await named(api, "abc_1", "Mr KIWI")])
    await named(api, "banana", "Not Here")
    expected = [exact, prefix_a, prefix_b, display_ant, display_fan, *inside]
    assert await found(api, searcher, "kiwi") == expected
    assert await found(api, searcher, "KiWi") == expected  # case does not matter


async def test_search_finds_text_inside_usernames_and_display_names(
    api: httpx.AsyncClient,
) -> None:
    searcher = await register(api)
    in_username = await named(api, "the_mango_tree")
    in_display = await named(api, "plain_user", "Big Mango")
    await named(api, "apple_tree", "Apple")
    assert set(await found(api, searcher, "ango")) == {in_username, in_display}
    assert await found(api, searcher, "  ANGO  ") == await found(api, searcher, "ango")


async def test_a_two_character_query_matches_only_at_the_start(api: httpx.AsyncClient) -> None:
    searcher = await register(api)
    starts = await named(api, "qa_tester")
    starts_display = await named(api, "tester_two", "QA Lead")
    await named(api, "aqa_inside")
    assert await found(api, searcher, "qa") == [starts, starts_display]


@pytest.mark.parametrize(
    ("q", "display_name", "lookalike"),
    [
        # Two characters: matched at the start only.
        ("%%", "%% sure", "absolutely sure"),
        ("_x", "_xavier", "axavier"),
        # Inside names: % would match anything, _ any one character, \ escape the next one.
        ("%%abc", "an %%abc inside", "an abc inside"),
        ("q_xyz", "the q_xyz one", "the qaxyz one"),
        ("50%_off", "Get 50%_off now", "Get 50xyoff now"),
        ("c:\\dir", "My C:\\dir here", "My c:dir here"),
    ],
)
async def test_like_wildcards_in_the_query_match_only_themselves(
    api: httpx.AsyncClient, q: str, display_name: str, lookalike: str
) -> None:
    searcher = await register(api)
    literal = await named(api, "literal_user", display_name)
    await named(api, "lookalike_user", lookalike)
    assert await found(api, searcher, q) == [literal]


async def test_underscores_in_a_username_match_literally(api: httpx.AsyncClient) -> None:
    searcher = await register(api)
    underscored = await named(api, "_xyz_first")
    await named(api, "axyz_second")
    assert await found(api, searcher, "_xyz") == [underscored]


async def test_pages_follow_each_other_without_gaps_or_repeats(api: httpx.AsyncClient) -> None:
    searcher = await register(api)
    await named(api, "plum")
    for n in range(4):
        await named(api, f"plum_{n}")
    for n in range(3):
        await named(api, f"other_{n}", f"Plum Fan {n}")
    for n in range(4):
        await named(api, f"sugarplum_{n}")
    whole = await found(api, searcher, "plum")
    assert len(whole) == 12
    for limit in ("1", "2", "5"):
        seen: list[str] = []
        cursor = None
        while True:
            params = {"limit": limit} | ({"cursor": cursor} if cursor else {})
            response = await search(api, searcher, "plum", **params)
            assert response.status_code == 200
            page = response.json()
            assert len(page["users"]) <= int(limit)
            seen += [u["id"] for u in page["users"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert seen == whole, limit


async def test_a_cursor_resumes_the_same_way_each_time(api: httpx.AsyncClient) -> None:
    searcher = await register(api)
    for n in range(5):
        await named(api, f"fig_{n}", f"Fig {n}")
    first = (await search(api, searcher, "fig", limit="2")).json()
    again = [(await search(api, searcher, "fig", limit="2", cursor=first["next_cursor"])).json()
             for _ in range(2)]  # fmt: skip
    assert again[0] == again[1]
    assert {u["id"] for u in again[0]["users"]}.isdisjoint(u["id"] for u in first["users"])


async def test_the_default_page_is_twenty(api: httpx.AsyncClient) -> None:
    searcher = await register(api)
    for n in range(21):
        await named(api, f"lime_{n:02d}")
    page = (await search(api, searcher, "lime")).json()
    assert len(page["users"]) == 20 and page["next_cursor"] is not None


@pytest.mark.parametrize(
    "cursor",
    [
        "garbage!",
        "x" * 600,
        cursors.encode([9, "", str(uuid.uuid4())]),  # no such tier
        cursors.encode([1, "kiwi"]),  # a field short
        cursors.encode({"tier": 1, "key": "kiwi", "id": str(uuid.uuid4())}),
        cursors.encode([1, "kiwi", "not-a-uuid"]),
    ],
)
async def test_a_tampered_cursor_is_refused_with_400(api: httpx.AsyncClient, cursor: str) -> None:
    searcher = await register(api)
    response = await search(api, searcher, "kiwi", cursor=cursor)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_cursor"


async def test_someone_who_blocked_the_caller_is_not_listed(
    api: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    searcher = await register(api)
    blocker = await named(api, "pear_blocker")
    blocked_by_searcher = await named(api, "pear_blocked")
    other = await named(api, "pear_other")
    searcher_id = uuid.UUID(searcher["user"]["id"])
    await db.execute(
        "INSERT INTO blocks (blocker_id, blocked_id) VALUES ($1, $2), ($2, $3)",
        uuid.UUID(blocker),
        searcher_id,
        uuid.UUID(blocked_by_searcher),
    )
    # Only a block by them hides them: whom the caller blocked is the caller's own business.
    assert await found(api, searcher, "pear") == [blocked_by_searcher, other]
    assert await found(api, searcher, "pear_blocker") == []


async def test_the_caller_is_not_listed(api: httpx.AsyncClient) -> None:
    searcher = await register(api, "cherry_me")
    other = await named(api, "cherry_you")
    assert await found(api, searcher, "cherry") == [other]


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({}, "query_too_short"),
        ({"q": ""}, "query_too_short"),
        ({"q": "a"}, "query_too_short"),
        ({"q": "  a  "}, "query_too_short"),
        ({"q": "a" * 65}, "invalid_query"),
        ({"q": "ab\u0000c"}, "invalid_query"),
    ],
)
async def test_a_bad_query_is_refused_with_422(
    api: httpx.AsyncClient, params: dict[str, str], code: str
) -> None:
    searcher = await register(api)
    response = await api.get(USERS, params=params, headers=bearer(searcher["tokens"]))
    assert response.status_code == 422
    assert response.json()["error"]["code"] == code
    assert response.json()["error"]["field"] == "q"


@pytest.mark.parametrize("limit", ["0", "51", "x", "-1", "2.5"])
async def test_a_bad_limit_is_refused_with_400(api: httpx.AsyncClient, limit: str) -> None:
    searcher = await register(api)
    response = await search(api, searcher, "kiwi", limit=limit)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_limit"


async def test_search_results_are_public_profiles(api: httpx.AsyncClient) -> None:
    searcher = await register(api)
    await named(api, "melon_one", "Melon")
    response = await search(api, searcher, "melon")
    assert set(response.json()) == {"users", "next_cursor"}
    (user,) = response.json()["users"]
    assert set(user) == PUBLIC_FIELDS
    assert user["display_name"] == "Melon"
