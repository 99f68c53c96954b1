"""The Starlette application: routes, middleware, and a lifespan that owns the pools."""

from __future__ import annotations

import inspect
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import version
from typing import Any

from loguru import logger
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.types import Receive, Scope, Send

from gochat_py.blobs.configured import download_origin
from gochat_py.container import Container
from gochat_py.logs import configure_logging
from gochat_py.rest.access import AccessMiddleware
from gochat_py.rest.error_responses import EXCEPTION_HANDLERS
from gochat_py.rest.openapi import document_route
from gochat_py.rest.routes import SOCKET_PATH, routes
from gochat_py.rest.swagger import docs_routes
from gochat_py.rest.webclient import webclient_routes
from gochat_py.settings import Settings, load_settings
from gochat_py.websocket.endpoint import SocketApp
from gochat_py.websocket.frames import MAX_FRAME_BYTES

# Seconds a browser may reuse a preflight's answer; Chromium caps it at 2 hours anyway.
CORS_PREFLIGHT_MAX_AGE = 600


async def _resolved(value: Any) -> Any:
    """A provider's value: dependency-injector returns awaitables for async resources."""
    return await value if inspect.isawaitable(value) else value


class SocketsFirst:
    """The ASGI app uvicorn serves: `/ws` straight to the socket endpoint, the rest to Starlette.

    Starlette's middleware and router have nothing to do for an open socket, yet each would
    keep a suspended frame on its stack for as long as the socket lives: ~3 KiB of every
    idle connection (docs/BENCHMARKS.md, "Connections")."""

    def __init__(self, app: Starlette) -> None:
        self.app = app
        self.sockets = SocketApp()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket" and scope["path"] == scope["root_path"] + SOCKET_PATH:
            await self.sockets(scope, receive, send)
        else:
            await self.app(scope, receive, send)


def build_app(settings: Settings) -> SocketsFirst:
    container = Container(settings=settings)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        await _resolved(container.init_resources())
        try:
            yield {
                "settings": settings,
                "metrics": container.metrics(),
                "pg_pool": await _resolved(container.pg_pool()),
                "redis": await _resolved(container.redis()),
                "auth": await _resolved(container.auth()),
                "users": await _resolved(container.users()),
                "conversations": await _resolved(container.conversations()),
                "membership": await _resolved(container.membership()),
                "history": await _resolved(container.history()),
                "recent": await _resolved(container.recent()),
                "hub": await _resolved(container.hub()),
                "members": await _resolved(container.members()),
                "group_lifecycle": await _resolved(container.group_lifecycle()),
                "notifications": await _resolved(container.notifications()),
                "conversation_views": await _resolved(container.conversation_views()),
                "sending": await _resolved(container.sending()),
                "editing": await _resolved(container.editing()),
                "broadcasting": await _resolved(container.broadcasting()),
                "read_marks": await _resolved(container.read_marks()),
                "delivery_marks": await _resolved(container.delivery_marks()),
                "typing_notices": await _resolved(container.typing_notices()),
                "resumption": await _resolved(container.resumption()),
                "relationships": await _resolved(container.relationships()),
                "profiles": await _resolved(container.profiles()),
                "people_search": await _resolved(container.people_search()),
                "message_search": await _resolved(container.message_search()),
                "revocations": await _resolved(container.revocations()),
                "expiry": await _resolved(container.expiry()),
                "renewal": await _resolved(container.renewal()),
                "presence": await _resolved(container.presence()),
                "presence_tracker": await _resolved(container.presence_tracker()),
                "uploads": await _resolved(container.uploads()),
                "media_access": await _resolved(container.media_access()),
                "gochat_dialect": container.gochat_dialect(),
                "throttle": container.throttle(),
                "dashboard": await _resolved(container.dashboard()),
                "dashboard_assets": container.dashboard_assets(),
            }
        finally:
            await _resolved(container.shutdown_resources())
            logger.info("server_stopped")

    middleware = [Middleware(AccessMiddleware, metrics=container.metrics())]
    if settings.cors_origins:
        # Credentials with an explicit list, never `*`: the listed sites' pages may call
        # the API with the user's cookies and read the answers.
        middleware.append(
            Middleware(
                CORSMiddleware,
                allow_origins=list(settings.cors_origins),
                allow_credentials=True,
                allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
                allow_headers=["Authorization", "Content-Type"],
                max_age=CORS_PREFLIGHT_MAX_AGE,
            )
        )
    # The document and the page describing the table are built here, once per app.
    openapi = document_route(routes, version("gochat-py"))
    app = Starlette(
        routes=[
            *routes,
            openapi,
            *docs_routes(openapi.path),
            *webclient_routes(download_origin(settings)),
        ],
        middleware=middleware,
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=lifespan,
    )
    return SocketsFirst(app)


def create_app() -> SocketsFirst:
    """uvicorn's factory (`--factory`): settings from the environment, checked at start-up."""
    settings = load_settings(os.environ)
    configure_logging(settings.log_level, settings.log_format)
    return build_app(settings)


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """How uvicorn must serve the app, wherever it runs it (CLI, dev runner, tests)."""
    return {
        # uvicorn's access log would print raw paths with query strings (`?token=`);
        # AccessMiddleware writes a scrubbed line instead.
        "access_log": False,
        "log_config": None,
        "proxy_headers": True,
        # Leaner per idle socket than uvicorn's own, and never logs the token-bearing path.
        "ws": "gochat_py.websocket.protocol:WebSocketProtocol",
        "ws_max_size": MAX_FRAME_BYTES,  # larger frames are closed with 1009
        "ws_ping_interval": settings.ws_ping_interval,
        "ws_ping_timeout": settings.ws_ping_interval,
        # Off by default: compression costs CPU and tens of KiB of zlib state per socket,
        # and chat frames are small.
        "ws_per_message_deflate": settings.ws_per_message_deflate,
    }
