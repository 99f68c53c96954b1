"""JSON in and out of HTTP handlers: bounded reads, typed decoding, one encoder."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, TypeVar

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from gochat_py.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType, ValidationFailed

MAX_BODY_BYTES = 1024 * 1024  # no legitimate request is near this; past it a client is abusing us

T = TypeVar("T")

_encoder = msgspec.json.Encoder()
_PATH = re.compile(r" - at `\$\.?([^`]*)`$")


def encode(value: Any) -> bytes:
    return _encoder.encode(value)


def json_response(
    value: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    return Response(_encoder.encode(value), status, headers, media_type="application/json")


async def read_body(request: Request, limit: int = MAX_BODY_BYTES) -> bytes:
    """The request body, refusing it as soon as it is known to exceed `limit`."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"request body is over {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"request body is over {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def read_json(
    request: Request, into: type[T], field_messages: Mapping[str, str] | None = None
) -> T:
    """Decode the body into `into`: 415 not JSON, 400 malformed (or nested too deeply), 422
    a field is wrong.

    `field_messages` replaces msgspec's wording for a field with one a user can act on.
    """
    return decode_json(request, await read_body(request), into, field_messages)


def decode_json(
    request: Request, body: bytes, into: type[T], field_messages: Mapping[str, str] | None = None
) -> T:
    """`body`, already read from `request`, decoded as read_json does."""
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type != "application/json":
        raise UnsupportedMediaType("Content-Type must be application/json")
    try:
        return msgspec.json.decode(body, type=into)
    except msgspec.ValidationError as exc:
        message = str(exc)
        match = _PATH.search(message)
        field = (match.group(1) if match else "") or None
        friendly = field_messages.get(field) if field_messages and field else None
        raise ValidationFailed(friendly or _PATH.sub("", message), field=field) from None
    except msgspec.DecodeError as exc:
        raise BadRequest(f"malformed JSON: {exc}", code="malformed_json") from None
    except RecursionError:
        # msgspec decodes nested values recursively: ~1000 levels exhaust the stack.
        raise BadRequest("JSON is nested too deeply", code="malformed_json") from None
