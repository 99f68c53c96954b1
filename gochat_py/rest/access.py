"""Per-request bookkeeping: request id, access log line, HTTP metrics."""

from __future__ import annotations

import re
import time
import uuid

from loguru import logger
from starlette.datastructures import MutableHeaders
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gochat_py.metrics import Metrics

_CLIENT_REQUEST_ID = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")
UNMATCHED_ROUTE = "unmatched"  # one label for every unknown path, so scanners cannot bloat metrics


class AccessMiddleware:
    """Tags each request with an id, times it, logs one line and counts it by route template.

    The log line carries the path without its query string: a `?token=` must never be
    written anywhere.
    """

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            # WebSocket frames go straight through: wrapping every send would cost a call
            # per delivery, and sockets keep their own bound logger.
            await self.app(scope, receive, send)
            return
        request_id = _request_id(scope)
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message).append("x-request-id", request_id)
            await send(message)

        started = time.perf_counter()
        with logger.contextualize(request_id=request_id):
            try:
                await self.app(scope, receive, send_with_id)
            finally:
                if scope["type"] == "http":
                    self._record(scope, status, time.perf_counter() - started)

    def _record(self, scope: Scope, status: int, elapsed: float) -> None:
        route: BaseRoute | None = scope.get("route")
        template = getattr(route, "path", None) or UNMATCHED_ROUTE
        method = scope["method"]
        self.metrics.http_requests.labels(method, template, str(status)).inc()
        self.metrics.http_latency.labels(method, template).observe(elapsed)
        client = scope.get("client")
        logger.info(
            "request",
            method=method,
            path=scope["path"],
            status=status,
            ms=round(elapsed * 1000, 2),
            client=client[0] if client else "-",
        )


def _request_id(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            candidate = bytes(value).decode("latin-1")
            if _CLIENT_REQUEST_ID.match(candidate):
                return candidate
    return uuid.uuid4().hex
