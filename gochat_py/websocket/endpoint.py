"""`/ws`: one socket per device. The handshake, then the reader: frame → throttle → decode
→ act → reply. The device's writer and its queue are its SocketSession (session.py)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import asyncpg
from loguru import logger
from redis.exceptions import RedisError
from starlette.datastructures import State
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect

from gochat_py.broadcasts import BroadcastRequest
from gochat_py.credentials import access_credentials
from gochat_py.errors import ApiError, BadRequest, Forbidden, Unauthorized
from gochat_py.ids import ConversationId, MessageId, uuid7
from gochat_py.metrics import Metrics
from gochat_py.origins import is_trusted
from gochat_py.outages import DEPENDENCY_DOWN
from gochat_py.postgres.conversations import Conversations
from gochat_py.postgres.users import Users
from gochat_py.realtime.expiry import Expiry
from gochat_py.realtime.hub import Hub
from gochat_py.realtime.presence import PresenceTracker
from gochat_py.realtime.revocation import Revocations
from gochat_py.redis.publish import Sent
from gochat_py.usecases.auth import Auth
from gochat_py.usecases.broadcasting import Broadcasting
from gochat_py.usecases.delivery_marks import DeliveryMarks
from gochat_py.usecases.editing import Editing
from gochat_py.usecases.presence import Presence
from gochat_py.usecases.read_marks import ReadMarks
from gochat_py.usecases.resumption import Resumption
from gochat_py.usecases.sending import Sending
from gochat_py.usecases.typing_notices import TypingNotices
from gochat_py.websocket import frames
from gochat_py.websocket.close_codes import (
    WS_1008_POLICY_VIOLATION,
    WS_1011_INTERNAL_ERROR,
    WS_1013_TRY_AGAIN_LATER,
)
from gochat_py.websocket.dialects import RICH
from gochat_py.websocket.frames import (
    Ack,
    Authenticate,
    Broadcast,
    Delete,
    Edit,
    FrameError,
    Ping,
    Pong,
    Read,
    Received,
    Resume,
    SendMessage,
    Typing,
)
from gochat_py.websocket.negotiation import negotiate
from gochat_py.websocket.renewal import Renewal
from gochat_py.websocket.session import SocketSession
from gochat_py.websocket.throttle import Throttle

ABUSE_WINDOW = 10.0  # seconds over which throttled frames are counted
ABUSE_LIMIT = 100  # throttled frames in one window that mark a flood, not an eager client
# The socket reads no frame before its presence list is sent or given up on.
PRESENCE_LIST_TIMEOUT = 2.0


async def _identify(websocket: WebSocket, send: Send) -> tuple[SocketSession, list[ConversationId]]:
    """Who connects, their login session not checked yet (websocket_endpoint does it), and
    the conversations whose frames their socket must get. The claims stay in here: the
    endpoint's frame lives as long as the socket."""
    state = websocket.state
    auth: Auth = state.auth
    users: Users = state.users
    conversations: Conversations = state.conversations
    query = websocket.query_params
    agreement = negotiate(
        websocket.scope.get("subprotocols", ()), query.get("events"), query.get("resume")
    )
    credentials = access_credentials(websocket, query=True)
    if credentials is None:
        raise Unauthorized("missing token", code="missing_token")
    # A page of any site may open a socket to us, and the browser sends our cookie with
    # it: a cookie's handshake must come from a page of ours or of CORS_ORIGINS. Browsers
    # always send Origin on a handshake, so no Referer fallback.
    if credentials.ambient and not is_trusted(
        websocket, state.settings.cors_origins, referer=False
    ):
        raise Forbidden("origin not allowed", code="origin_rejected")
    claims = auth.verify(credentials.token)
    account = await users.by_id(claims.user_id)
    if account is None:
        raise Unauthorized("the account no longer exists", code="invalid_token")
    listing = await conversations.ids_of_members([claims.user_id])
    session = SocketSession(
        websocket,
        send,
        claims.user_id,
        account.user.username,
        state.settings.ws_send_queue,
        state.metrics,
        claims.session_id,
        claims.exp,
        agreement,
        state.gochat_dialect if agreement.gochat else RICH,
    )
    return session, listing.get(claims.user_id, [])


