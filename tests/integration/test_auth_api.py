from __future__ import annotations

import time
import uuid

import asyncpg
import httpx
import jwt
import pytest

from gochat_py import times
from gochat_py.ids import SessionId, UserId
from gochat_py.settings import Settings
from gochat_py.usecases.tokens import TokenCodec
from tests.harness import (
    PASSWORD,
    bearer,
    error_code,
    register,
    unique_name,
)

REGISTER = "/api/v1/auth/register"
LOGIN = "/api/v1/auth/login"
REFRESH = "/api/v1/auth/refresh"
LOGOUT = "/api/v1/auth/logout"
ME = "/api/v1/auth/me"


async def test_register_returns_the_user_and_a_token_pair(
    api: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    name = unique_name()
    response = await api.post(
        REGISTER, json={"email": f"{name}@example.com", "username": name, "password": PASSWORD}
    )
    assert response.status_code == 201
    body = response.json()
    assert set(body["user"]) == {"id", "email", "username", "is_active", "created_at"}
    assert body["user"]["email"] == f"{name}@example.com"
    assert body["user"]["username"] == name
    assert body["user"]["is_active"] is True
    created = await db.fetchval(
        "SELECT created_at FROM users WHERE id = $1", uuid.UUID(body["user"]["id"])
    )
    assert body["user"]["created_at"] == times.unix_ms(created)
    assert set(body["tokens"]) == {"access_token", "refresh_token", "expires_in"}
    assert body["tokens"]["expires_in"] == 900


async def test_the_password_is_stored_as_an_argon2id_hash(
    api: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    user = (await register(api))["user"]
    stored = await db.fetchval(
        "SELECT password_hash FROM users WHERE id = $1", uuid.UUID(user["id"])
    )
    assert stored.startswith("$argon2id$")
    assert PASSWORD not in stored


async def test_login_returns_the_gochat_response_shape(api: httpx.AsyncClient) -> None:
    user = (await register(api))["user"]
    response = await api.post(LOGIN, json={"email": user["email"], "password": PASSWORD})
    assert response.status_code == 200
    body = response.json()
    assert body["user"] == user
    assert set(body["tokens"]) == {"access_token", "refresh_token", "expires_in"}


async def test_login_email_is_case_insensitive(api: httpx.AsyncClient) -> None:
    user = (await register(api))["user"]
    response = await api.post(LOGIN, json={"email": user["email"].upper(), "password": PASSWORD})
    assert response.status_code == 200


async def test_me_returns_the_caller(api: httpx.AsyncClient) -> None:
    registered = await register(api)
    response = await api.get(ME, headers=bearer(registered["tokens"]))
    assert response.status_code == 200
    assert response.json() == registered["user"]
    assert {"is_active", "created_at"} <= set(response.json())


async def test_duplicate_email_in_any_case_is_a_conflict(api: httpx.AsyncClient) -> None:
    user = (await register(api))["user"]
    response = await api.post(
        REGISTER,
        json={"email": user["email"].upper(), "username": unique_name(), "password": PASSWORD},
    )
    assert response.status_code == 409
    assert error_code(response) == "email_taken"


async def test_duplicate_username_in_any_case_is_a_conflict(api: httpx.AsyncClient) -> None:
    user = (await register(api))["user"]
    response = await api.post(
        REGISTER,
        json={"email": f"{unique_name()}@example.com", "username": user["username"].upper(),
              "password": PASSWORD},
    )  # fmt: skip
    assert response.status_code == 409
    assert error_code(response) == "username_taken"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("email", "not-an-email"),
        ("email", "a@b"),
        ("email", 42),
        ("email", "nul\u0000@example.com"),  # PostgreSQL's text cannot hold it: was a 500
        ("username", "ab"),
        ("username", "x" * 33),
        ("username", "bad name!"),
        ("username", "émile"),
        ("password", "short"),
        ("password", "p" * 1025),
        ("password", None),
    ],
)
async def test_register_rejects_an_invalid_field_with_422_naming_it(
    api: httpx.AsyncClient, field: str, value: object
) -> None:
    name = unique_name()
    body: dict[str, object] = {
        "email": f"{name}@example.com",
        "username": name,
        "password": PASSWORD,
    }
    body[field] = value
    response = await api.post(REGISTER, json=body)
    assert response.status_code == 422
    assert error_code(response) == "validation_failed"
    assert response.json()["error"]["field"] == field


