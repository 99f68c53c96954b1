"""The client side of a fan-out load: one picows socket per user, every message stamped with a
unique id and its send time, counted and timed at every socket that receives it.

Hot-path choices, because this process has one core and must not be what saturates first:
picows callbacks instead of a reader coroutine per socket, frames built with one `%` and
parsed with `bytes.find` (no JSON decode), closed-loop resends straight from the receive
callback (no task switch).
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections import deque
from dataclasses import dataclass

from picows import WSCloseCode, WSFrame, WSListener, WSMsgType, WSTransport, ws_connect

# The content of every message: `bm:<message id>:<perf_counter_ns at send>;`. Plain ASCII, so
# any server's JSON encoder passes it through unescaped and `find` locates it in any layout.
MARK = b"bm:"
ACK_EVENT = b'"event":"ack"'  # gochat-py's acknowledgement, one per send, in send order
ERROR_EVENT = b'"event":"error"'
CONNECT_CONCURRENCY = 64  # handshakes in flight; more only queues in the server's backlog
HANDSHAKE_TIMEOUT = 30.0  # a server on one busy core accepts 1,000 sockets slowly
TICK = 0.001  # open-loop schedule granularity: ~3 messages per tick at 3,000/s
STALL_NS = 1_000_000_000  # closed loop: a message not back in 1 s is lost; send the next one
WATCHDOG_PERIOD = 0.25
CLOSE_TIMEOUT = 5.0
NOT_YET = sys.maxsize  # a Tally's first id before measuring starts: nothing counts


@dataclass(frozen=True)
class Group:
    conversation_id: str
    members: tuple[int, ...]  # user numbers: indexes into Population.urls
    senders: tuple[int, ...]


@dataclass(frozen=True)
class Population:
    """Whom to connect and who talks where, in a server's own ids."""

    urls: list[str]  # the socket URL of user number n is urls[n]
    groups: list[Group]
    acks: bool  # the server acknowledges each send on the sending socket, in order


class Tally:
    """What one measured window saw. Messages with ids below `first_id` are warm-up."""

    def __init__(self) -> None:
        self.first_id = NOT_YET
        self.window_end_ns = NOT_YET
        self.sent = 0
        self.expected = 0  # deliveries owed: group size per message, the sender's copy included
        self.received = 0  # unique deliveries, window and drain
        self.in_window = 0  # unique deliveries received before the window ended
        self.duplicates = 0
        self.acked = 0
        self.errors = 0
        self.first_error = b""
        self.latencies_ns: list[int] = []
        self.max_tick_gap_ms = 0.0  # open loop: how late the schedule ran (generator health)


class Socket(WSListener):
    """One user's connection: what it sends, what it has seen, what awaits an ack."""

    def __init__(self, load: Load, user: int, conversation_id: str, group_size: int) -> None:
        super().__init__()
        self.load = load
        self.user = user
        self.group_size = group_size
        self.head = b'{"conversation_id":"%s","content":"' % conversation_id.encode() + MARK
        self.transport: WSTransport | None = None
        self.seen: set[int] = set()
        self.unacked: deque[int] = deque()
        self.outstanding = -1  # closed loop: the id this sender waits to see come back
        self.sent_ns = 0

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.transport = transport

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        kind = frame.msg_type
        if kind == WSMsgType.TEXT:
            self.load.receive(self, frame.get_payload_as_bytes())
        elif kind == WSMsgType.CLOSE:
            self.load.closed_by_server += 1
            transport.send_close(frame.get_close_code())
            transport.disconnect()

    def send(self, message_id: int) -> None:
        assert self.transport is not None
        now = time.perf_counter_ns()
        self.sent_ns = now
        self.transport.send(WSMsgType.TEXT, b'%s%d:%d;"}' % (self.head, message_id, now))


async def close_all(transports: list[WSTransport], timeout: float = CLOSE_TIMEOUT) -> None:
    """Close every socket; those whose server has not answered within `timeout` are dropped."""
    for transport in transports:
        if not transport.is_disconnected:
            transport.send_close(WSCloseCode.OK)
    waits = asyncio.gather(*(t.wait_disconnected() for t in transports))
    try:
        await asyncio.wait_for(waits, timeout)
    except TimeoutError:
        for transport in transports:
            transport.disconnect(graceful=False)