async def _refuse(websocket: WebSocket, exc: Exception) -> None:
    """Before accept: the handshake is refused (HTTP 403) and the reason is the code."""
    if isinstance(exc, (Unauthorized, Forbidden, BadRequest)):
        logger.info("socket_refused", reason=exc.code)
        await websocket.close(WS_1008_POLICY_VIOLATION, exc.code)
    else:
        logger.warning("socket_refused", reason="unavailable", error=type(exc).__name__)
        await websocket.close(WS_1013_TRY_AGAIN_LATER, "unavailable")


class SocketApp:
    """`/ws` as a plain ASGI app: Starlette's WebSocket for the handshake, reading and
    closing; the server's own `send` for outgoing frames, which skips Starlette's per-frame
    state checks and exception wrapper (7 % of a busy server's CPU, profiled)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await websocket_endpoint(WebSocket(scope, receive=receive, send=send), send)


async def websocket_endpoint(websocket: WebSocket, send: Send) -> None:
    try:
        session, conversations = await _identify(websocket, send)
    except (Unauthorized, Forbidden, BadRequest, *DEPENDENCY_DOWN) as exc:
        await _refuse(websocket, exc)
        return
    state = websocket.state
    hub: Hub = state.hub
    revocations: Revocations = state.revocations
    expiry: Expiry = state.expiry
    # Registered before its session is checked: a revocation from now on finds the socket,
    # and one before it is in Redis for the check to see.
    revocations.add(session, session.session_id)
    try:
        try:
            await state.auth.require_live(session.session_id)
        except (Unauthorized, *DEPENDENCY_DOWN) as exc:
            await _refuse(websocket, exc)
            return
        # Subscribe first, then accept: a frame published once the client sees the socket
        # open cannot miss it (frames arriving before accept wait in the session's queue).
        async with hub.attached(session, conversations):
            if session.closing:
                # Revoked while its channels were subscribed: refused before accept, as a
                # revoked token would have been.
                await session.finish()
                return
            try:
                await websocket.accept(subprotocol=session.subprotocol)
            except (WebSocketDisconnect, OSError):  # ASGI servers raise an OSError for a gone peer
                session.log.info("socket_gone_before_accept")
                return
            session.log.info("socket_opened")
            writer = asyncio.create_task(session.write_loop())
            session.start_hold_clock(state.settings.ws_resume_hold)
            expiry.track(session)
            tracker: PresenceTracker = state.presence_tracker
            try:
                await tracker.opened(session.user, session.socket_id)
                await _list_presence(session, state.presence)
                await _read_loop(session, state, state.throttle, state.metrics, state.renewal)
            except WebSocketDisconnect:
                pass
            finally:
                session.stop_hold_clock()
                expiry.forget(session)
                await session.finish()
                writer.cancel()
                with contextlib.suppress(BaseException):
                    await writer
                await tracker.closed(session.user, session.socket_id)
    finally:
        revocations.discard(session, session.session_id)
    session.log.info("socket_closed")


async def _read_loop(
    session: SocketSession, state: State, throttle: Throttle, metrics: Metrics, renewal: Renewal
) -> None:
    window_start, throttled = time.monotonic(), 0
    while True:
        message = await session.websocket.receive()
        if message["type"] == "websocket.disconnect":
            return
        if session.closing:
            # Revoked, expired or cut off: frames that were already on their way are not acted on.
            return
        # The first frame, whatever it is, ends the wait for a resume: a resume is answered,
        # anything else ends the hold with nothing replayed.
        session.stop_hold_clock()
        data = message.get("text") or message.get("bytes") or b""
        wait = throttle.take(session.user)
        if wait > 0:
            session.release()
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
            if not isinstance(frame, Resume):
                session.release()
            await _act(session, state, renewal, frame)
        except ApiError as exc:
            # The same refusals as over REST, as an error frame: the connection stays open.
            metrics.ws_frames_rejected.labels(exc.code).inc()
            ref = exc.ref if isinstance(exc, FrameError) else _ref(frame)
            session.reply(
                frames.Error(
                    code=exc.code, message=exc.message, ref=ref, retry_after=exc.retry_after
                )
            )
        except (RedisError, asyncpg.PostgresError, *DEPENDENCY_DOWN) as exc:
            # Nothing was acknowledged: the client resends (same client_msg_id) later.
            session.log.warning("frame_failed", error=type(exc).__name__)
            metrics.ws_frames_rejected.labels("unavailable").inc()
            error = frames.Error(code="unavailable", message="try again shortly", ref=_ref(frame))
            session.reply(error)
        except Exception:
            session.log.exception("frame_crashed")
            session.close(WS_1011_INTERNAL_ERROR, "internal error")
            return
        session.release()  # a refused frame (a resume too): its error first, then what was held


async def _list_presence(session: SocketSession, presence: Presence) -> None:
    """Who of the people it hears about is online, to a socket that asked for presence."""
    if not session.wants("presence"):
        return
    try:
        async with asyncio.timeout(PRESENCE_LIST_TIMEOUT):
            online = await presence.online_for(session.user)
    except (RedisError, asyncpg.PostgresError, *DEPENDENCY_DOWN) as exc:
        # The socket works without it; the next presence events bring it up to date.
        session.log.warning("presence_list_failed", error=type(exc).__name__)
        return
    session.reply(session.dialect.presence_list(online))


def _ref(frame: Any) -> str | None:
    """The client's own name for the frame an error answers, if it gave one."""
    if isinstance(frame, Broadcast):
        return frame.client_broadcast_id
    return frame.client_msg_id if isinstance(frame, SendMessage) else None


