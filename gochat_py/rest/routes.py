"""The route table: every URL the server answers, as data."""

from __future__ import annotations

from starlette.routing import BaseRoute, Route

from gochat_py.rest import auth, conversations, health

API = "/api/v1"
# The WebSocket endpoint (websocket/endpoint.py) is served ahead of this table: app.SocketsFirst.
SOCKET_PATH = "/ws"

routes: list[BaseRoute] = [
    Route(f"{API}/health", health.health, methods=["GET"]),
    Route(f"{API}/health/ready", health.ready, methods=["GET"]),
    Route("/metrics", health.metrics, methods=["GET"]),
    Route(f"{API}/auth/register", auth.register, methods=["POST"]),
    Route(f"{API}/auth/login", auth.login, methods=["POST"]),
    Route(f"{API}/auth/refresh", auth.refresh, methods=["POST"]),
    Route(f"{API}/auth/logout", auth.logout, methods=["POST"]),
    Route(f"{API}/auth/me", auth.me, methods=["GET"]),
    Route(f"{API}/conversations", conversations.create, methods=["POST"]),
    Route(f"{API}/conversations", conversations.list_conversations, methods=["GET"]),
    Route(f"{API}/conversations/{{conversation_id:uuid}}", conversations.details, methods=["GET"]),
    Route(
        f"{API}/conversations/{{conversation_id:uuid}}/messages",
        conversations.messages,
        methods=["GET"],
    ),
    Route(
        f"{API}/conversations/{{conversation_id:uuid}}/messages",
        conversations.send_message,
        methods=["POST"],
    ),
    Route(
        f"{API}/conversations/{{conversation_id:uuid}}/read",
        conversations.mark_read,
        methods=["POST"],
    ),
    Route(
        f"{API}/conversations/{{conversation_id:uuid}}/members",
        conversations.add_members,
        methods=["POST"],
    ),
    Route(
        f"{API}/conversations/{{conversation_id:uuid}}/members/{{user_id:uuid}}",
        conversations.remove_member,
        methods=["DELETE"],
    ),
]
