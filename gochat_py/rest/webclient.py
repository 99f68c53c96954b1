"""`GET /`: the browser chat client, static files shipped in `gochat_py/webclient/static/`.

The page and its assets carry a strict Content-Security-Policy: only this server's own
scripts, styles and connections, so a message rendered into the page can never pull in
or run anything else, and no other site may frame it. Images come from this server too
(thumbnails, photos and avatars are `/api/v1/media/…`), and, with the S3 store, from the
bucket its downloads redirect to: a redirected image is checked against `img-src` again.
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


def content_security_policy(media_origin: str | None = None) -> str:
    """`media_origin`: where images are redirected to besides this server (None: nowhere).
    connect-src 'self' covers ws:// and wss:// to this same host (CSP Level 3), so no
    scheme-wide ws: wss: is needed. No fonts: the page uses the system's."""
    images = "'self'" if media_origin is None else f"'self' {media_origin}"
    return (
        f"default-src 'none'; script-src 'self'; style-src 'self'; img-src {images}; "
        "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )


def security_headers(media_origin: str | None = None) -> dict[str, str]:
    return {
        "Content-Security-Policy": content_security_policy(media_origin),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "same-origin",
        # Revalidate on every load (ETag / Last-Modified): an upgraded server's client
        # shows at once.
        "Cache-Control": "no-cache",
    }


def _static() -> Path:
    return Path(str(files("gochat_py.webclient") / "static"))


class _Assets(StaticFiles):
    """StaticFiles whose answers carry the page's security headers."""

    def __init__(self, directory: Path, headers: dict[str, str]) -> None:
        super().__init__(directory=directory)
        self._headers = headers

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers.update(self._headers)
        return response


def webclient_routes(media_origin: str | None = None) -> list[BaseRoute]:
    static = _static()
    index = static / "index.html"
    headers = security_headers(media_origin)

    async def page(request: Request) -> Response:
        return FileResponse(index, media_type="text/html", headers=headers)

    return [
        Route(PAGE_PATH, page, methods=["GET"]),
        Mount(ASSETS_PATH, _Assets(static, headers), name="webclient"),
    ]
