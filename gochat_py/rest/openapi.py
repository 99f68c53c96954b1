"""The OpenAPI 3.1 document, built from the route table and the Structs the handlers use."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

import msgspec
from starlette.convertors import UUIDConvertor
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from gochat_py.rest.error_responses import ErrorBody

JSON = "application/json"
REF_TEMPLATE = "#/components/schemas/{name}"
SECURITY_SCHEME = "bearerAuth"
COOKIE_SCHEME = "cookieAuth"  # the httpOnly access_token cookie browsers send (rest/cookies.py)
# Writes a browser makes with the cookie are refused from a foreign Origin (rest/authn.py).
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# What every JSON body can be refused with before its handler looks at it (rest/jsonio.py).
BODY_ERRORS = (400, 413, 415, 422)
DESCRIPTION = """\
The REST door of gochat-py. Every error answers `{"error": {"code", "message", "field"?}}`
with the status listed for its route; `code` is stable, `message` is for people.

Live messages, typing and read events travel over the WebSocket at `/ws`
(`ws://host:port/ws?token=<access_token>`), which OpenAPI does not describe: its frames
are in the README's "WebSocket protocol" section."""


@dataclass(frozen=True)
class QueryParam:
    name: str
    schema: Mapping[str, Any]
    description: str


@dataclass(frozen=True)
class Operation:
    """What the document says of one route: kept beside it in the route table."""

    summary: str
    response: type | None  # None: an empty body
    status: int = 200
    request: type | None = None  # a JSON body, decoded by rest/jsonio.py
    request_optional: bool = False  # refresh and logout: the refresh cookie stands in for it
    query: tuple[QueryParam, ...] = ()
    auth: bool = True
    errors: tuple[int, ...] = ()  # beyond what a body and a bearer token bring
    # Further answers that are not the error shape: status -> body type (None: no body).
    also: Mapping[int, type | None] = field(default_factory=dict)
    media_type: str = JSON
    # A file as the body (POST /media): a multipart form's `file` field, or the raw bytes.
    file_upload: bool = False


# A body or answer of raw bytes, whatever their type.
BINARY = {"type": "string", "format": "binary"}


class ApiRoute(Route):
    """A route of one method together with its Operation."""

    def __init__(
        self, path: str, endpoint: Callable[..., Any], method: str, operation: Operation
    ) -> None:
        super().__init__(path, endpoint, methods=[method])
        self.method = method
        self.operation = operation


def documented(routes: Iterable[BaseRoute]) -> list[ApiRoute]:
    """The routes that carry an Operation; a plain Route is left out of the document."""
    return [route for route in routes if isinstance(route, ApiRoute)]


def build_document(routes: Iterable[BaseRoute], version: str) -> dict[str, Any]:
    api_routes = documented(routes)
    bodies = sorted(_body_types(api_routes), key=lambda t: t.__qualname__)
    schemas, components = msgspec.json.schema_components(bodies, ref_template=REF_TEMPLATE)
    schema_of = dict(zip(bodies, schemas, strict=True))
    paths: dict[str, dict[str, Any]] = {}
    operation_ids: set[str] = set()
    for route in api_routes:
        if route.name in operation_ids:
            raise ValueError(f"two routes are named {route.name}: operationIds must be unique")
        operation_ids.add(route.name)
        item = paths.setdefault(route.path_format, {})
        item[route.method.lower()] = _operation(route, schema_of)
    return {
        "openapi": "3.1.0",
        "info": {"title": "gochat-py", "version": version, "description": DESCRIPTION},
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                SECURITY_SCHEME: {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
                COOKIE_SCHEME: {"type": "apiKey", "in": "cookie", "name": "access_token"},
            },
        },
    }


def _body_types(routes: Iterable[ApiRoute]) -> set[type]:
    types: set[type] = {ErrorBody}
    for route in routes:
        op = route.operation
        types.update(t for t in (op.request, op.response, *op.also.values()) if t is not None)
    return types


def _operation(route: ApiRoute, schema_of: Mapping[type, Any]) -> dict[str, Any]:
    op = route.operation
    parameters = [_path_parameter(name, c) for name, c in route.param_convertors.items()]
    parameters += [
        {
            "name": q.name,
            "in": "query",
            "required": False,
            "schema": dict(q.schema),
            "description": q.description,
        }
        for q in op.query
    ]
    responses = {str(op.status): _response(op.status, op.response, op.media_type, schema_of)}
    for status, body in op.also.items():
        responses[str(status)] = _response(status, body, JSON, schema_of)
    errors = set(op.errors)
    if op.request is not None or op.file_upload:
        errors.update(BODY_ERRORS)
    if op.auth:
        errors.add(401)
        if route.method in WRITE_METHODS:
            errors.add(403)  # csrf_rejected
    if op.request_optional:
        errors.add(403)  # csrf_rejected, when the refresh cookie is used
    for status in sorted(errors - set(op.also)):
        responses[str(status)] = _response(status, ErrorBody, JSON, schema_of)
    result: dict[str, Any] = {
        "operationId": route.name,
        "summary": op.summary,
        # The module the handler lives in is the resource: auth, conversations, health.
        "tags": [route.endpoint.__module__.rsplit(".", 1)[-1]],
        "responses": {status: responses[status] for status in sorted(responses)},
    }
    if parameters:
        result["parameters"] = parameters
    if op.request is not None:
        result["requestBody"] = {
            "required": not op.request_optional,
            "content": {JSON: {"schema": schema_of[op.request]}},
        }
    if op.file_upload:
        form = {"type": "object", "properties": {"file": BINARY}, "required": ["file"]}
        result["requestBody"] = {
            "required": True,
            "content": {"multipart/form-data": {"schema": form}, "*/*": {"schema": BINARY}},
        }
    if op.auth:
        # Either one: a bearer header, or the browser's cookie.
        result["security"] = [{SECURITY_SCHEME: []}, {COOKIE_SCHEME: []}]
    return result


def _path_parameter(name: str, convertor: Any) -> dict[str, Any]:
    if not isinstance(convertor, UUIDConvertor):
        raise ValueError(f"path parameter {name}: only uuid parameters are described")
    schema = {"type": "string", "format": "uuid"}
    return {"name": name, "in": "path", "required": True, "schema": schema}


def _response(
    status: int, body: type | None, media_type: str, schema_of: Mapping[type, Any]
) -> dict[str, Any]:
    response: dict[str, Any] = {"description": HTTPStatus(status).phrase}
    if body is not None:
        response["content"] = {media_type: {"schema": schema_of[body]}}
    elif media_type != JSON:
        response["content"] = {media_type: {"schema": BINARY}}
    return response


def document_route(routes: Iterable[BaseRoute], version: str, path: str = "/openapi.json") -> Route:
    """`GET /openapi.json`, its body built and encoded once, when the app is built."""
    body = msgspec.json.encode(build_document(routes, version))

    async def openapi_json(request: Request) -> Response:
        return Response(body, media_type=JSON)

    return Route(path, openapi_json, methods=["GET"])
