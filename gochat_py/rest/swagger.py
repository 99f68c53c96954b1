"""`GET /docs`: Swagger UI from the files the swagger-ui-py package ships, no CDN."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

DOCS_PATH = "/docs"
STATIC_PATH = f"{DOCS_PATH}/static"

# validatorUrl null: Swagger UI would otherwise send the document to validator.swagger.io.
_PAGE = """\
<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>gochat-py API</title>
  <link rel="stylesheet" href="{static}/swagger-ui.css">
  <link rel="icon" type="image/png" href="{static}/favicon-32x32.png">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="{static}/swagger-ui-bundle.js"></script>
  <script src="{static}/swagger-ui-standalone-preset.js"></script>
  <script>
    window.ui = SwaggerUIBundle({{
      url: "{document}",
      dom_id: "#swagger-ui",
      deepLinking: true,
      validatorUrl: null,
      presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
      layout: "StandaloneLayout"
    }});
  </script>
</body>
</html>
"""


def _assets() -> Path:
    """swagger-ui-py's copy of swagger-ui-dist: a directory inside the installed package."""
    return Path(str(files("swagger_ui") / "static"))


def docs_routes(document_path: str) -> list[BaseRoute]:
    """The page and its assets; the page is rendered once, when the app is built."""
    page = _PAGE.format(static=STATIC_PATH, document=document_path)

    async def docs(request: Request) -> HTMLResponse:
        return HTMLResponse(page)

    return [
        Route(DOCS_PATH, docs, methods=["GET"]),
        Mount(STATIC_PATH, StaticFiles(directory=_assets()), name="docs_static"),
    ]
