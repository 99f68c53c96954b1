"""`/api/v1/auth/*`: register, login, refresh, logout, me."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from gochat_py.rest.authn import require_claims
from gochat_py.rest.jsonio import json_response, read_json
from gochat_py.usecases.auth import FIELD_RULES, Auth, LoginRequest, RefreshRequest, RegisterRequest


def _address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


async def register(request: Request) -> Response:
    body = await read_json(request, RegisterRequest, FIELD_RULES)
    auth: Auth = request.state.auth
    return json_response(await auth.register(body, _address(request)), 201)


async def login(request: Request) -> Response:
    body = await read_json(request, LoginRequest)
    auth: Auth = request.state.auth
    return json_response(await auth.login(body, _address(request)))


async def refresh(request: Request) -> Response:
    body = await read_json(request, RefreshRequest)
    auth: Auth = request.state.auth
    return json_response(await auth.refresh(body.refresh_token))


async def logout(request: Request) -> Response:
    body = await read_json(request, RefreshRequest)
    auth: Auth = request.state.auth
    await auth.logout(body.refresh_token)
    return Response(status_code=204)


async def me(request: Request) -> Response:
    claims = await require_claims(request)
    auth: Auth = request.state.auth
    return json_response(await auth.me(claims))
