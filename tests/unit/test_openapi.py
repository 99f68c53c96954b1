"""The OpenAPI document describes every route of the table, with every method."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from gochat_py.rest.openapi import build_document
from gochat_py.rest.routes import routes

Operations = set[tuple[str, str]]


def table_operations(table: list[BaseRoute]) -> Operations:
    """(method, path) of every route, documented or not; HEAD is Starlette's echo of GET."""
    return {
        (method.lower(), route.path_format)
        for route in table
        if isinstance(route, Route)
        for method in (route.methods or set()) - {"HEAD"}
    }


def document_operations(document: dict[str, Any]) -> Operations:
    return {(method, path) for path, item in document["paths"].items() for method in item}


def test_every_route_of_the_table_is_in_the_document_with_every_method() -> None:
    document = build_document(routes, "test")
    assert document_operations(document) == table_operations(routes)


def test_a_route_without_its_description_is_caught() -> None:
    async def undocumented(request: Request) -> Response:
        return Response()

    table = [*routes, Route("/api/v1/undocumented", undocumented, methods=["GET"])]
    document = build_document(table, "test")
    assert table_operations(table) - document_operations(document) == {
        ("get", "/api/v1/undocumented")
    }


def test_authenticated_routes_ask_for_a_bearer_token_or_the_cookie_and_answer_401() -> None:
    document = build_document(routes, "test")
    me = document["paths"]["/api/v1/auth/me"]["get"]
    assert me["security"] == [{"bearerAuth": []}, {"cookieAuth": []}]
    assert "401" in me["responses"]
    assert "security" not in document["paths"]["/api/v1/auth/login"]["post"]
    schemes = document["components"]["securitySchemes"]
    assert schemes["bearerAuth"] == {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    assert schemes["cookieAuth"] == {"type": "apiKey", "in": "cookie", "name": "access_token"}


def test_cookie_authenticated_writes_and_cookie_refreshes_document_the_csrf_refusal() -> None:
    paths = build_document(routes, "test")["paths"]
    assert "403" in paths["/api/v1/conversations"]["post"]["responses"]
    assert "403" not in paths["/api/v1/auth/me"]["get"]["responses"]
    for action in ("refresh", "logout"):
        operation = paths[f"/api/v1/auth/{action}"]["post"]
        assert operation["requestBody"]["required"] is False  # the refresh cookie stands in
        assert "403" in operation["responses"]
    assert paths["/api/v1/auth/login"]["post"]["requestBody"]["required"] is True


def test_path_and_query_parameters_are_described() -> None:
    document = build_document(routes, "test")
    history = document["paths"]["/api/v1/conversations/{conversation_id}/messages"]["get"]
    by_name = {p["name"]: p for p in history["parameters"]}
    assert by_name["conversation_id"]["in"] == "path"
    assert by_name["conversation_id"]["schema"] == {"type": "string", "format": "uuid"}
    assert {"limit", "cursor", "after_seq"} <= {n for n, p in by_name.items() if p["in"] == "query"}


def test_metrics_are_plain_text() -> None:
    document = build_document(routes, "test")
    content = document["paths"]["/metrics"]["get"]["responses"]["200"]["content"]
    assert list(content) == ["text/plain; version=0.0.4"]