def _ack(sent: Sent) -> Ack:
    message = sent.message
    return Ack(
        client_msg_id=message.client_msg_id,
        id=message.id,
        conversation_id=message.conversation_id,
        seq=message.seq,
        sent_at=message.sent_at,
        duplicate=sent.duplicate,
    )


async def _send(session: SocketSession, sending: Sending, frame: SendMessage) -> Sent:
    """Send, holding the message's own copy back from a socket that wants no echo."""
    message_id = None
    if not session.wants("echo"):
        message_id = MessageId(uuid7())
        session.expect_own(message_id)
    try:
        sent = await sending.send(
            session.user,
            session.username,
            ConversationId(frame.conversation_id),
            frame.content or "",
            frame.client_msg_id,
            message_id,
            frame.reply_to,
            frame.type,
            frame.media_id,
        )
    except BaseException:
        if message_id is not None:
            session.forget_own(message_id)
        raise
    if message_id is not None and sent.message.id != message_id:
        session.forget_own(message_id)  # a resend: the first send's copy went out long ago
    return sent


async def _act(
    session: SocketSession, state: State, renewal: Renewal, frame: frames.ClientFrame
) -> None:
    match frame:
        case SendMessage():
            session.acknowledge(_ack(await _send(session, state.sending, frame)))
        case Typing():
            typing_notices: TypingNotices = state.typing_notices
            await typing_notices.notify(
                session.user, session.username, ConversationId(frame.conversation_id)
            )
        case Read():
            read_marks: ReadMarks = state.read_marks
            await read_marks.mark(session.user, ConversationId(frame.conversation_id), frame.seq)
        case Received():
            delivery_marks: DeliveryMarks = state.delivery_marks
            await delivery_marks.received(
                session.user, ConversationId(frame.conversation_id), frame.seq
            )
        case Ping():
            session.reply(Pong())
        case Authenticate():
            await renewal.renew(session, frame.token)
        case Edit():
            editing: Editing = state.editing
            conversation_id = ConversationId(frame.conversation_id)
            await editing.edit(
                session.user, conversation_id, MessageId(frame.message_id), frame.content
            )
        case Delete():
            editing = state.editing
            conversation_id = ConversationId(frame.conversation_id)
            await editing.delete(session.user, conversation_id, MessageId(frame.message_id))
        case Broadcast():
            broadcasting: Broadcasting = state.broadcasting
            request = BroadcastRequest(
                recipient_ids=frame.recipient_ids,
                content=frame.content,
                client_broadcast_id=frame.client_broadcast_id,
            )
            result = await broadcasting.broadcast(session.user, session.username, request)
            session.reply(frames.BroadcastResultFrame.of(result))
        case Resume():
            await _resume(session, state.resumption, frame)


async def _resume(session: SocketSession, resumption: Resumption, frame: Resume) -> None:
    """Replay what the device missed, then the live frames held meanwhile: subscribed
    first, so whatever the read misses arrives live, and what both carry goes once."""
    if not session.wants("resume"):
        raise FrameError(
            "not_negotiated", "ask for the resume event at the handshake (events=resume)"
        )
    session.hold()  # already holding when the socket connected with resume=1
    positions = {ConversationId(c): seq for c, seq in frame.positions.items()}
    # Should the read fail, the read loop answers with the error, then releases the hold.
    replay = await resumption.replay(session.user, positions)
    session.release(replay)
    await resumption.caught_up(session.user, replay)
