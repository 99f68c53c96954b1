"""`/api/v1/auth/*`: register, login, refresh, logout, me."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from gochat_py.credentials import REFRESH_COOKIE, Credentials, Source, cookie_token
from gochat_py.errors import Unauthorized
from gochat_py.rest.authn import refuse_foreign_page, require_claims, require_trusted_origin
from gochat_py.rest.cookies import clear_session_cookies, set_session_cookies
from gochat_py.rest.jsonio import decode_json, json_response, read_body, read_json
from gochat_py.usecases.auth import (
    FIELD_RULES,
    Auth,
    AuthResult,
    LoginRequest,
    RefreshRequest,
    RegisterRequest,
)


def _address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _session_response(request: Request, result: AuthResult, status: int = 200) -> Response:
    """The result as JSON for API clients, and as cookies for browsers."""
    response = json_response(result, status)
    set_session_cookies(response, result.tokens, request.state.settings)
    return response


async def _refresh_token(request: Request) -> str:
    """The refresh token of a JSON body, or, when the body is empty (a browser's bodiless
    POST, whatever Content-Type its client library adds), of the refresh cookie, whose use
    is checked for CSRF."""
    body = await read_body(request)
    if body.strip():
        return decode_json(request, body, RefreshRequest).refresh_token
    token = cookie_token(request, REFRESH_COOKIE)
    if token is None:
        raise Unauthorized("missing refresh token", code="missing_token")
    require_trusted_origin(request, Credentials(token, Source.COOKIE))
    return token


async def register(request: Request) -> Response:
    refuse_foreign_page(request)
    body = await read_json(request, RegisterRequest, FIELD_RULES)
    auth: Auth = request.state.auth
    return _session_response(request, await auth.register(body, _address(request)), 201)


async def login(request: Request) -> Response:
    refuse_foreign_page(request)
    body = await read_json(request, LoginRequest)
    auth: Auth = request.state.auth
    return _session_response(request, await auth.login(body, _address(request)))


async def refresh(request: Request) -> Response:
    token = await _refresh_token(request)
    auth: Auth = request.state.auth
    return _session_response(request, await auth.refresh(token))


async def logout(request: Request) -> Response:
    token = await _refresh_token(request)
    auth: Auth = request.state.auth
    await auth.logout(token)
    response = Response(status_code=204)
    clear_session_cookies(response, request.state.settings)
    return response


async def me(request: Request) -> Response:
    claims = await require_claims(request)
    auth: Auth = request.state.auth
    return json_response(await auth.me(claims))
