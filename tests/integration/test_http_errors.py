from __future__ import annotations

import httpx


async def test_an_unknown_route_gets_the_error_shape(api: httpx.AsyncClient) -> None:
    response = await api.get("/api/v1/nothing/here")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/json"
    assert response.json()["error"]["code"] == "not_found"


async def test_a_wrong_method_is_405_with_allow_and_the_error_shape(api: httpx.AsyncClient) -> None:
    response = await api.delete("/api/v1/auth/login")
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"
    assert "POST" in response.headers["allow"]


async def test_every_response_carries_a_request_id(api: httpx.AsyncClient) -> None:
    first = await api.get("/api/v1/health")
    second = await api.get("/api/v1/health")
    assert first.headers["x-request-id"] != second.headers["x-request-id"]


async def test_a_sane_client_request_id_is_kept_and_a_hostile_one_replaced(
    api: httpx.AsyncClient,
) -> None:
    kept = await api.get("/api/v1/health", headers={"x-request-id": "trace-123"})
    assert kept.headers["x-request-id"] == "trace-123"
    replaced = await api.get("/api/v1/health", headers={"x-request-id": "a b\tc" + "x" * 100})
    assert replaced.headers["x-request-id"] != "a b\tc" + "x" * 100
    assert len(replaced.headers["x-request-id"]) == 32
