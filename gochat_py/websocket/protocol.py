"""The WebSocket protocol uvicorn runs for each upgraded connection (`ws=` in uvicorn's options).

RFC 6455 itself (handshake checks, framing, masking, fragments, size limit, close and ping
replies) is websockets' sans-I/O `ServerProtocol`; this class moves bytes between it, the
transport and the ASGI app. It replaces uvicorn's own WebSocket protocols to hold less per
idle socket: no asyncio.Queue or Event (three deques and two more, ~4 KiB together), no
handshake request and response kept after the handshake, slots instead of a dict
(docs/BENCHMARKS.md, "Connections", has the tracemalloc breakdown). It also never logs a
socket's path, which carries the access token in its query string.
"""

from __future__ import annotations

import asyncio
import logging
import os
import weakref
from typing import Any, cast
from urllib.parse import unquote

from uvicorn.config import Config
from uvicorn.protocols.utils import ClientDisconnected, get_local_addr, get_remote_addr, is_ssl
from uvicorn.server import ServerState
from websockets.exceptions import InvalidState
from websockets.extensions.permessage_deflate import ServerPerMessageDeflateFactory
from websockets.frames import Frame, Opcode
from websockets.http11 import Request, Response
from websockets.protocol import State
from websockets.server import ServerProtocol

from gochat_py.websocket.close_codes import (
    WS_1000_NORMAL,
    WS_1005_NO_STATUS,
    WS_1006_ABNORMAL,
    WS_1007_INVALID_DATA,
    WS_1011_INTERNAL_ERROR,
    WS_1012_SERVICE_RESTART,
)

CLOSE_TIMEOUT = 10.0  # after our close frame, how long the peer has to answer before TCP closes
FORBIDDEN = 403
# websockets logs each open and close at INFO: one line per socket, the app logs its own.
_log = logging.getLogger("gochat_py.websocket")
_log.setLevel(logging.WARNING)
_SEND_EOF = b""  # in ServerProtocol.data_to_send(): the protocol is done, close TCP


class _Server:
    """What every connection of one uvicorn server shares, built once per server."""

    __slots__ = (
        "app",
        "app_state",
        "asgi",
        "connections",
        "extensions",
        "max_size",
        "ping_interval",
        "ping_timeout",
        "root_path",
        "server_state",
        "tasks",
    )

    def __init__(self, config: Config, server_state: ServerState, app_state: dict[str, Any]):
        if not config.loaded:
            config.load()
        self.app = config.loaded_app
        self.app_state = app_state
        self.asgi = {"version": config.asgi_version, "spec_version": "2.4"}
        self.connections = server_state.connections
        self.tasks = server_state.tasks
        self.server_state = server_state  # its default_headers list is replaced every second
        # Factories hold only settings: one list serves every handshake.
        self.extensions = (
            [
                ServerPerMessageDeflateFactory(
                    server_max_window_bits=12,
                    client_max_window_bits=12,
                    compress_settings={"memLevel": 5},
                )
            ]
            if config.ws_per_message_deflate
            else []
        )
        self.max_size = config.ws_max_size
        self.ping_interval = config.ws_ping_interval or None
        self.ping_timeout = config.ws_ping_timeout or None
        self.root_path = config.root_path

    def handshake(self) -> ServerProtocol:
        """A protocol for the opening handshake only. Its parser would keep the request
        (headers and all, ~2 KiB) for as long as the socket lives, so frames get their own."""
        return ServerProtocol(extensions=self.extensions, max_size=self.max_size, logger=_log)

    def frames(self, handshake: ServerProtocol) -> ServerProtocol:
        """A protocol that starts open, with what `handshake` negotiated."""
        conn = ServerProtocol(state=State.OPEN, max_size=self.max_size, logger=_log)
        conn.extensions = handshake.extensions
        return conn


_servers: weakref.WeakKeyDictionary[ServerState, _Server] = weakref.WeakKeyDictionary()


