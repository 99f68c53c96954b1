"""One connected device's side of the socket: its identity, the bounded queue of frames
for it and the writer that drains it in order, a resume's hold and seam, and its close.
The hub delivers to it (realtime/hub.py's Subscriber); endpoint.py reads its frames."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid

from loguru import logger
from starlette.types import Send
from starlette.websockets import WebSocket

from gochat_py.ids import MessageId, SessionId, UserId
from gochat_py.metrics import Metrics
from gochat_py.usecases.resumption import Replay
from gochat_py.websocket import frames
from gochat_py.websocket.close_codes import (
    WS_1013_TRY_AGAIN_LATER,
    WS_4001_SESSION_REVOKED,
    WS_4002_TOKEN_EXPIRED,
)
from gochat_py.websocket.dialects import Dialect
from gochat_py.websocket.frames import Ack, Resumed, ResumedConversation
from gochat_py.websocket.negotiation import Agreement
from gochat_py.websocket.seam import SEAM_GUARD, Seam, event_of

CLOSE_TIMEOUT = 5.0  # a peer that does not answer our close frame in time is dropped
DRAIN_TIMEOUT = 2.0  # how long queued frames may take to go out before a policy close
# Own sends whose copy has not come back; a copy lost with a pub/sub outage never does, so
# past this the oldest are forgotten (a gochat client then sees one such message twice).
UNECHOED_MAX = 64
_ID_SLICE = slice(len('{"id":"'), len('{"id":"') + 36)


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
        session_id: SessionId,
        expires_at: int,
        agreement: Agreement,
        dialect: Dialect,
    ) -> None:
        self.websocket = websocket
        self._send = send
        self.user = user
        self.username = username
        self.session_id = session_id  # the login session it lives on (realtime/revocation.py)
        self.expires_at = expires_at  # when that token expires (realtime/expiry.py)
        self.subprotocol = agreement.subprotocol
        self._events = agreement.events  # the optional frames it asked for (negotiation.py)
        self.dialect = dialect  # the shapes it reads them in (dialects.py)
        self._unechoed: set[str] = set()  # ids of its own sends, when it wants no echo
        self._frames: list[str] = []  # the writer swaps it for a new one when it wakes
        self._queued = 0  # frames delivered and not yet written, the writer's included
        self._limit = queue_size
        self._wakeup: asyncio.Future[None] | None = None  # set while the writer waits
        self._timed = 0  # sent_at (unix ms) of a queued frame whose write is to be timed
        self._drained: asyncio.Future[None] | None = None  # a draining close waits on it
        self._metrics = metrics
        self._closing: asyncio.Task[None] | None = None
        # While a resume holds live frames, and a while after (seam.py); None otherwise,
        # which is all a delivery to a socket that never resumes checks.
        self._seam: Seam | None = Seam() if agreement.resume else None
        self._hold_clock: asyncio.TimerHandle | None = None  # ends a hold no resume came for
        self.socket_id = uuid.uuid4().hex  # its presence entry (realtime/presence.py)
        self.log = logger.bind(conn_id=self.socket_id[:12], user_id=str(user))

    def deliver(self, frame: str) -> None:
        """A live frame from the hub, or (through `reply`) an answer to this client."""
        if self._closing is not None:
            return
        # A message frame begins with its id (messages.Message), at a fixed offset.
        if self._unechoed and frame[_ID_SLICE] in self._unechoed:
            self._unechoed.discard(frame[_ID_SLICE])
            return
        seam = self._seam
        if seam is not None and self._seam_takes(seam, frame):
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

    def render(self, event: str, frame: str) -> str | None:
        if event not in self._events:
            return None
        return self.dialect.render(event, frame)

    def wants(self, event: str) -> bool:
        return event in self._events

    def time_delivery(self, sent_at: int) -> None:
        self._timed = sent_at

    def _seam_takes(self, seam: Seam, frame: str) -> bool:
        """Whether a resume's seam keeps `frame` from the queue: held, or a live copy of a
        replayed frame."""
        if seam.held is not None:
            # Held frames count against the send queue: the same bound on memory.
            if len(seam.held) + self._queued >= self._limit:
                self._metrics.ws_slow_consumers.inc()
                self.log.warning("resume_hold_full", held=len(seam.held))
                self.close(WS_1013_TRY_AGAIN_LATER, "resume_hold_full")
            else:
                seam.held.append(frame)
            return True
        if seam.is_replayed(frame):
            if not seam.guarding:
                self._seam = None  # every replayed frame came live: nothing left to drop
            return True
        return False

    def reply(self, frame: frames.Reply) -> None:
        # Answers to the client's own frames are no part of any log: never held, never
        # taken for a replayed frame.
        seam, self._seam = self._seam, None
        self.deliver(frames.encode(frame))
        self._seam = seam

    def hold(self) -> None:
        """Hold live frames from now on, until `release` (a resume is being answered)."""
        if self._seam is None or not self._seam.holding:
            self._seam = Seam()

    def start_hold_clock(self, seconds: float) -> None:
        """A socket that connected to resume: past `seconds` without a first frame, the
        held frames go out as if no resume came."""
        if self._seam is not None and self._seam.holding:
            self._hold_clock = asyncio.get_running_loop().call_later(seconds, self._hold_expired)

    def stop_hold_clock(self) -> None:
        if self._hold_clock is not None:
            self._hold_clock.cancel()
            self._hold_clock = None

    def _hold_expired(self) -> None:
        self._hold_clock = None
        self.log.info("resume_hold_expired")
        self.release()

    def release(self, replay: Replay | None = None) -> None:
        """End a hold: the replay's frames this socket reads, then `resumed`, then the held
        frames the replay did not carry. Without a replay, the held frames alone."""
        seam = self._seam
        if seam is None or not seam.holding:
            return
        if replay is None:
            self._seam = None
            self._enqueue_all(seam.release([]))
            return
        replayed: list[str] = []
        resumed = []
        for part in replay.missed:
            count = 0
            for frame in part.frames:
                event = event_of(frame)
                rendered = frame if event is None else self.render(event, frame)
                if rendered is not None:
                    replayed.append(rendered)
                    count += 1
            resumed.append(
                ResumedConversation(
                    conversation_id=part.conversation_id,
                    recovered=part.recovered,
                    from_seq=part.from_seq,
                    to_seq=part.to_seq,
                    replayed=count,
                )
            )
        held = seam.release(replayed)
        done = Resumed(conversations=resumed, not_found=list(replay.not_found))
        for conversation in resumed:
            self._metrics.ws_resumed.labels(str(conversation.recovered).lower()).inc()
        self._metrics.ws_replayed.inc(len(replayed))
        self._enqueue_all([*replayed, frames.encode(done), *held])
        if seam.guarding:
            asyncio.get_running_loop().call_later(SEAM_GUARD, self._end_guard, seam)
        else:
            self._seam = None

    def _end_guard(self, seam: Seam) -> None:
        if self._seam is seam:
            self._seam = None

    def _enqueue_all(self, batch: list[str]) -> None:
        """Queue a resume's frames past the send queue's bound: they are bounded already
        (the replay by its maximum, the held frames by the queue)."""
        if self._closing is not None or not batch:
            return
        self._frames.extend(batch)
        self._queued += len(batch)
        wakeup = self._wakeup
        if wakeup is not None and not wakeup.done():
            wakeup.set_result(None)

    def expect_own(self, message_id: MessageId) -> None:
        """Its send of `message_id` is under way: do not hand the copy back to it."""
        if len(self._unechoed) >= UNECHOED_MAX:
            self._unechoed.clear()
        self._unechoed.add(str(message_id))

    def forget_own(self, message_id: MessageId) -> None:
        self._unechoed.discard(str(message_id))

    def acknowledge(self, ack: Ack) -> None:
        # A gochat client takes any frame with an id for a message: it gets an ack only
        # when it named its send, and so knows to look for one.
        if ack.client_msg_id is not None or self.wants("ack"):
            self.reply(ack)

    def session_revoked(self) -> None:
        self._end(WS_4001_SESSION_REVOKED, "session_revoked")

    def token_expiring(self, expires_in: int) -> None:
        if self.wants("token_expiring"):
            self.reply(frames.TokenExpiring(expires_in=expires_in))

    def token_expired(self) -> None:
        self._end(WS_4002_TOKEN_EXPIRED, "token_expired")

    def _end(self, code: int, reason: str) -> None:
        if self._closing is None:
            self._metrics.ws_auth_closes.labels(reason).inc()
            self.log.info("socket_ended", reason=reason)
            self.close(code, reason)

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

    @property
    def closing(self) -> bool:
        return self._closing is not None

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
            timed, self._timed = self._timed, 0  # the timed frame is in this batch
            for frame in batch:
                await send({"type": "websocket.send", "text": frame})
                self._queued -= 1  # after the send: a frame in flight still counts as queued
            if timed:
                latency = time.time() - timed / 1000
                self._metrics.delivery_latency.observe(max(latency, 0.0))