class Load:
    """Connects a population and drives it: open loop at a rate, or closed loop."""

    def __init__(self, population: Population) -> None:
        self.population = population
        self.sockets: list[Socket] = []
        senders: dict[int, list[Socket]] = {}
        for group in population.groups:
            size = len(group.members)
            for user in group.members:
                sock = Socket(self, user, group.conversation_id, size)
                self.sockets.append(sock)
                if user in group.senders:
                    senders.setdefault(group.senders.index(user), []).append(sock)
        # Round-robin order: each group's first sender, then each group's second, ...: back-
        # to-back sends go to different groups, and every sender gets an equal share.
        self.senders = [sock for rank in sorted(senders) for sock in senders[rank]]
        self.tally = Tally()
        self.next_id = 0
        self.sending = False
        self.closed_loop = False
        self.closed_by_server = 0
        self.last_frame_ns = 0
        self._driver: asyncio.Task[None] | None = None

    async def connect(self) -> None:
        gate = asyncio.Semaphore(CONNECT_CONCURRENCY)
        urls = self.population.urls

        async def open_one(sock: Socket) -> None:
            async with gate:
                await ws_connect(
                    lambda: sock, urls[sock.user], websocket_handshake_timeout=HANDSHAKE_TIMEOUT
                )

        await asyncio.gather(*(open_one(sock) for sock in self.sockets))

    async def close(self) -> None:
        await close_all([s.transport for s in self.sockets if s.transport is not None])

    def start(self, rate: float | None) -> None:
        """Begin sending (the warm-up): `rate` messages/s on a schedule, or closed loop."""
        self.tally = Tally()
        for sock in self.sockets:
            sock.seen.clear()  # ids are never reused: earlier phases cannot collide
            sock.outstanding = -1
        self.sending = True
        self.closed_loop = rate is None
        driver = self._watchdog() if rate is None else self._schedule(rate)
        self._driver = asyncio.create_task(driver)

    def measure(self) -> Tally:
        """From now on, sends count."""
        self.tally.first_id = self.next_id
        return self.tally

    async def stop(self) -> None:
        """End the window: stamp it and send nothing more."""
        self.tally.window_end_ns = time.perf_counter_ns()
        self.sending = False
        if self._driver is not None:
            self._driver.cancel()
            await asyncio.gather(self._driver, return_exceptions=True)

    async def drain(self, timeout: float) -> None:
        """Wait for the deliveries still owed, up to `timeout`; what is missing then is lost."""
        deadline = time.monotonic() + timeout
        tally = self.tally
        while tally.received < tally.expected and time.monotonic() < deadline:
            await asyncio.sleep(0.01)

    async def settle(self, quiet: float, timeout: float) -> float:
        """Wait until no frame has come for `quiet` seconds (a backlog left by an overloaded
        server must not spill into the next phase); the seconds waited, at most `timeout`."""
        started = time.monotonic()
        quiet_ns = int(quiet * 1e9)
        while time.monotonic() - started < timeout:
            if time.perf_counter_ns() - self.last_frame_ns >= quiet_ns:
                break
            await asyncio.sleep(0.05)
        return time.monotonic() - started

    def send_from(self, sock: Socket) -> None:
        message_id = self.next_id
        self.next_id = message_id + 1
        sock.send(message_id)
        if self.population.acks:
            sock.unacked.append(message_id)
        if self.closed_loop:
            sock.outstanding = message_id
        tally = self.tally
        if message_id >= tally.first_id:
            tally.sent += 1
            tally.expected += sock.group_size

    def receive(self, sock: Socket, data: bytes) -> None:
        now = self.last_frame_ns = time.perf_counter_ns()
        tally = self.tally
        start = data.find(MARK)
        if start < 0:
            self._control(sock, data)
            return
        start += len(MARK)
        colon = data.find(b":", start)
        message_id = int(data[start:colon])
        seen = sock.seen
        if message_id in seen:
            if message_id >= tally.first_id:
                tally.duplicates += 1
            return
        seen.add(message_id)
        if message_id == sock.outstanding:
            sock.outstanding = -1
            if self.sending:
                self.send_from(sock)
        if message_id >= tally.first_id:
            tally.received += 1
            tally.latencies_ns.append(now - int(data[colon + 1 : data.find(b";", colon)]))
            if now <= tally.window_end_ns:
                tally.in_window += 1

    def _control(self, sock: Socket, data: bytes) -> None:
        """Acks and errors; each answers the oldest unanswered send of this socket."""
        is_ack = ACK_EVENT in data
        if not is_ack and ERROR_EVENT not in data:
            return  # typing, read marks, pongs: not part of this load
        answered = sock.unacked.popleft() if sock.unacked else -1
        if not is_ack and answered == sock.outstanding:
            # Refused, so it will not come back: the closed loop goes on at once.
            sock.outstanding = -1
            if self.sending:
                self.send_from(sock)
        tally = self.tally
        if answered < tally.first_id:
            return
        if is_ack:
            tally.acked += 1
        else:
            tally.errors += 1
            tally.first_error = tally.first_error or data

    async def _schedule(self, rate: float) -> None:
        senders = self.senders
        count = len(senders)
        started = last = time.perf_counter()
        done = 0
        while True:
            now = time.perf_counter()
            if self.tally.first_id != NOT_YET:
                gap_ms = (now - last) * 1000
                self.tally.max_tick_gap_ms = max(self.tally.max_tick_gap_ms, gap_ms)
            last = now
            # Due by the clock, not by replies: a slow server does not slow the offer down.
            due = int((now - started) * rate)
            while done < due:
                self.send_from(senders[done % count])
                done += 1
            await asyncio.sleep(TICK)

    async def _watchdog(self) -> None:
        for sock in self.senders:
            self.send_from(sock)
        while True:
            await asyncio.sleep(WATCHDOG_PERIOD)
            stalled_before = time.perf_counter_ns() - STALL_NS
            for sock in self.senders:
                if sock.outstanding >= 0 and sock.sent_ns < stalled_before:
                    sock.outstanding = -1
                    self.send_from(sock)
