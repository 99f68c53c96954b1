"""Who is calling: the access token of an HTTP request."""

from __future__ import annotations

from starlette.requests import HTTPConnection

from gochat_py.credentials import bearer_token
from gochat_py.errors import Unauthorized
from gochat_py.usecases.auth import Auth
from gochat_py.usecases.tokens import Claims


async def require_claims(connection: HTTPConnection) -> Claims:
    token = bearer_token(connection)
    if token is None:
        raise Unauthorized("missing bearer token", code="missing_token")
    auth: Auth = connection.state.auth
    return await auth.authenticate(token)
