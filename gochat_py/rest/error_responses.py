"""One place that turns every failure of an HTTP request into the error shape."""

from __future__ import annotations

import math

import msgspec
from loguru import logger
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from gochat_py.errors import ApiError
from gochat_py.outages import DEPENDENCY_DOWN
from gochat_py.rest.jsonio import json_response

_CODES_BY_STATUS = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_failed",
    429: "rate_limited",
    503: "unavailable",
}


class ErrorDetail(msgspec.Struct, frozen=True, omit_defaults=True):
    code: str
    message: str
    field: str | None = None  # only for a bad field: the path of it in the body


class ErrorBody(msgspec.Struct, frozen=True):
    """`{"error": {"code", "message", "field"?}}`: every failure of every route."""

    error: ErrorDetail


def error_body(code: str, message: str, field: str | None = None) -> ErrorBody:
    return ErrorBody(ErrorDetail(code, message, field or None))


async def api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    headers = None
    if exc.retry_after is not None:
        headers = {"Retry-After": str(max(1, math.ceil(exc.retry_after)))}
    return json_response(error_body(exc.code, exc.message, exc.field), exc.status, headers)


async def http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = _CODES_BY_STATUS.get(exc.status_code, "http_error")
    message = exc.detail
    if exc.status_code == 404:
        message = f"no route for {request.method} {request.url.path}"
    elif exc.status_code == 405:
        message = f"{request.method} is not allowed on {request.url.path}"
    return json_response(error_body(code, message), exc.status_code, exc.headers)


async def dependency_down(request: Request, exc: Exception) -> Response:
    # An outage to wait out, not a bug: 503, retry soon.
    logger.warning("dependency_down", error=type(exc).__name__)
    body = error_body("unavailable", "a backing service is unavailable; try again shortly")
    return json_response(body, 503, {"Retry-After": "1"})


async def unexpected(request: Request, exc: Exception) -> Response:
    logger.opt(exception=exc).error("unhandled_error")
    return json_response(error_body("internal_error", "internal server error"), 500)


EXCEPTION_HANDLERS = {
    ApiError: api_error,
    HTTPException: http_exception,
    **dict.fromkeys(DEPENDENCY_DOWN, dependency_down),
    Exception: unexpected,
}
