"""gochat-py accounts written straight into PostgreSQL, for a scenario that needs more users
than the API registers in a reasonable time (each registration is an argon2 hash on the one
server core).

Each row is what `POST /auth/register` writes, and all share one real argon2id hash of
PASSWORD, made once here with the server's default parameters: `POST /auth/login` accepts it
and finds nothing to rehash. Access tokens are issued by the server's own TokenCodec with the
stack's secret and the server's default lifetime, as a login issues them. The login session
such a token names is not recorded in Redis: only a refresh would look for it, while the
socket endpoint refuses a revoked session, not an unrecorded one.
"""

from __future__ import annotations

import secrets
import uuid

import asyncpg
from argon2 import PasswordHasher

from bench.stack import JWT_SECRET
from gochat_py.ids import SessionId, UserId
from gochat_py.settings import Settings
from gochat_py.usecases.tokens import TokenCodec

PASSWORD = "bench-accounts-password"


def email(prefix: str, n: int) -> str:
    return f"{prefix}{n}@bench.test"


async def insert_users(database_url: str, prefix: str, count: int) -> list[uuid.UUID]:
    """Users `<prefix><n>` for n in 0..count-1, with email `email(prefix, n)` and PASSWORD;
    their ids, in that order."""
    defaults = Settings()
    password_hash = PasswordHasher(
        time_cost=defaults.argon2_time_cost,
        memory_cost=defaults.argon2_memory_kib,
        parallelism=defaults.argon2_parallelism,
    ).hash(PASSWORD)
    ids = [uuid.uuid4() for _ in range(count)]  # as gochat_py.postgres.users does
    rows = [(uid, email(prefix, n), f"{prefix}{n}", password_hash) for n, uid in enumerate(ids)]
    connection = await asyncpg.connect(database_url)
    try:
        await connection.copy_records_to_table(
            "users", records=rows, columns=["id", "email", "username", "password_hash"]
        )
    finally:
        await connection.close()
    return ids


def access_tokens(ids: list[uuid.UUID]) -> list[str]:
    """One access token per user, each in its own login session, as `POST /auth/login` signs."""
    defaults = Settings()
    codec = TokenCodec(JWT_SECRET, defaults.jwt_access_expiry, defaults.jwt_refresh_expiry)
    # The session id is drawn as gochat_py.usecases.auth draws it at login.
    return [
        codec.issue(UserId(uid), SessionId(secrets.token_urlsafe(12))).pair.access_token
        for uid in ids
    ]
