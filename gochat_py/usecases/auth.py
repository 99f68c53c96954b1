"""Accounts and login sessions: register, log in, refresh, log out, authenticate."""

from __future__ import annotations

import secrets
from typing import Annotated

import msgspec
from loguru import logger

from gochat_py.errors import Unauthorized
from gochat_py.ids import SessionId, UserId
from gochat_py.postgres.users import Email, User, Users
from gochat_py.redis.ratelimit import RateLimiter
from gochat_py.redis.sessions import Rotation, Sessions
from gochat_py.usecases.passwords import Passwords
from gochat_py.usecases.tokens import Claims, TokenCodec, TokenPair

Username = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_]{3,32}$")]
# The upper bound keeps a single request from making argon2 hash megabytes.
Password = Annotated[str, msgspec.Meta(min_length=8, max_length=1024)]
Token = Annotated[str, msgspec.Meta(min_length=1, max_length=4096)]


class RegisterRequest(msgspec.Struct, frozen=True):
    email: Email
    username: Username
    password: Password


class LoginRequest(msgspec.Struct, frozen=True):
    # Looked up, not validated as an address; U+0000 cannot reach PostgreSQL's text.
    email: Annotated[str, msgspec.Meta(min_length=1, max_length=254, pattern=r"^[^\x00]*$")]
    password: Annotated[str, msgspec.Meta(min_length=1, max_length=1024)]


class RefreshRequest(msgspec.Struct, frozen=True):
    refresh_token: Token


class AuthResult(msgspec.Struct, frozen=True):
    user: User
    tokens: TokenPair


FIELD_RULES = {
    "email": "email must be a valid address like name@example.com",
    "username": "username must be 3 to 32 letters, digits or underscores",
    "password": "password must be 8 to 1024 characters",
}


class Auth:
    def __init__(
        self,
        users: Users,
        passwords: Passwords,
        tokens: TokenCodec,
        sessions: Sessions,
        limiter: RateLimiter,
        login_limit_per_account: int,
        login_limit_per_address: int,
        register_limit_per_address: int,
    ) -> None:
        self._users = users
        self._passwords = passwords
        self._tokens = tokens
        self._sessions = sessions
        self._limiter = limiter
        self._login_per_account = login_limit_per_account
        self._login_per_address = login_limit_per_address
        self._register_per_address = register_limit_per_address

    async def register(self, request: RegisterRequest, address: str) -> AuthResult:
        await self._limiter.hit("register:address", address, self._register_per_address)
        password_hash = await self._passwords.hash(request.password)
        account = await self._users.create(request.email, request.username, password_hash)
        logger.info("user_registered", user_id=str(account.user.id))
        return AuthResult(user=account.user, tokens=await self._start_session(account.user))

    async def login(self, request: LoginRequest, address: str) -> AuthResult:
        await self._limiter.hit("login:address", address, self._login_per_address)
        await self._limiter.hit("login:account", request.email.lower(), self._login_per_account)
        account = await self._users.by_email(request.email)
        stored = account.password_hash if account else None
        if not await self._passwords.verify(stored, request.password) or account is None:
            raise Unauthorized("email or password is wrong", code="invalid_credentials")
        if self._passwords.needs_rehash(account.password_hash):
            new_hash = await self._passwords.hash(request.password)
            await self._users.set_password_hash(UserId(account.user.id), new_hash)
        return AuthResult(user=account.user, tokens=await self._start_session(account.user))

    async def refresh(self, refresh_token: str) -> AuthResult:
        claims = self._tokens.decode(refresh_token, "refresh")
        account = await self._users.by_id(claims.user_id)
        if account is None:
            raise Unauthorized("the account no longer exists", code="invalid_token")
        issued = self._tokens.issue(claims.user_id, claims.session_id)
        outcome = await self._sessions.rotate(claims.session_id, claims.jti, issued.refresh_jti)
        if outcome is Rotation.REUSED:
            logger.warning("refresh_token_reused", session_id=claims.sid, user_id=claims.sub)
            raise Unauthorized(
                "refresh token was already used; the session is revoked", code="token_reused"
            )
        if outcome is not Rotation.ROTATED:
            raise Unauthorized("the session has ended", code="session_revoked")
        return AuthResult(user=account.user, tokens=issued.pair)

    async def logout(self, refresh_token: str) -> None:
        claims = self._tokens.decode(refresh_token, "refresh")
        await self._sessions.revoke(claims.session_id, "logout")

    async def authenticate(self, access_token: str) -> Claims:
        """The claims of a live access token; a revoked session's tokens are refused."""
        claims = self.verify(access_token)
        await self.require_live(claims.session_id)
        return claims

    def verify(self, access_token: str) -> Claims:
        """The claims of a well-signed, unexpired access token, its session not yet checked.

        A socket registers for its session's revocation between the two steps, so that a
        revocation either finds it registered or is already visible to require_live."""
        return self._tokens.decode(access_token, "access")

    async def require_live(self, session_id: SessionId) -> None:
        if await self._sessions.is_revoked(session_id):
            raise Unauthorized("the session has ended", code="session_revoked")

    async def me(self, claims: Claims) -> User:
        account = await self._users.by_id(claims.user_id)
        if account is None:
            raise Unauthorized("the account no longer exists", code="invalid_token")
        return account.user

    async def _start_session(self, user: User) -> TokenPair:
        session_id = SessionId(secrets.token_urlsafe(12))
        issued = self._tokens.issue(UserId(user.id), session_id)
        await self._sessions.start(session_id, issued.refresh_jti)
        return issued.pair
