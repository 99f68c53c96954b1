"""Where a connection carries its tokens, for both doors: Starlette's HTTPConnection is the
common base of an HTTP request and a WebSocket handshake."""

from __future__ import annotations

import enum

import msgspec
from starlette.requests import HTTPConnection

# The cookie names a browser client holds its tokens in (rest/cookies.py sets them).
ACCESS_COOKIE = "access_token"
REFRESH_COOKIE = "refresh_token"


class Source(enum.Enum):
    """How a token arrived. A browser attaches a cookie to any request, a cross-site one
    included; it never adds a header or a query token of its own accord, so only a
    cookie's requests need the origin checks of origins.py."""

    HEADER = "header"
    QUERY = "query"
    COOKIE = "cookie"


class Credentials(msgspec.Struct, frozen=True):
    token: str
    source: Source

    @property
    def ambient(self) -> bool:
        """Sent by the browser on its own (a cookie), so a foreign page can make it send it."""
        return self.source is Source.COOKIE


def bearer_token(connection: HTTPConnection) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, if there is one."""
    header = connection.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None


def cookie_token(connection: HTTPConnection, name: str) -> str | None:
    """The value of cookie `name`, if the connection carries a non-empty one."""
    value = connection.cookies.get(name, "").strip()
    return value or None


def access_credentials(connection: HTTPConnection, *, query: bool = False) -> Credentials | None:
    """The access token, in order: `?token=` (when `query`), Authorization header, cookie.

    An explicit token wins over the cookie: an API client that also holds a cookie means
    the token it sent."""
    if query:
        token = connection.query_params.get("token") or None
        if token is not None:
            return Credentials(token, Source.QUERY)
    token = bearer_token(connection)
    if token is not None:
        return Credentials(token, Source.HEADER)
    token = cookie_token(connection, ACCESS_COOKIE)
    if token is not None:
        return Credentials(token, Source.COOKIE)
    return None