class WebSocketProtocol(asyncio.Protocol):
    """One WebSocket connection, from the upgrade request to the closed transport.

    Reading is paused while a received message waits for the app, so a client that sends
    faster than the app reads fills its own TCP window, not this server's memory."""

    __slots__ = (
        "_close_timer",
        "_closed",
        "_conn",
        "_disconnected",
        "_fragments",
        "_inbox",
        "_ping_payload",
        "_read_paused",
        "_response",
        "_server",
        "_text",
        "_timer",
        "_transport",
        "_waiter",
        "_writable",
        "scope",
    )

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        server = _servers.get(server_state)
        if server is None:
            server = _servers[server_state] = _Server(config, server_state, app_state)
        self._server = server
        self._conn = server.handshake()
        self._transport: asyncio.Transport = cast(asyncio.Transport, None)
        self.scope: dict[str, Any] | None = None
        self._response: Response | None = None  # until the app accepts or refuses
        self._inbox: list[dict[str, Any]] = []  # ASGI events the app has yet to receive
        self._waiter: asyncio.Future[None] | None = None  # the app waiting in receive()
        self._writable: asyncio.Future[None] | None = None  # set while the transport is full
        self._read_paused = False
        self._closed = False  # our close frame (or refusal) is out: the app may send no more
        self._disconnected = False  # the transport is gone
        self._close_timer: asyncio.TimerHandle | None = None
        self._timer: asyncio.TimerHandle | None = None  # next keepalive ping, or its deadline
        self._ping_payload: bytes | None = None  # the ping awaiting its pong
        self._fragments: list[bytes] | None = None  # a fragmented message being received
        self._text = False  # whether that message is text

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)
        self._server.connections.add(self)  # type: ignore[arg-type]

    def data_received(self, data: bytes) -> None:
        conn = self._conn
        conn.receive_data(data)
        for event in conn.events_received():
            if isinstance(event, Frame):
                self._on_frame(event)
            elif isinstance(event, Request):
                self._on_request(event)
        self._flush()
        if conn.parser_exc is not None and not self._closed:
            # A protocol error, an oversized message: ServerProtocol queued the close frame.
            close = conn.close_sent
            self._closed = True
            self._push_disconnect(
                close.code if close else WS_1006_ABNORMAL, close.reason if close else ""
            )
            if self._close_timer is None:  # not lingering (see _flush)
                self._transport.close()

    def eof_received(self) -> bool | None:
        self._conn.receive_eof()
        self._flush()
        return None  # let the transport close itself

    def connection_lost(self, exc: Exception | None) -> None:
        self._disconnected = True
        self._server.connections.discard(self)
        self._cancel_timers()
        self._push_disconnect(WS_1006_ABNORMAL, "")
        writable = self._writable
        if writable is not None and not writable.done():
            writable.set_result(None)  # a send waiting for the buffer to drain must not hang

    def pause_writing(self) -> None:
        if self._writable is None:
            self._writable = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        writable, self._writable = self._writable, None
        if writable is not None and not writable.done():
            writable.set_result(None)

    def shutdown(self) -> None:
        """uvicorn is stopping: close with 1012 so clients know to reconnect elsewhere."""
        self._cancel_timers()
        if self._transport.is_closing():
            return
        if self._response is not None:
            self._refuse(500, "Server shutting down")
            return
        if self.scope is not None and not self._closed:
            self._conn.send_close(WS_1012_SERVICE_RESTART)
            self._push_disconnect(WS_1012_SERVICE_RESTART, "")
        self._closed = True
        self._flush()
        self._transport.close()

    # Incoming

    def _on_request(self, request: Request) -> None:
        handshake = self._conn
        response = handshake.accept(request)
        if response.status_code != 101:  # not a valid WebSocket handshake
            self._closed = True
            handshake.send_response(response)
            return
        # Bytes after the request would be frames sent before our 101: none may come.
        self._conn = self._server.frames(handshake)
        self._response = response
        server = self._server
        transport = self._transport
        raw_path, _, query = request.path.partition("?")
        headers = [
            (name.lower().encode("ascii"), value.encode("latin-1"))
            for name, value in request.headers.raw_items()
        ]
        subprotocols = [
            token.strip()
            for header in request.headers.get_all("Sec-WebSocket-Protocol")
            for token in header.split(",")
        ]
        self.scope = {
            "type": "websocket",
            "asgi": server.asgi,
            "http_version": "1.1",
            "scheme": "wss" if is_ssl(transport) else "ws",
            "server": get_local_addr(transport),
            "client": get_remote_addr(transport),
            "root_path": server.root_path,
            "path": server.root_path + unquote(raw_path),
            "raw_path": (server.root_path + raw_path).encode("ascii"),
            "query_string": query.encode("ascii"),
            "headers": headers,
            "subprotocols": subprotocols,
            "state": server.app_state.copy(),
        }
        self._inbox.append({"type": "websocket.connect"})
        task = asyncio.get_running_loop().create_task(self._run_app())
        server.tasks.add(task)
        task.add_done_callback(server.tasks.discard)

    def _on_frame(self, frame: Frame) -> None:
        opcode = frame.opcode
        if opcode is Opcode.TEXT or opcode is Opcode.BINARY:
            self._text = opcode is Opcode.TEXT
            if frame.fin:
                self._on_message(bytes(frame.data))  # a no-op for bytes, which it is
            else:
                self._fragments = [bytes(frame.data)]
        elif opcode is Opcode.CONT:
            fragments = self._fragments
            if fragments is None:  # ServerProtocol rejects this before it reaches us
                return
            fragments.append(bytes(frame.data))
            if frame.fin:
                self._fragments = None
                self._on_message(b"".join(fragments))
        elif opcode is Opcode.PONG:
            if self._ping_payload is not None and frame.data == self._ping_payload:
                self._ping_payload = None
                self._schedule_ping()
        elif opcode is Opcode.CLOSE:
            # ServerProtocol queued our reply (or this is the reply to ours) and the EOF.
            if not self._closed:
                self._closed = True
                close = self._conn.close_rcvd
                if close is None:
                    self._push_disconnect(WS_1005_NO_STATUS, "")
                else:
                    self._push_disconnect(close.code, close.reason)

    def _on_message(self, data: bytes) -> None:
        if self._closed:
            return  # past our close frame: read on only to see the peer's reply
        event: dict[str, Any]
        if self._text:
            try:
                event = {"type": "websocket.receive", "text": data.decode()}
            except UnicodeDecodeError:
                self._conn.fail(WS_1007_INVALID_DATA, "invalid UTF-8")
                self._closed = True
                self._push_disconnect(WS_1007_INVALID_DATA, "invalid UTF-8")
                return
        else:
            event = {"type": "websocket.receive", "bytes": bytes(data)}
        self._push(event)
        if not self._read_paused:
            self._read_paused = True
            self._transport.pause_reading()

    def _push_disconnect(self, code: int, reason: str) -> None:
        inbox = self._inbox
        if not (inbox and inbox[-1]["type"] == "websocket.disconnect"):
            self._push({"type": "websocket.disconnect", "code": code, "reason": reason})

    def _push(self, event: dict[str, Any]) -> None:
        self._inbox.append(event)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # Outgoing

    def _flush(self) -> None:
        """Write what ServerProtocol has queued; close TCP once it says the protocol is done."""
        writes = self._conn.data_to_send()
        if not writes:
            return
        transport = self._transport
        if not transport.is_closing():
            transport.write(b"".join(writes))
        if writes[-1] == _SEND_EOF:
            if self._close_timer is not None:
                self._close_timer.cancel()
                self._close_timer = None
            if self._conn.close_rcvd is None and not transport.is_closing():
                self._linger(transport)
            else:
                transport.close()

    def _linger(self, transport: asyncio.Transport) -> None:
        """We failed the connection (a frame too big, text not UTF-8) while the peer may
        still be sending: closing now would answer its bytes with a TCP reset, which can
        destroy our close frame before the peer reads it. Half-close instead, discard what
        still comes, and close when the peer does or after CLOSE_TIMEOUT."""
        if transport.can_write_eof():  # not over TLS: the peer then sees our close frame only
            transport.write_eof()
        if self._read_paused:
            self._read_paused = False
            transport.resume_reading()
        self._close_timer = asyncio.get_running_loop().call_later(CLOSE_TIMEOUT, transport.close)

    def _refuse(self, status: int, text: str) -> None:
        """Answer the handshake with an HTTP error instead of 101, and hang up."""
        self._response = None
        self._closed = True
        transport = self._transport
        if not transport.is_closing():
            transport.write(self._conn.reject(status, text).serialize())
            transport.close()

    def _cancel_timers(self) -> None:
        for timer in (self._timer, self._close_timer):
            if timer is not None:
                timer.cancel()
        self._timer = self._close_timer = None

    # Keepalive: one timer, either the next ping or the deadline for its pong.

    def _schedule_ping(self) -> None:
        interval = self._server.ping_interval
        if self._timer is not None:
            self._timer.cancel()
        self._timer = None
        if interval is not None and not self._closed:
            self._timer = asyncio.get_running_loop().call_later(interval, self._ping)

    def _ping(self) -> None:
        self._timer = None
        if self._closed or self._transport.is_closing():
            return
        self._ping_payload = os.urandom(4)
        self._conn.send_ping(self._ping_payload)
        self._flush()
        timeout = self._server.ping_timeout
        if timeout is None:
            self._schedule_ping()
        else:
            self._timer = asyncio.get_running_loop().call_later(timeout, self._keepalive_failed)

    def _keepalive_failed(self) -> None:
        self._timer = None
        if self._closed:
            return
        self._closed = True
        self._conn.fail(WS_1011_INTERNAL_ERROR, "keepalive ping timeout")
        self._push_disconnect(WS_1011_INTERNAL_ERROR, "keepalive ping timeout")
        self._flush()
        self._transport.close()

    # ASGI

    async def _run_app(self) -> None:
        try:
            await self._server.app(cast(dict[str, Any], self.scope), self.receive, self.send)
        except ClientDisconnected:
            pass
        except asyncio.CancelledError:  # uvicorn's graceful shutdown ran out of time
            self._transport.close()
            raise
        except Exception:
            _log.exception("Exception in ASGI application")
        if self._response is not None and not self._disconnected:  # it never answered
            _log.error("ASGI app ended without accepting or closing the WebSocket")
            self._refuse(500, "Internal Server Error")
        elif not self._closed and not self._disconnected:
            # The app ended with the socket open: close it properly rather than drop TCP.
            _log.warning("ASGI app ended with the WebSocket open: closing it with 1000")
            self._closed = True
            self._conn.send_close(WS_1000_NORMAL)
            self._flush()
            self._close_timer = asyncio.get_running_loop().call_later(
                CLOSE_TIMEOUT, self._transport.close
            )
        elif self._close_timer is None:
            self._transport.close()

    async def receive(self) -> dict[str, Any]:
        inbox = self._inbox
        while not inbox:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        event = inbox[0]
        if event["type"] != "websocket.disconnect":
            del inbox[0]  # a disconnect is the last event and stays: every later call gets it
        if self._read_paused and not inbox:
            self._read_paused = False
            if not self._transport.is_closing():
                self._transport.resume_reading()
        return event

    async def send(self, message: dict[str, Any]) -> None:
        if self._writable is not None:
            await self._writable
        if self._disconnected or self._closed:
            raise ClientDisconnected()
        kind = message["type"]
        conn = self._conn
        if self._response is not None:  # the handshake awaits the app's answer
            if kind == "websocket.accept":
                self._accept(message)
            elif kind == "websocket.close":
                self._push_disconnect(WS_1006_ABNORMAL, "")
                self._refuse(FORBIDDEN, "")
            else:
                raise RuntimeError(
                    f"Expected 'websocket.accept' or 'websocket.close', got {kind!r}"
                )
        else:
            try:
                if kind == "websocket.send":
                    text = message.get("text")
                    if text is not None:
                        conn.send_text(text.encode())
                    else:
                        conn.send_binary(message["bytes"])
                elif kind == "websocket.close":
                    self._closed = True
                    reason = message.get("reason") or ""
                    code = message.get("code", WS_1000_NORMAL)
                    self._push_disconnect(code, reason)
                    conn.send_close(code, reason)
                    if self._read_paused:  # the peer's reply must still be read
                        self._read_paused = False
                        self._transport.resume_reading()
                    self._close_timer = asyncio.get_running_loop().call_later(
                        CLOSE_TIMEOUT, self._transport.close
                    )
                else:
                    raise RuntimeError(
                        f"Expected 'websocket.send' or 'websocket.close', got {kind!r}"
                    )
            except InvalidState:
                raise ClientDisconnected() from None
        self._flush()

    def _accept(self, message: dict[str, Any]) -> None:
        response = cast(Response, self._response)
        self._response = None
        headers = response.headers
        del headers["Date"]  # uvicorn's default headers carry its own, with its Server header
        for name, value in [
            *self._server.server_state.default_headers,
            *message.get("headers", []),
        ]:
            headers[name.decode("latin-1")] = value.decode("latin-1")
        subprotocol = message.get("subprotocol")
        if subprotocol:
            headers["Sec-WebSocket-Protocol"] = subprotocol
        self._transport.write(response.serialize())
        self._schedule_ping()
