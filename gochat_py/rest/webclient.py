"""`GET /`: the browser chat client, static files shipped in `gochat_py/webclient/static/`.

The page and its assets carry a strict Content-Security-Policy: only this server's own
scripts, styles and connections, so a message rendered into the page can never pull in
or run anything else, and no other site may frame it.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

PAGE_PATH = "/"
# Under one prefix of its own, so the client's files never shadow /api, /ws, /docs, ...
ASSETS_PATH = "/client"

# connect-src 'self' covers ws:// and wss:// to this same host (CSP Level 3), so no
# scheme-wide ws: wss: is needed. No fonts: the page uses the system's.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    # Revalidate on every load (ETag / Last-Modified): an upgraded server's client shows at once.
    "Cache-Control": "no-cache",
}


def _static() -> Path:
    return Path(str(files("gochat_py.webclient") / "static"))


class _Assets(StaticFiles):
    """StaticFiles whose answers carry the page's security headers."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers.update(SECURITY_HEADERS)
        return response


def webclient_routes() -> list[BaseRoute]:
    static = _static()
    index = static / "index.html"

    async def page(request: Request) -> Response:
        return FileResponse(index, media_type="text/html", headers=SECURITY_HEADERS)

    return [
        Route(PAGE_PATH, page, methods=["GET"]),
        Mount(ASSETS_PATH, _Assets(directory=static), name="webclient"),
    ]
