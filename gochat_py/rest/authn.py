"""Who is calling: the access token of an HTTP request, and whether a browser's
cookie-borne request comes from a page allowed to make it (CSRF)."""

from __future__ import annotations

from starlette.requests import HTTPConnection

from gochat_py.credentials import Credentials
from gochat_py.credentials import access_credentials as find_access_credentials
from gochat_py.errors import Forbidden, Unauthorized
from gochat_py.origins import is_trusted, request_origin
from gochat_py.postgres.users import Users
from gochat_py.settings import Settings
from gochat_py.usecases.auth import Auth
from gochat_py.usecases.tokens import Claims

# Methods that change nothing: a cross-site page may make the browser send them, but CORS
# keeps it from reading the answer.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def require_trusted_origin(connection: HTTPConnection, credentials: Credentials) -> None:
    """Refuse a write authenticated by a cookie unless its Origin (or Referer) is this
    server's or one of CORS_ORIGINS: a browser attaches the cookie to a foreign site's
    form posts and fetches too, but it cannot fake their Origin."""
    if not credentials.ambient or connection.scope.get("method") in SAFE_METHODS:
        return
    settings: Settings = connection.state.settings
    if not is_trusted(connection, settings.cors_origins, referer=True):
        raise Forbidden("cross-site request refused", code="csrf_rejected")


def refuse_foreign_page(connection: HTTPConnection) -> None:
    """Refuse a login or registration that a browser sent from a foreign site's page: it
    would sign the visitor into the foreign site's account (login CSRF). Clients that send
    no Origin (curl, apps) are not browsers and pass."""
    settings: Settings = connection.state.settings
    if request_origin(connection, referer=False) is not None and not is_trusted(
        connection, settings.cors_origins, referer=False
    ):
        raise Forbidden("cross-site request refused", code="csrf_rejected")


async def require_claims(connection: HTTPConnection) -> Claims:
    credentials = find_access_credentials(connection)
    if credentials is None:
        raise Unauthorized("missing bearer token", code="missing_token")
    require_trusted_origin(connection, credentials)
    auth: Auth = connection.state.auth
    return await auth.authenticate(credentials.token)


async def require_sender(connection: HTTPConnection) -> tuple[Claims, str]:
    """The caller and their username, which the messages they send carry."""
    claims = await require_claims(connection)
    users: Users = connection.state.users
    account = await users.by_id(claims.user_id)
    if account is None:
        raise Unauthorized("the account no longer exists", code="invalid_token")
    return claims, account.user.username
