"""The `limit` query parameter of every listing, read the same way everywhere."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from gochat_py.errors import BadRequest
from gochat_py.rest.openapi import QueryParam


def page_limit(request: Request, default: int, maximum: int) -> int:
    raw = request.query_params.get("limit")
    if raw is None:
        return default
    # isdigit() alone also admits digits int() refuses, such as "\u00b2".
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= maximum:
        raise BadRequest(f"limit must be a whole number from 1 to {maximum}", code="invalid_limit")
    return int(raw)


def limit_param(default: int, maximum: int) -> QueryParam:
    """How the document describes `limit` for a listing with these bounds."""
    schema: dict[str, Any] = {
        "type": "integer",
        "minimum": 1,
        "maximum": maximum,
        "default": default,
    }
    return QueryParam("limit", schema, "how many to return")
