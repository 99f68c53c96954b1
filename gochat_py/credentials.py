"""Where a connection carries its access token, for both doors: Starlette's HTTPConnection
is the common base of an HTTP request and a WebSocket handshake."""

from __future__ import annotations

from starlette.requests import HTTPConnection


def bearer_token(connection: HTTPConnection) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, if there is one."""
    header = connection.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None
