"""Query parameters of the listings, parsed strictly: anything else is a 400 naming them."""

from __future__ import annotations

import uuid
from typing import Any

from starlette.requests import Request

from gochat_py.errors import BadRequest
from gochat_py.rest.openapi import QueryParam


def limit(request: Request, default: int, maximum: int) -> int:
    """`?limit=`: a whole number from 1 to `maximum`; `default` when absent."""
    raw = request.query_params.get("limit")
    if raw is None:
        return default
    # isdigit() alone also admits digits int() refuses, such as "\u00b2".
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= maximum:
        raise BadRequest(f"limit must be a whole number from 1 to {maximum}", code="invalid_limit")
    return int(raw)


def flag(request: Request, name: str) -> bool:
    """`?name=true|false`; false when absent."""
    raw = request.query_params.get(name)
    if raw is None or raw == "false":
        return False
    if raw == "true":
        return True
    raise BadRequest(f"{name} must be true or false", code="invalid_parameter")


def optional_id(request: Request, name: str) -> uuid.UUID | None:
    """`?name=` holding an id; None when absent."""
    raw = request.query_params.get(name)
    if raw is None:
        return None
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise BadRequest(f"{name} must be an id", code="invalid_parameter") from None


def limit_param(default: int, maximum: int) -> QueryParam:
    """How the document describes `limit` for a listing with these bounds."""
    schema: dict[str, Any] = {
        "type": "integer",
        "minimum": 1,
        "maximum": maximum,
        "default": default,
    }
    return QueryParam("limit", schema, "how many to return")
