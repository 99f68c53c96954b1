"""People in the integration tests: friend requests, contacts and blocks over REST, and
two API processes sharing the suite's PostgreSQL and Redis."""

from __future__ import annotations

import json
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection

from tests.harness import bearer, next_frame

API = "/api/v1"
CONTACT_EVENTS = ("contact_request", "contact_request_updated", "contact_removed")


async def ask(
    api: httpx.AsyncClient, sender: dict[str, Any], recipient: dict[str, Any]
) -> httpx.Response:
    return await api.post(
        f"{API}/contacts/requests",
        json={"user_id": recipient["user"]["id"]},
        headers=bearer(sender["tokens"]),
    )


async def decide(
    api: httpx.AsyncClient, user: dict[str, Any], request_id: str, verb: str
) -> httpx.Response:
    return await api.post(
        f"{API}/contacts/requests/{request_id}/{verb}", headers=bearer(user["tokens"])
    )


async def contact_ids(api: httpx.AsyncClient, user: dict[str, Any]) -> list[str]:
    response = await api.get(f"{API}/contacts", headers=bearer(user["tokens"]))
    assert response.status_code == 200, response.text
    return [c["user"]["id"] for c in response.json()["contacts"]]


async def pending(api: httpx.AsyncClient, user: dict[str, Any], direction: str) -> list[str]:
    response = await api.get(
        f"{API}/contacts/requests",
        params={"direction": direction},
        headers=bearer(user["tokens"]),
    )
    assert response.status_code == 200, response.text
    return [r["id"] for r in response.json()["requests"]]


def ref(user: dict[str, Any]) -> dict[str, str]:
    """A registered user as the people routes show them: id and username, no email."""
    return {"id": user["user"]["id"], "username": user["user"]["username"]}


async def block(
    api: httpx.AsyncClient, blocker: dict[str, Any], blocked: dict[str, Any]
) -> httpx.Response:
    return await api.post(
        f"{API}/blocks", json={"user_id": blocked["user"]["id"]}, headers=bearer(blocker["tokens"])
    )


async def unblock(
    api: httpx.AsyncClient, blocker: dict[str, Any], blocked: dict[str, Any]
) -> httpx.Response:
    return await api.delete(
        f"{API}/blocks/{blocked['user']['id']}", headers=bearer(blocker["tokens"])
    )


async def post_message(
    api: httpx.AsyncClient, sender: dict[str, Any], conversation_id: str, content: str
) -> httpx.Response:
    return await api.post(
        f"{API}/conversations/{conversation_id}/messages",
        json={"content": content},
        headers=bearer(sender["tokens"]),
    )


async def say(socket: ClientConnection, conversation_id: str, content: str) -> dict[str, Any]:
    await socket.send(json.dumps({"conversation_id": conversation_id, "content": content}))
    return await next_frame(socket, lambda f: f.get("event") in ("ack", "error"))
