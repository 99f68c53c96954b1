"""`/ws`: one socket per device. Reader: frame → decode → throttle → act → reply.
Writer: a bounded queue of frames for this device, drained in order."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid

import asyncpg
from loguru import logger
from redis.exceptions import RedisError
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect

from gochat_py.errors import Backlogged, Unauthorized
from gochat_py.ids import ConversationId, UserId
from gochat_py.metrics import Metrics
from gochat_py.postgres.conversations import Conversations
from gochat_py.postgres.users import Users
from gochat_py.realtime.hub import Hub
from gochat_py.rest.authn import bearer_token
from gochat_py.rest.error_responses import DEPENDENCY_DOWN
from gochat_py.usecases.auth import Auth
from gochat_py.usecases.chat import Chat
from gochat_py.websocket import frames
from gochat_py.websocket.frames import (
    WS_1008_POLICY_VIOLATION,
    WS_1011_INTERNAL_ERROR,
    WS_1013_TRY_AGAIN_LATER,
    FrameError,
    Ping,
    Pong,
    Read,
    SendMessage,
    Typing,
)
from gochat_py.websocket.throttle import Throttle

ABUSE_WINDOW = 10.0  # seconds over which throttled frames are counted
ABUSE_LIMIT = 100  # throttled frames in one window that mark a flood, not an eager client
CLOSE_TIMEOUT = 5.0  # a peer that does not answer our close frame in time is dropped
DRAIN_TIMEOUT = 2.0  # how long queued frames may take to go out before a policy close


class SocketSession:
    """One connected device: its identity, its outgoing queue and its close.

    The queue is a list and a wake-up future rather than an asyncio.Queue: every delivery
    passes through it, and the Queue's bookkeeping (getters, task counts) was a tenth of a
    busy server's CPU (profiled). A list, not a deque: an empty deque holds a 624-byte block,
    and most sockets have nothing queued most of the time."""

    def __init__(
        self,
        websocket: WebSocket,
        send: Send,
        user: UserId,
        username: str,
        queue_size: int,
        metrics: Metrics,
    ) -> None:
        self.websocket = websocket
        self._send = send
        self.user = user
        self.username = username
        self._frames: list[str] = []  # the writer swaps it for a new one when it wakes
        self._queued = 0  # frames delivered and not yet written, the writer's included
        self._limit = queue_size
        self._wakeup: asyncio.Future[None] | None = None  # set while the writer waits
        self._drained: asyncio.Future[None] | None = None  # a draining close waits on it
        self._metrics = metrics
        self._closing: asyncio.Task[None] | None = None
        self.log = logger.bind(conn_id=uuid.uuid4().hex[:12], user_id=str(user))

    def deliver(self, frame: str) -> None:
        if self._closing is not None:
            return
        if self._queued >= self._limit:
            self._metrics.ws_slow_consumers.inc()
            self.log.warning("slow_consumer_closed", queued=self._queued)
            self.close(WS_1013_TRY_AGAIN_LATER, "send queue full")
            return
        self._frames.append(frame)
        self._queued += 1
        wakeup = self._wakeup
        if wakeup is not None and not wakeup.done():
            wakeup.set_result(None)

    def reply(self, frame: frames.Ack | frames.Error | Pong) -> None:
        self.deliver(frames.encode(frame))

    def close(self, code: int, reason: str, drain: bool = False) -> None:
        """Close once; with `drain`, the frames already queued (the errors that explain
        the close) go out first."""
        if self._closing is None:
            self._closing = asyncio.create_task(self._close(code, reason, drain))

    async def _close(self, code: int, reason: str, drain: bool) -> None:
        if drain and self._queued:
            self._drained = asyncio.get_running_loop().create_future()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._drained, DRAIN_TIMEOUT)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.websocket.close(code, reason), CLOSE_TIMEOUT)

    async def finish(self) -> None:
        """Wait for a close this side started, so its frames are not cut off."""
        if self._closing is not None:
            await self._closing

    async def write_loop(self) -> None:
        send = self._send
        loop = asyncio.get_running_loop()
        while True:
            if not self._frames:
                if self._drained is not None and not self._drained.done():
                    self._drained.set_result(None)
                self._wakeup = loop.create_future()
                await self._wakeup
                self._wakeup = None
            # Everything queued meanwhile goes without a trip through the scheduler: a send
            # into a writable transport does not suspend.
            batch, self._frames = self._frames, []
            for frame in batch:
                await send({"type": "websocket.send", "text": frame})
                self._queued -= 1  # after the send: a frame in flight still counts as queued


async def _identify(websocket: WebSocket) -> tuple[UserId, str, list[ConversationId]]:
    """Who connects, and the conversations whose frames their socket must get."""
    auth: Auth = websocket.state.auth
    users: Users = websocket.state.users
    conversations: Conversations = websocket.state.conversations
    token = websocket.query_params.get("token") or bearer_token(websocket)
    if not token:
        raise Unauthorized("missing token", code="missing_token")
    claims = await auth.authenticate(token)
    account = await users.by_id(claims.user_id)
    if account is None:
        raise Unauthorized("the account no longer exists", code="invalid_token")
    listing = await conversations.ids_of_members([claims.user_id])
    return claims.user_id, account.user.username, listing.get(claims.user_id, [])


class SocketApp:
    """`/ws` as a plain ASGI app: Starlette's WebSocket for the handshake, reading and
    closing; the server's own `send` for outgoing frames, which skips Starlette's per-frame
    state checks and exception wrapper (7 % of a busy server's CPU, profiled)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await websocket_endpoint(WebSocket(scope, receive=receive, send=send), send)


async def websocket_endpoint(websocket: WebSocket, send: Send) -> None:
    try:
        user, username, conversations = await _identify(websocket)
    except Unauthorized as exc:
        # Before accept: the handshake is refused (HTTP 403) and the reason is the code.
        logger.info("socket_refused", reason=exc.code)
        await websocket.close(WS_1008_POLICY_VIOLATION, exc.code)
        return
    except DEPENDENCY_DOWN as exc:
        logger.warning("socket_refused", reason="unavailable", error=type(exc).__name__)
        await websocket.close(WS_1013_TRY_AGAIN_LATER, "unavailable")
        return
    state = websocket.state
    metrics: Metrics = state.metrics
    hub: Hub = state.hub
    queue_size = state.settings.ws_send_queue
    session = SocketSession(websocket, send, user, username, queue_size, metrics)
    # Subscribe first, then accept: a frame published once the client sees the socket
    # open cannot miss it (frames arriving before accept wait in the session's queue).
    async with hub.attached(session, conversations):
        try:
            await websocket.accept()
        except (WebSocketDisconnect, OSError):  # ASGI servers raise an OSError for a gone peer
            session.log.info("socket_gone_before_accept")
            return
        session.log.info("socket_opened")
        writer = asyncio.create_task(session.write_loop())
        try:
            await _read_loop(session, state.chat, state.throttle, metrics)
        except WebSocketDisconnect:
            pass
        finally:
            await session.finish()
            writer.cancel()
            with contextlib.suppress(BaseException):
                await writer
    session.log.info("socket_closed")


async def _read_loop(
    session: SocketSession, chat: Chat, throttle: Throttle, metrics: Metrics
) -> None:
    window_start, throttled = time.monotonic(), 0
    while True:
        message = await session.websocket.receive()
        if message["type"] == "websocket.disconnect":
            return
        data = message.get("text") or message.get("bytes") or b""
        wait = throttle.take(session.user)
        if wait > 0:
            now = time.monotonic()
            if now - window_start > ABUSE_WINDOW:
                window_start, throttled = now, 0
            throttled += 1
            metrics.ws_frames_rejected.labels("rate_limited").inc()
            if throttled > ABUSE_LIMIT:
                session.log.warning("flood_closed", throttled=throttled)
                session.close(WS_1008_POLICY_VIOLATION, "rate limit exceeded", drain=True)
                return
            session.reply(
                frames.Error(code="rate_limited", message="slow down", retry_after=round(wait, 3))
            )
            continue
        frame: frames.ClientFrame | None = None
        try:
            frame = frames.decode(data)
            await _act(session, chat, frame)
        except FrameError as exc:
            metrics.ws_frames_rejected.labels(exc.code).inc()
            session.reply(frames.Error(code=exc.code, message=exc.message, ref=exc.ref))
        except Backlogged as exc:
            # Refused before it took a seq: the client resends (same client_msg_id) later.
            metrics.ws_frames_rejected.labels(exc.code).inc()
            ref = frame.client_msg_id if isinstance(frame, SendMessage) else None
            session.reply(
                frames.Error(
                    code=exc.code, message=exc.message, ref=ref, retry_after=exc.retry_after
                )
            )
        except (RedisError, asyncpg.PostgresError, *DEPENDENCY_DOWN) as exc:
            # Nothing was acknowledged: the client resends (same client_msg_id) later.
            session.log.warning("frame_failed", error=type(exc).__name__)
            metrics.ws_frames_rejected.labels("unavailable").inc()
            ref = frame.client_msg_id if isinstance(frame, SendMessage) else None
            session.reply(frames.Error(code="unavailable", message="try again shortly", ref=ref))
        except Exception:
            session.log.exception("frame_crashed")
            session.close(WS_1011_INTERNAL_ERROR, "internal error")
            return


async def _act(session: SocketSession, chat: Chat, frame: frames.ClientFrame) -> None:
    match frame:
        case SendMessage():
            session.reply(await chat.send(session.user, session.username, frame))
        case Typing():
            await chat.typing(session.user, session.username, frame)
        case Read():
            await chat.read(session.user, frame)
        case Ping():
            session.reply(Pong())
