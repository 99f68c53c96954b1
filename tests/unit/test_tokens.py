from __future__ import annotations

import base64
import json
import time
import uuid

import jwt
import pytest

from gochat_py.errors import Unauthorized
from gochat_py.ids import SessionId, UserId
from gochat_py.usecases.tokens import TokenCodec

SECRET = "unit-test-secret-that-is-long-enough-0123456789"
USER = UserId(uuid.uuid4())
SESSION = SessionId("session-1")


def codec(clock: float | None = None) -> TokenCodec:
    return TokenCodec(SECRET, 900, 3600, clock=(lambda: clock) if clock else time.time)


def test_an_issued_access_token_decodes_to_its_user_and_session() -> None:
    pair = codec().issue(USER, SESSION).pair
    claims = codec().decode(pair.access_token, "access")
    assert (claims.user_id, claims.session_id, claims.type) == (USER, SESSION, "access")
    assert pair.expires_in == 900


def test_a_refresh_token_is_not_an_access_token_and_back() -> None:
    pair = codec().issue(USER, SESSION).pair
    with pytest.raises(Unauthorized) as caught:
        codec().decode(pair.refresh_token, "access")
    assert caught.value.code == "wrong_token_type"
    with pytest.raises(Unauthorized) as caught:
        codec().decode(pair.access_token, "refresh")
    assert caught.value.code == "wrong_token_type"


def test_an_expired_token_is_refused() -> None:
    pair = codec(clock=time.time() - 7200).issue(USER, SESSION).pair
    with pytest.raises(Unauthorized) as caught:
        codec().decode(pair.access_token, "access")
    assert caught.value.code == "token_expired"


def test_a_tampered_payload_is_refused() -> None:
    token = codec().issue(USER, SESSION).pair.access_token
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["sub"] = str(uuid.uuid4())
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    with pytest.raises(Unauthorized) as caught:
        codec().decode(f"{header}.{forged}.{signature}", "access")
    assert caught.value.code == "invalid_token"


def test_alg_none_is_refused() -> None:
    claims = jwt.decode(
        codec().issue(USER, SESSION).pair.access_token, options={"verify_signature": False}
    )
    unsigned = jwt.encode(claims, key=None, algorithm="none")
    with pytest.raises(Unauthorized):
        codec().decode(unsigned, "access")


def test_a_token_signed_with_another_secret_is_refused() -> None:
    other = TokenCodec("another-secret-that-is-long-enough-987654321", 900, 3600)
    with pytest.raises(Unauthorized):
        codec().decode(other.issue(USER, SESSION).pair.access_token, "access")


def test_a_token_missing_the_session_claim_is_refused() -> None:
    now = int(time.time())
    token = jwt.encode(
        {"iss": "gochat-py", "sub": str(USER), "jti": "j", "type": "access", "iat": now,
         "exp": now + 60},
        SECRET,
        algorithm="HS256",
    )  # fmt: skip
    with pytest.raises(Unauthorized):
        codec().decode(token, "access")


@pytest.mark.parametrize("garbage", ["", "abc", "a.b.c", "x" * 5000])
def test_garbage_is_refused(garbage: str) -> None:
    with pytest.raises(Unauthorized):
        codec().decode(garbage, "access")
