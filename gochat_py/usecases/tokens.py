"""JWT access and refresh tokens: HS256 only, typed, bound to a login session."""

from __future__ import annotations

import secrets
import time
import uuid
from collections.abc import Callable
from typing import Literal

import jwt
import msgspec

from gochat_py.errors import Unauthorized
from gochat_py.ids import SessionId, UserId

ALGORITHM = "HS256"  # pinned: the algorithm is never taken from the token header
ISSUER = "gochat-py"
TokenType = Literal["access", "refresh"]


class Claims(msgspec.Struct, frozen=True):
    sub: str
    sid: str
    jti: str
    type: str
    iat: int
    exp: int

    @property
    def user_id(self) -> UserId:
        return UserId(uuid.UUID(self.sub))

    @property
    def session_id(self) -> SessionId:
        return SessionId(self.sid)


class TokenPair(msgspec.Struct, frozen=True):
    access_token: str
    refresh_token: str
    expires_in: int


class IssuedPair(msgspec.Struct, frozen=True):
    pair: TokenPair
    refresh_jti: str


class TokenCodec:
    """Signs and checks tokens; `clock` is injectable so expiry can be tested for real."""

    def __init__(
        self,
        secret: str,
        access_ttl: float,
        refresh_ttl: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._secret = secret
        self.access_ttl = int(access_ttl)
        self.refresh_ttl = int(refresh_ttl)
        self._clock = clock

    def issue(self, user_id: UserId, session_id: SessionId) -> IssuedPair:
        refresh_jti = secrets.token_urlsafe(16)
        pair = TokenPair(
            access_token=self._sign(user_id, session_id, "access", secrets.token_urlsafe(16)),
            refresh_token=self._sign(user_id, session_id, "refresh", refresh_jti),
            expires_in=self.access_ttl,
        )
        return IssuedPair(pair=pair, refresh_jti=refresh_jti)

    def decode(self, token: str, expected: TokenType) -> Claims:
        """The claims of a valid token of the expected type, else Unauthorized."""
        try:
            payload = jwt.decode(
                token,
                self._secret,
                algorithms=[ALGORITHM],
                issuer=ISSUER,
                options={"require": ["exp", "iat", "sub", "sid", "jti", "type", "iss"]},
                leeway=0,
            )
        except jwt.ExpiredSignatureError:
            raise Unauthorized(f"{expected} token has expired", code="token_expired") from None
        except jwt.InvalidTokenError:
            raise Unauthorized(f"invalid {expected} token", code="invalid_token") from None
        try:
            claims = msgspec.convert(payload, Claims)
            claims.user_id  # noqa: B018 - the subject must be a uuid
        except (msgspec.ValidationError, ValueError):
            raise Unauthorized(f"invalid {expected} token", code="invalid_token") from None
        if claims.type != expected:
            raise Unauthorized(
                f"a {claims.type} token is not a {expected} token", code="wrong_token_type"
            )
        return claims

    def _sign(self, user_id: UserId, session_id: SessionId, kind: TokenType, jti: str) -> str:
        now = int(self._clock())
        ttl = self.access_ttl if kind == "access" else self.refresh_ttl
        payload = {
            "iss": ISSUER,
            "sub": str(user_id),
            "sid": session_id,
            "jti": jti,
            "type": kind,
            "iat": now,
            "exp": now + ttl,
        }
        return jwt.encode(payload, self._secret, algorithm=ALGORITHM)
