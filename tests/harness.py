"""Helpers the tests share: environments, servers on free ports, account set-up, polling."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar, TypeVar
from urllib.parse import urlsplit

import httpx
import uvicorn
from redis.asyncio import Redis
from starlette.types import ASGIApp
from websockets.asyncio.client import connect as websocket_connect
from websockets.typing import Subprotocol

from gochat_py.app import build_app, uvicorn_options
from gochat_py.redis import keys
from gochat_py.settings import Settings
from gochat_py.websocket.negotiation import SUBPROTOCOL

ROOT = Path(__file__).resolve().parent.parent
TEST_JWT_SECRET = "test-secret-that-is-long-enough-for-hs256-0123456789"
PASSWORD = "correct horse battery"
T = TypeVar("T")


def server_environment(database_url: str, redis_url: str, **overrides: str) -> dict[str, str]:
    """Settings for a test server: cheap argon2 so the suite is fast, everything else real."""
    env = {
        "ENV": "test",
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "JWT_SECRET": TEST_JWT_SECRET,
        "ARGON2_TIME_COST": "1",
        "ARGON2_MEMORY_KIB": "1024",
        "ARGON2_PARALLELISM": "1",
        "LOG_LEVEL": "warning",
        # Tests send in bursts; the flood test sets the production budget itself.
        "WS_RATE": "5000",
        "WS_BURST": "5000",
    }
    env.update(overrides)
    return env


class _TestServer(uvicorn.Server):
    """uvicorn's server, stopped the moment its test is done with it. uvicorn's own main
    loop looks at `should_exit` every 0.1 s, and its shutdown pauses 0.1 s before it waits
    for the connections: 0.2 s the suite would pay once per server, some 700 times."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.exit = asyncio.Event()

    async def main_loop(self) -> None:
        await self.on_tick(0)  # the default headers; a test's server lives for seconds
        await self.exit.wait()

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        # uvicorn's shutdown without the pause: the connections are still told to finish
        # and waited for, and the lifespan's shutdown runs (marks are flushed there).
        for server in self.servers:
            server.close()
        for connection in list(self.server_state.connections):
            connection.shutdown()
        await self._wait_tasks_to_complete()
        await self.lifespan.shutdown()


@contextlib.asynccontextmanager
async def serve_asgi(app: ASGIApp, **options: Any) -> AsyncIterator[str]:
    """Run `app` under a real uvicorn on a free loopback port, in this event loop; yields
    its base URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = _TestServer(uvicorn.Config(app, **options))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        await poll_until(lambda: _started(server, task), what="uvicorn to start")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.exit.set()
        await task
        sock.close()


def serve_app(settings: Settings) -> contextlib.AbstractAsyncContextManager[str]:
    """Run the gochat app with `settings` under a real uvicorn, its lifespan included."""
    return serve_asgi(build_app(settings), lifespan="on", **uvicorn_options(settings))


async def _started(server: uvicorn.Server, task: asyncio.Task[None]) -> bool:
    if task.done():
        task.result()
        raise RuntimeError("uvicorn exited during start-up")
    return server.started


async def poll_until(
    check: Callable[[], Awaitable[T]], timeout: float = 15.0, what: str = "condition"
) -> T:
    """Await `check` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.02)


def unique_name(prefix: str = "user") -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


