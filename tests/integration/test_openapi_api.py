"""`/openapi.json` validates as OpenAPI 3.1 and matches what the server answers; `/docs` is
served whole by the server."""

from __future__ import annotations

import copy
import re
import uuid
from typing import Any

import httpx
import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import OpenAPIV31SpecValidator, validate

from tests.harness import bearer, register

API = "/api/v1"


async def fetch_document(api: httpx.AsyncClient) -> dict[str, Any]:
    response = await api.get("/openapi.json")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    document: dict[str, Any] = response.json()
    return document


def _closed(schema: Any) -> None:
    """Objects with listed properties refuse others: an undocumented field fails too."""
    if isinstance(schema, dict):
        if schema.get("type") == "object" and "properties" in schema:
            schema.setdefault("additionalProperties", False)
        for value in schema.values():
            _closed(value)
    elif isinstance(schema, list):
        for value in schema:
            _closed(value)


def check_response(
    document: dict[str, Any], method: str, path: str, response: httpx.Response
) -> None:
    """The live response is one the document lists for the route, and fits its schema."""
    responses = document["paths"][path][method]["responses"]
    assert str(response.status_code) in responses, response.text
    media = responses[str(response.status_code)]["content"]["application/json"]
    components = copy.deepcopy(document["components"])
    _closed(components)
    schema = {**media["schema"], "components": components}
    validator = Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
    errors = [
        f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(response.json())
    ]
    assert errors == []


async def test_the_document_is_valid_openapi_3_1(api: httpx.AsyncClient) -> None:
    document = await fetch_document(api)
    assert document["openapi"].startswith("3.1")
    validate(document, cls=OpenAPIV31SpecValidator)
    assert "/ws" in document["info"]["description"]


async def test_live_responses_fit_their_documented_schemas(api: httpx.AsyncClient) -> None:
    document = await fetch_document(api)
    alice_response = await api.post(
        f"{API}/auth/register",
        json={"email": "schema_a@example.com", "username": "schema_a", "password": "12345678"},
    )
    check_response(document, "post", f"{API}/auth/register", alice_response)
    alice = alice_response.json()
    bob = await register(api)

    created = await api.post(
        f"{API}/conversations",
        json={"participant_id": bob["user"]["id"]},
        headers=bearer(alice["tokens"]),
    )
    check_response(document, "post", f"{API}/conversations", created)
    again = await api.post(
        f"{API}/conversations",
        json={"participant_email": bob["user"]["email"]},
        headers=bearer(alice["tokens"]),
    )
    assert again.status_code == 200
    check_response(document, "post", f"{API}/conversations", again)
    unknown = await api.post(
        f"{API}/conversations",
        json={"participant_email": "nobody@example.com"},
        headers=bearer(alice["tokens"]),
    )
    assert unknown.status_code == 404
    check_response(document, "post", f"{API}/conversations", unknown)
    conversation_id = created.json()["conversation"]["id"]
    check_response(
        document,
        "get",
        f"{API}/auth/me",
        await api.get(f"{API}/auth/me", headers=bearer(bob["tokens"])),
    )
    messages = f"{API}/conversations/{{conversation_id}}/messages"

    sent = await api.post(
        messages.format(conversation_id=conversation_id),
        json={"content": "hello", "client_msg_id": "c-1"},
        headers=bearer(alice["tokens"]),
    )
    check_response(document, "post", messages, sent)

    page = await api.get(
        messages.format(conversation_id=conversation_id), headers=bearer(bob["tokens"])
    )
    assert page.json()["messages"]
    check_response(document, "get", messages, page)

    read = await api.post(
        f"{API}/conversations/{conversation_id}/read",
        json={"seq": 1},
        headers=bearer(bob["tokens"]),
    )
    check_response(document, "post", f"{API}/conversations/{{conversation_id}}/read", read)

    listed = await api.get(f"{API}/conversations", headers=bearer(bob["tokens"]))
    assert listed.json()["count"] == 1
    check_response(document, "get", f"{API}/conversations", listed)
    one = await api.get(f"{API}/conversations/{conversation_id}", headers=bearer(bob["tokens"]))
    check_response(document, "get", f"{API}/conversations/{{conversation_id}}", one)

    refused = await api.get(f"{API}/conversations", headers={"Authorization": "Bearer x"})
    check_response(document, "get", f"{API}/conversations", refused)
    for path in (f"{API}/health", f"{API}/health/ready"):
        check_response(document, "get", path, await api.get(path))


async def test_user_routes_answer_what_the_document_says(api: httpx.AsyncClient) -> None:
    document = await fetch_document(api)
    alice, bob = await register(api), await register(api)
    me, one, users = f"{API}/users/me", f"{API}/users/{{user_id}}", f"{API}/users"
    headers = bearer(alice["tokens"])
    check_response(document, "get", me, await api.get(me, headers=headers))
    changed = await api.patch(me, json={"display_name": "Alice", "bio": None}, headers=headers)
    assert changed.status_code == 200
    check_response(document, "patch", me, changed)
    refused = await api.patch(me, json={"nickname": "x"}, headers=headers)
    assert refused.status_code == 422
    check_response(document, "patch", me, refused)
    profile = await api.get(one.format(user_id=bob["user"]["id"]), headers=headers)
    check_response(document, "get", one, profile)
    missing = await api.get(one.format(user_id=uuid.uuid4()), headers=headers)
    check_response(document, "get", one, missing)
    found = await api.get(users, params={"q": bob["user"]["username"][:4]}, headers=headers)
    assert found.json()["users"]
    check_response(document, "get", users, found)
    for params in ({"q": "a"}, {"q": "ab", "cursor": "nope"}):
        check_response(document, "get", users, await api.get(users, params=params, headers=headers))


async def test_a_field_the_document_does_not_list_fails_the_check(
    api: httpx.AsyncClient,
) -> None:
    document = await fetch_document(api)
    del document["components"]["schemas"]["Liveness"]["properties"]["status"]
    with pytest.raises(AssertionError):
        check_response(document, "get", f"{API}/health", await api.get(f"{API}/health"))


_ASSET = re.compile(r'(?:src|href)="([^"]+)"')
_CONTENT_TYPES = {".css": "text/css", ".js": "javascript", ".png": "image/png"}


async def test_docs_page_is_served_whole_by_the_server(api: httpx.AsyncClient) -> None:
    response = await api.get("/docs")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    html = response.text
    assert not re.search(r"(https?:)?//[a-z0-9]", html, re.IGNORECASE), "an external host"
    assert '"/openapi.json"' in html
    assets = _ASSET.findall(html)
    assert {a.rsplit(".", 1)[-1] for a in assets} == {"css", "js", "png"}
    for asset in assets:
        assert asset.startswith("/docs/static/"), asset
        served = await api.get(asset)
        assert served.status_code == 200, asset
        suffix = asset[asset.rindex(".") :]
        assert _CONTENT_TYPES[suffix] in served.headers["content-type"], asset
        assert served.content
