"""The route table: every URL the server answers, as data."""

from __future__ import annotations

from starlette.routing import BaseRoute, Route

from gochat_py.endpoints import auth, health

API = "/api/v1"

routes: list[BaseRoute] = [
    Route(f"{API}/health", health.health, methods=["GET"]),
    Route(f"{API}/health/ready", health.ready, methods=["GET"]),
    Route("/metrics", health.metrics, methods=["GET"]),
    Route(f"{API}/auth/register", auth.register, methods=["POST"]),
    Route(f"{API}/auth/login", auth.login, methods=["POST"]),
    Route(f"{API}/auth/refresh", auth.refresh, methods=["POST"]),
    Route(f"{API}/auth/logout", auth.logout, methods=["POST"]),
    Route(f"{API}/auth/me", auth.me, methods=["GET"]),
]
