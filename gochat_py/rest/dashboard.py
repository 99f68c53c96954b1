"""`GET /dashboard`: the live page, its two assets and the figures it polls.

DASHBOARD decides who may look (settings.py): `open` anyone, `token` whoever presents
DASHBOARD_TOKEN (`?token=` or `Authorization: Bearer`), `off` nobody, and the routes
answer 404 as if they did not exist. The stylesheet and script hold no data and are
served in both other modes, so the page can name them without repeating the token.
"""

from __future__ import annotations

import hmac

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from gochat_py.credentials import bearer_token
from gochat_py.dashboard.assets import Assets
from gochat_py.dashboard.stats import Dashboard
from gochat_py.errors import Unauthorized
from gochat_py.rest.jsonio import json_response
from gochat_py.settings import Settings

# The page loads only its own files and talks only to its own origin; nobody may frame it
# (the token is in its address), and it tells no other site that address.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
NEEDS_TOKEN = (
    "This dashboard needs its token: open /dashboard?token=<DASHBOARD_TOKEN>, "
    "or send Authorization: Bearer <DASHBOARD_TOKEN>.\n"
)


def _shown(settings: Settings) -> None:
    if settings.dashboard == "off":
        raise HTTPException(404)


def _admitted(request: Request) -> bool:
    """Whether the request may see the figures (after _shown)."""
    settings: Settings = request.state.settings
    _shown(settings)
    if settings.dashboard == "open":
        return True
    expected = settings.dashboard_token
    given = request.query_params.get("token") or bearer_token(request)
    if expected is None or given is None:
        return False
    # Constant time: how long a refusal takes must not tell how much of the token matched.
    return hmac.compare_digest(given.encode(), expected.encode())


async def page(request: Request) -> Response:
    if not _admitted(request):
        headers = {**SECURITY_HEADERS, "WWW-Authenticate": "Bearer"}
        return PlainTextResponse(NEEDS_TOKEN, 401, headers)
    assets: Assets = request.state.dashboard_assets
    return Response(assets.page, headers=SECURITY_HEADERS, media_type="text/html; charset=utf-8")


async def stylesheet(request: Request) -> Response:
    _shown(request.state.settings)
    assets: Assets = request.state.dashboard_assets
    return Response(assets.stylesheet, headers=SECURITY_HEADERS, media_type="text/css")


async def script(request: Request) -> Response:
    _shown(request.state.settings)
    assets: Assets = request.state.dashboard_assets
    return Response(assets.script, headers=SECURITY_HEADERS, media_type="text/javascript")


async def stats(request: Request) -> Response:
    if not _admitted(request):
        raise Unauthorized("the dashboard token is missing or wrong")
    dashboard: Dashboard = request.state.dashboard
    return json_response(await dashboard.stats(), headers=SECURITY_HEADERS)