async def test_login_with_a_nul_in_the_email_is_422_not_a_server_error(
    api: httpx.AsyncClient,
) -> None:
    response = await api.post(LOGIN, json={"email": "nul\u0000@example.com", "password": "x"})
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "email"


async def test_register_with_a_missing_field_is_422(api: httpx.AsyncClient) -> None:
    response = await api.post(REGISTER, json={"email": "x@example.com", "password": PASSWORD})
    assert response.status_code == 422
    assert error_code(response) == "validation_failed"
    assert "username" in response.json()["error"]["message"]


async def test_malformed_json_is_400(api: httpx.AsyncClient) -> None:
    response = await api.post(
        REGISTER, content=b'{"email": "x@', headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert error_code(response) == "malformed_json"


@pytest.mark.parametrize("nested", ["[" * 5000 + "]" * 5000, '{"a":' * 5000 + "1" + "}" * 5000])
async def test_json_nested_too_deeply_is_400_not_a_server_error(
    api: httpx.AsyncClient, nested: str
) -> None:
    body = '{"email": "x@example.com", "password": "x", "extra": ' + nested + "}"
    response = await api.post(LOGIN, content=body, headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert error_code(response) == "malformed_json"
    assert response.json()["error"]["message"] == "JSON is nested too deeply"


async def test_a_json_array_instead_of_an_object_is_422(api: httpx.AsyncClient) -> None:
    response = await api.post(REGISTER, json=["alice"])
    assert response.status_code == 422
    assert error_code(response) == "validation_failed"


async def test_the_wrong_content_type_is_415(api: httpx.AsyncClient) -> None:
    response = await api.post(REGISTER, content=b"email=a", headers={"content-type": "text/plain"})
    assert response.status_code == 415
    assert error_code(response) == "unsupported_media_type"


async def test_a_body_over_one_mebibyte_is_413(api: httpx.AsyncClient) -> None:
    big = b'{"email": "' + b"a" * (1024 * 1024) + b'"}'
    response = await api.post(REGISTER, content=big, headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert error_code(response) == "payload_too_large"


async def test_a_chunked_body_over_one_mebibyte_is_413(api: httpx.AsyncClient) -> None:
    async def chunks():  # type: ignore[no-untyped-def]
        for _ in range(20):
            yield b"x" * 65536

    response = await api.post(
        REGISTER, content=chunks(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 413
    assert error_code(response) == "payload_too_large"


async def test_a_wrong_password_is_401_and_says_nothing_about_which_part(
    api: httpx.AsyncClient,
) -> None:
    user = (await register(api))["user"]
    wrong_password = await api.post(LOGIN, json={"email": user["email"], "password": "wrong-pass"})
    unknown_email = await api.post(LOGIN, json={"email": "nobody@example.com", "password": "x" * 9})
    assert wrong_password.status_code == unknown_email.status_code == 401
    assert wrong_password.json() == unknown_email.json()
    assert error_code(wrong_password) == "invalid_credentials"


async def test_me_without_a_token_is_401(api: httpx.AsyncClient) -> None:
    response = await api.get(ME)
    assert response.status_code == 401
    assert error_code(response) == "missing_token"


@pytest.mark.parametrize(
    ("header", "code"),
    [
        ("Basic abc", "missing_token"),
        ("Bearer", "missing_token"),
        ("Bearer not-a-jwt", "invalid_token"),
        ("eyJ.x.y", "missing_token"),
    ],
)
async def test_me_with_a_malformed_authorization_header_is_401(
    api: httpx.AsyncClient, header: str, code: str
) -> None:
    response = await api.get(ME, headers={"Authorization": header})
    assert response.status_code == 401
    assert error_code(response) == code


async def test_a_refresh_token_cannot_be_used_as_an_access_token(api: httpx.AsyncClient) -> None:
    tokens = (await register(api))["tokens"]
    response = await api.get(ME, headers={"Authorization": f"Bearer {tokens['refresh_token']}"})
    assert response.status_code == 401
    assert error_code(response) == "wrong_token_type"


async def test_an_access_token_cannot_be_used_to_refresh(api: httpx.AsyncClient) -> None:
    tokens = (await register(api))["tokens"]
    response = await api.post(REFRESH, json={"refresh_token": tokens["access_token"]})
    assert response.status_code == 401
    assert error_code(response) == "wrong_token_type"


async def test_an_expired_access_token_is_401(api: httpx.AsyncClient, settings: Settings) -> None:
    user = (await register(api))["user"]
    past = TokenCodec(settings.jwt_secret, 900, 3600, clock=lambda: time.time() - 7200)
    expired = past.issue(UserId(uuid.UUID(user["id"])), SessionId("s")).pair
    response = await api.get(ME, headers=bearer({"access_token": expired.access_token}))
    assert response.status_code == 401
    assert error_code(response) == "token_expired"


async def test_a_tampered_token_is_401(api: httpx.AsyncClient) -> None:
    tokens = (await register(api))["tokens"]
    header, payload, signature = tokens["access_token"].split(".")
    tampered = f"{header}.{payload}.{signature[:-4]}AAAA"
    response = await api.get(ME, headers={"Authorization": f"Bearer {tampered}"})
    assert response.status_code == 401
    assert error_code(response) == "invalid_token"


async def test_an_alg_none_token_is_401(api: httpx.AsyncClient) -> None:
    tokens = (await register(api))["tokens"]
    claims = jwt.decode(tokens["access_token"], options={"verify_signature": False})
    unsigned = jwt.encode(claims, key=None, algorithm="none")
    response = await api.get(ME, headers={"Authorization": f"Bearer {unsigned}"})
    assert response.status_code == 401
    assert error_code(response) == "invalid_token"


async def test_refresh_rotates_the_pair(api: httpx.AsyncClient) -> None:
    first = (await register(api))["tokens"]
    response = await api.post(REFRESH, json={"refresh_token": first["refresh_token"]})
    assert response.status_code == 200
    second = response.json()["tokens"]
    assert second["refresh_token"] != first["refresh_token"]
    assert (await api.get(ME, headers=bearer(second))).status_code == 200
    third = await api.post(REFRESH, json={"refresh_token": second["refresh_token"]})
    assert third.status_code == 200


async def test_reusing_a_spent_refresh_token_revokes_the_whole_session(
    api: httpx.AsyncClient,
) -> None:
    first = (await register(api))["tokens"]
    second = (await api.post(REFRESH, json={"refresh_token": first["refresh_token"]})).json()[
        "tokens"
    ]
    reuse = await api.post(REFRESH, json={"refresh_token": first["refresh_token"]})
    assert reuse.status_code == 401
    assert error_code(reuse) == "token_reused"
    # The legitimate holder's newer tokens die with the session too.
    assert (
        await api.post(REFRESH, json={"refresh_token": second["refresh_token"]})
    ).status_code == 401
    assert (await api.get(ME, headers=bearer(second))).status_code == 401
    assert (await api.get(ME, headers=bearer(first))).status_code == 401


async def test_reuse_in_one_session_leaves_other_sessions_alone(api: httpx.AsyncClient) -> None:
    user = (await register(api))["user"]
    phone = (await api.post(LOGIN, json={"email": user["email"], "password": PASSWORD})).json()
    laptop = (await api.post(LOGIN, json={"email": user["email"], "password": PASSWORD})).json()
    await api.post(REFRESH, json={"refresh_token": phone["tokens"]["refresh_token"]})
    await api.post(REFRESH, json={"refresh_token": phone["tokens"]["refresh_token"]})
    assert (await api.get(ME, headers=bearer(laptop["tokens"]))).status_code == 200


async def test_logout_kills_the_refresh_token_and_the_session(api: httpx.AsyncClient) -> None:
    tokens = (await register(api))["tokens"]
    response = await api.post(LOGOUT, json={"refresh_token": tokens["refresh_token"]})
    assert response.status_code == 204
    assert response.content == b""
    again = await api.post(REFRESH, json={"refresh_token": tokens["refresh_token"]})
    assert again.status_code == 401
    assert (await api.get(ME, headers=bearer(tokens))).status_code == 401


async def test_logout_with_a_garbage_token_is_401(api: httpx.AsyncClient) -> None:
    response = await api.post(LOGOUT, json={"refresh_token": "garbage"})
    assert response.status_code == 401
    assert error_code(response) == "invalid_token"


async def test_refresh_with_a_missing_token_field_is_422(api: httpx.AsyncClient) -> None:
    response = await api.post(REFRESH, json={})
    assert response.status_code == 422
    assert error_code(response) == "validation_failed"
    assert "refresh_token" in response.json()["error"]["message"]
