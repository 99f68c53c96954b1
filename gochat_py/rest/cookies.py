"""The session cookies of browser clients: set at login, register and refresh, cleared at
logout. httpOnly, so a script injected into the page cannot read the tokens."""

from __future__ import annotations

from starlette.responses import Response

from gochat_py.credentials import ACCESS_COOKIE, REFRESH_COOKIE
from gochat_py.settings import Settings
from gochat_py.usecases.tokens import TokenPair

# The refresh token goes only where it is used (refresh, logout), never with every request.
REFRESH_COOKIE_PATH = "/api/v1/auth"  # routes.API + "/auth"; routes imports this module


def set_session_cookies(response: Response, tokens: TokenPair, settings: Settings) -> None:
    for name, value, path, max_age in (
        (ACCESS_COOKIE, tokens.access_token, "/", settings.jwt_access_expiry),
        (REFRESH_COOKIE, tokens.refresh_token, REFRESH_COOKIE_PATH, settings.jwt_refresh_expiry),
    ):
        response.set_cookie(
            name,
            value,
            max_age=int(max_age),
            path=path,
            domain=settings.cookie_domain,
            secure=settings.cookie_secure,
            httponly=True,
            samesite=settings.cookie_samesite,  # type: ignore[arg-type]
        )


def clear_session_cookies(response: Response, settings: Settings) -> None:
    # The attributes must match the ones set, or the browser keeps the cookie.
    for name, path in ((ACCESS_COOKIE, "/"), (REFRESH_COOKIE, REFRESH_COOKIE_PATH)):
        response.delete_cookie(
            name,
            path=path,
            domain=settings.cookie_domain,
            secure=settings.cookie_secure,
            httponly=True,
            samesite=settings.cookie_samesite,  # type: ignore[arg-type]
        )