async def register(client: httpx.AsyncClient, name: str | None = None) -> dict[str, Any]:
    """A new account; returns the register response body ({user, tokens})."""
    name = name or unique_name()
    response = await client.post(
        "/api/v1/auth/register",
        json={"email": f"{name}@example.com", "username": name, "password": PASSWORD},
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def login(client: httpx.AsyncClient, user: Mapping[str, Any]) -> dict[str, Any]:
    """A new login session of `user` (a register answer's `user`): its tokens."""
    response = await client.post(
        "/api/v1/auth/login", json={"email": user["email"], "password": PASSWORD}
    )
    assert response.status_code == 200, response.text
    tokens: dict[str, Any] = response.json()["tokens"]
    return tokens


def error_code(response: httpx.Response) -> str:
    """The `code` of an error answer, which must have the error shape."""
    body = response.json()
    assert set(body) >= {"error"} and set(body["error"]) >= {"code", "message"}, body
    code: str = body["error"]["code"]
    return code


def bearer(tokens: Mapping[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens['access_token']}"}


class ServerProcess:
    """`python -m gochat_py` as a real subprocess, its output captured to a file."""

    # Every process started during the current test: a failing test's report shows their
    # logs' tails (conftest.py), where CI keeps nothing else of them.
    started: ClassVar[list[ServerProcess]] = []

    def __init__(
        self,
        env: Mapping[str, str],
        log_path: Path,
        argv: list[str] | None = None,
        module: str = "gochat_py",
        cwd: Path = ROOT,
    ) -> None:
        self.port = int(env.get("SERVER_PORT", "0"))
        self.log_path = log_path
        full_env = {**os.environ, **env}
        with log_path.open("wb") as log:
            self.process = subprocess.Popen(
                argv or [sys.executable, "-m", module],
                env=full_env,
                cwd=cwd,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        ServerProcess.started.append(self)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def wait_healthy(self, timeout: float = 30.0) -> None:
        async def healthy() -> bool:
            if self.process.poll() is not None:
                raise AssertionError(f"server exited: {self.output()}")
            try:
                async with httpx.AsyncClient() as client:
                    response = await client.get(f"{self.base_url}/api/v1/health", timeout=1)
                return response.status_code == 200
            except httpx.HTTPError:
                return False

        await poll_until(healthy, timeout, "the server to answer /health")

    def stop(self, sig: signal.Signals = signal.SIGTERM, timeout: float = 20.0) -> int:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        return self.process.returncode

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.output().splitlines()[-lines:])
        except OSError as exc:
            return f"(no log: {exc})"


def ws_url(client: httpx.AsyncClient, token: str | None = None) -> str:
    base = str(client.base_url).replace("http://", "ws://").rstrip("/")
    return f"{base}/ws" + (f"?token={token}" if token else "")


def plain_connect(uri: str, **options: Any) -> websocket_connect:
    """A gochat client: a socket that asks for nothing.

    It keeps every frame it has not read yet (no `max_queue`): a test reads only the frames
    it asserts on, and past `max_queue` unread frames websockets stops reading the
    connection, so the server's close frame would go unseen and leaving the socket would
    wait out `close_timeout` (10 s). A test about a slow reader sets `max_queue` itself."""
    return websocket_connect(uri, **{"max_queue": None, **options})


def connect(uri: str, **options: Any) -> websocket_connect:
    """A socket that asks for every frame (the gochat-py.v1 subprotocol), as our own clients
    do; `plain_connect` is a gochat client that asks for nothing."""
    return plain_connect(uri, subprotocols=[Subprotocol(SUBPROTOCOL)], **options)


async def send_frame(socket: Any, **frame: Any) -> None:
    await socket.send(json.dumps(frame, default=str))


def upgrade_request(url: str, **headers: str) -> bytes:
    """A WebSocket upgrade request for `ws://host:port/path?query`, written by hand for
    clients that misbehave on purpose. `headers` (underscores for dashes) override the
    usual ones; an empty value leaves one out."""
    parts = urlsplit(url)
    fields = {
        "Host": f"{parts.hostname}:{parts.port}",
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Key": base64.b64encode(os.urandom(16)).decode(),
        "Sec-WebSocket-Version": "13",
        **{name.replace("_", "-"): value for name, value in headers.items()},
    }
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    head = f"GET {target} HTTP/1.1\r\n" + "".join(
        f"{name}: {value}\r\n" for name, value in fields.items() if value
    )
    return head.encode() + b"\r\n"


PRESENCE_FRAMES = frozenset({"presence", "presence_list"})


def is_presence(frame: dict[str, Any]) -> bool:
    """A presence frame, in either shape: gochat-py's names it in `event`, gochat's in `type`."""
    return frame.get("event") in PRESENCE_FRAMES or frame.get("type") in PRESENCE_FRAMES


def is_message(frame: dict[str, Any]) -> bool:
    """A chat message frame: gochat's message frames carry no `event` field (and gochat's
    presence frames, which carry none either, are told apart by their `type`)."""
    return "event" not in frame and not is_presence(frame)


def not_presence(frame: dict[str, Any]) -> bool:
    return not is_presence(frame)


async def next_frame(
    socket: Any, predicate: Callable[[dict[str, Any]], bool] = not_presence, timeout: float = 10.0
) -> dict[str, Any]:
    """The first frame from `socket` that matches, skipping others; fails after `timeout`.
    By default any frame but presence, which sockets get whenever someone they see comes
    or goes (tests/integration/test_presence.py is about those)."""
    async with asyncio.timeout(timeout):
        while True:
            frame: dict[str, Any] = json.loads(await socket.recv())
            if predicate(frame):
                return frame


async def pong(socket: Any) -> bool:
    """Whether the socket is still served: a `ping` frame is answered."""
    await socket.send(json.dumps({"event": "ping"}))
    return (await next_frame(socket, lambda f: f.get("event") == "pong"))["event"] == "pong"


async def create_direct(
    client: httpx.AsyncClient, tokens: Mapping[str, Any], other_id: str
) -> dict[str, Any]:
    """The pair's conversation: the `conversation` of the answer, whose `id` callers want."""
    response = await client.post(
        "/api/v1/conversations", json={"participant_id": other_id}, headers=bearer(tokens)
    )
    assert response.status_code in (200, 201), response.text
    conversation: dict[str, Any] = response.json()["conversation"]
    return conversation


async def post_messages(
    client: httpx.AsyncClient, tokens: Mapping[str, Any], conversation_id: str, count: int
) -> None:
    """`count` messages sent over REST one after the other, contents `m0`, `m1`, …"""
    for i in range(count):
        response = await client.post(
            f"/api/v1/conversations/{conversation_id}/messages",
            json={"content": f"m{i}"},
            headers=bearer(tokens),
        )
        assert response.status_code == 201, response.text


async def create_group(
    client: httpx.AsyncClient, tokens: Mapping[str, Any], name: str, member_ids: list[str]
) -> dict[str, Any]:
    """The new group: the `conversation` of the answer."""
    response = await client.post(
        "/api/v1/conversations",
        json={"name": name, "participant_ids": member_ids},
        headers=bearer(tokens),
    )
    assert response.status_code == 201, response.text
    conversation: dict[str, Any] = response.json()["conversation"]
    return conversation


async def live_subscribers(redis: Redis, conversation_id: str) -> int:
    """How many server processes have the conversation's live channel subscribed."""
    channels = await redis.pubsub_channels(f"{keys.PREFIX}:*:conversation:{conversation_id}")
    if not channels:
        return 0
    [(_, count)] = await redis.pubsub_numsub(*channels)
    return int(count)


END_MARKER = "gochat-test-end-of-commands"


async def redis_commands_during(
    redis: Redis, redis_url: str, action: Callable[[], Awaitable[None]]
) -> list[dict[str, Any]]:
    """Every command Redis ran while `action` ran (MONITOR's reports, scripts' own calls
    included). `action` must await the replies of what it caused, acks for sends."""
    await redis.ping()  # the marker's connection, opened before MONITOR sees its handshake
    monitor_client = Redis.from_url(redis_url)
    commands: list[dict[str, Any]] = []
    # Entering waits for MONITOR's OK: every command after that is reported, in order.
    async with monitor_client.monitor() as monitor:
        await action()
        # Everything awaited came before the marker, so MONITOR reports it after them all.
        await redis.echo(END_MARKER)
        async with asyncio.timeout(10):
            async for command in monitor.listen():
                if command["command"] == f"ECHO {END_MARKER}":
                    break
                commands.append(command)
    await monitor_client.aclose()
    return commands
