"""A member's REST requests about a conversation's messages: send, edit, delete and read,
as the tests make them. `user` is a register answer ({user, tokens})."""

from __future__ import annotations

from typing import Any

import httpx

from tests.harness import bearer


def conversation_url(conversation_id: str, tail: str = "") -> str:
    return f"/api/v1/conversations/{conversation_id}{tail}"


def messages_url(conversation_id: str, message_id: str | None = None) -> str:
    base = conversation_url(conversation_id, "/messages")
    return base if message_id is None else f"{base}/{message_id}"


async def post_message(
    api: httpx.AsyncClient, user: dict[str, Any], conversation_id: str, **body: Any
) -> httpx.Response:
    """The answer to a send with this body, whatever it is."""
    return await api.post(messages_url(conversation_id), json=body, headers=bearer(user["tokens"]))


async def send(
    api: httpx.AsyncClient, user: dict[str, Any], conversation_id: str, text: str, **extra: Any
) -> Any:
    """The message sent, once the server has accepted it."""
    response = await post_message(api, user, conversation_id, content=text, **extra)
    assert response.status_code == 201, response.text
    return response.json()


async def edit(
    api: httpx.AsyncClient, user: dict[str, Any], conversation_id: str, message_id: str, text: str
) -> httpx.Response:
    return await api.patch(
        messages_url(conversation_id, message_id),
        json={"content": text},
        headers=bearer(user["tokens"]),
    )


async def delete(
    api: httpx.AsyncClient, user: dict[str, Any], conversation_id: str, message_id: str
) -> httpx.Response:
    return await api.delete(
        messages_url(conversation_id, message_id), headers=bearer(user["tokens"])
    )


async def history(
    api: httpx.AsyncClient, user: dict[str, Any], conversation_id: str
) -> list[dict[str, Any]]:
    """The newest page of the conversation's messages, newest first."""
    response = await api.get(messages_url(conversation_id), headers=bearer(user["tokens"]))
    assert response.status_code == 200, response.text
    messages: list[dict[str, Any]] = response.json()["messages"]
    return messages


async def timeline(
    api: httpx.AsyncClient, user: dict[str, Any], conversation_id: str
) -> list[dict[str, Any]]:
    """The conversation's messages from its first, oldest first."""
    response = await api.get(
        messages_url(conversation_id) + "?after_seq=0", headers=bearer(user["tokens"])
    )
    assert response.status_code == 200, response.text
    messages: list[dict[str, Any]] = response.json()["messages"]
    return messages
