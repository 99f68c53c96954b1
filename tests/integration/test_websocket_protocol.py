"""RFC 6455 at the edges, against the real server: fragments, bad UTF-8, unmasked frames,
broken handshakes, closing handshakes, shutdown. Some frames no well-behaved client library
will send, so a raw socket speaks them here."""

from __future__ import annotations

import asyncio
import json
import os
import struct
from urllib.parse import urlsplit

import httpx
import pytest
from websockets.exceptions import ConnectionClosed

from gochat_py.settings import load_settings
from tests.harness import (
    connect,
    next_frame,
    register,
    serve_app,
    server_environment,
    upgrade_request,
    ws_url,
)

TEXT, BINARY, CONTINUATION, CLOSE, PING, PONG = 0x1, 0x2, 0x0, 0x8, 0x9, 0xA
PING_FRAME = b'{"event": "ping"}'


class RawSocket:
    """A WebSocket client that does exactly what it is told, correct or not."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def handshake(cls, url: str, **headers: str) -> tuple[RawSocket, bytes]:
        """Send an upgrade request (`headers` override the usual ones); the socket and the
        server's response head."""
        parts = urlsplit(url)
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        writer.write(upgrade_request(url, **headers))
        response = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        return cls(reader, writer), response

    def send(self, opcode: int, payload: bytes, fin: bool = True, masked: bool = True) -> None:
        first = (0x80 if fin else 0) | opcode
        mask_bit = 0x80 if masked else 0
        if len(payload) < 126:
            head = struct.pack("!BB", first, mask_bit | len(payload))
        elif len(payload) < 1 << 16:
            head = struct.pack("!BBH", first, mask_bit | 126, len(payload))
        else:
            head = struct.pack("!BBQ", first, mask_bit | 127, len(payload))
        if masked:
            key = os.urandom(4)
            payload = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
            head += key
        self.writer.write(head + payload)

    async def receive(self) -> tuple[int, bytes]:
        """The next frame from the server (never masked, never fragmented by this server)."""
        async with asyncio.timeout(10):
            first, second = await self.reader.readexactly(2)
            length = second & 0x7F
            if length == 126:
                (length,) = struct.unpack("!H", await self.reader.readexactly(2))
            elif length == 127:
                (length,) = struct.unpack("!Q", await self.reader.readexactly(8))
            return first & 0x0F, await self.reader.readexactly(length)

    async def close_code(self) -> int:
        """Read frames until the server's close frame; its status code."""
        while True:
            opcode, payload = await self.receive()
            if opcode == CLOSE:
                return int(struct.unpack("!H", payload[:2])[0])

    async def at_eof(self) -> bool:
        """Whether the server closes TCP (what it sends before that is skipped)."""
        async with asyncio.timeout(10):
            await self.reader.read()
        return self.reader.at_eof()

    def close(self) -> None:
        self.writer.close()


@pytest.fixture
async def token(api: httpx.AsyncClient) -> str:
    return str((await register(api))["tokens"]["access_token"])


async def test_a_fragmented_message_is_reassembled(api: httpx.AsyncClient, token: str) -> None:
    socket, response = await RawSocket.handshake(ws_url(api, token))
    try:
        assert response.startswith(b"HTTP/1.1 101 ")
        socket.send(TEXT, PING_FRAME[:5], fin=False)
        socket.send(CONTINUATION, PING_FRAME[5:11], fin=False)
        socket.send(CONTINUATION, PING_FRAME[11:])
        # A gochat client's socket is sent who is online first, before it reads a frame.
        _, listed = await socket.receive()
        assert json.loads(listed)["type"] == "presence_list"
        opcode, payload = await socket.receive()
    finally:
        socket.close()
    assert (opcode, json.loads(payload)) == (TEXT, {"event": "pong"})


async def test_a_binary_frame_is_read_like_a_text_frame(api: httpx.AsyncClient, token: str) -> None:
    async with connect(ws_url(api, token)) as ws:
        await ws.send(PING_FRAME)  # bytes: a binary frame
        assert (await next_frame(ws))["event"] == "pong"


@pytest.mark.parametrize(
    ("frames", "code"),
    [
        pytest.param([(TEXT, b'{"event": "\xff"}', True)], 1007, id="text that is not UTF-8"),
        pytest.param([(CONTINUATION, b"{}", True)], 1002, id="a continuation of nothing"),
        pytest.param(
            [(TEXT, b"x" * 40_000, False), (CONTINUATION, b"x" * 40_000, True)],
            1009,
            id="fragments adding up to over 64 KiB",
        ),
        pytest.param([(0x3, b"", True)], 1002, id="a reserved opcode"),
    ],
)
async def test_a_protocol_violation_closes_with_its_code(
    api: httpx.AsyncClient, token: str, frames: list[tuple[int, bytes, bool]], code: int
) -> None:
    socket, _ = await RawSocket.handshake(ws_url(api, token))
    try:
        for opcode, payload, fin in frames:
            socket.send(opcode, payload, fin=fin)
        assert await socket.close_code() == code
        assert await socket.at_eof()
    finally:
        socket.close()
    # The server is unharmed: the next socket works.
    async with connect(ws_url(api, token)) as ws:
        await ws.send(PING_FRAME.decode())
        assert (await next_frame(ws))["event"] == "pong"


async def test_a_client_still_sending_a_frame_far_over_the_limit_reads_the_1009(
    api: httpx.AsyncClient, token: str
) -> None:
    # The server fails the socket after the first 64 KiB while the rest is on its way:
    # closing TCP at once would answer it with a reset that destroys the close frame.
    socket, _ = await RawSocket.handshake(ws_url(api, token))
    try:
        socket.send(TEXT, b"x" * (4 * 1024 * 1024))
        assert await socket.close_code() == 1009
        assert await socket.at_eof()
    finally:
        socket.close()


async def test_an_unmasked_client_frame_closes_with_1002(
    api: httpx.AsyncClient, token: str
) -> None:
    socket, _ = await RawSocket.handshake(ws_url(api, token))
    try:
        socket.send(TEXT, PING_FRAME, masked=False)
        assert await socket.close_code() == 1002
    finally:
        socket.close()


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        pytest.param({"Sec_WebSocket_Version": "8"}, b"400", id="an unsupported version"),
        pytest.param({"Sec_WebSocket_Key": "short"}, b"400", id="a malformed key"),
        pytest.param({"Sec_WebSocket_Key": ""}, b"400", id="no key"),
    ],
)
async def test_a_broken_handshake_is_refused_before_the_app_sees_it(
    api: httpx.AsyncClient, token: str, headers: dict[str, str], status: bytes
) -> None:
    socket, response = await RawSocket.handshake(ws_url(api, token), **headers)
    try:
        assert response.split(b" ")[1] == status, response
        assert await socket.at_eof()
    finally:
        socket.close()


async def test_the_server_answers_a_client_close_with_the_same_code(
    api: httpx.AsyncClient, token: str
) -> None:
    async with connect(ws_url(api, token)) as ws:
        await ws.close(4000, "bye")
    assert (ws.close_code, ws.close_reason) == (4000, "bye")


async def test_a_client_ping_gets_a_pong_with_its_payload(
    api: httpx.AsyncClient, token: str
) -> None:
    socket, _ = await RawSocket.handshake(ws_url(api, token))
    try:
        socket.send(PING, b"are you there")
        reply = await socket.receive()
    finally:
        socket.close()
    assert reply == (PONG, b"are you there")


async def test_sockets_open_at_shutdown_are_closed_with_1012(
    database_url: str, redis_url: str
) -> None:
    settings = load_settings(server_environment(database_url, redis_url))
    async with serve_app(settings) as url, httpx.AsyncClient(base_url=url) as api:
        alice = await register(api)
        ws = await connect(ws_url(api, alice["tokens"]["access_token"]))
        await ws.send(PING_FRAME.decode())
        assert (await next_frame(ws))["event"] == "pong"
    # serve_app has stopped the server; the socket was told why.
    with pytest.raises(ConnectionClosed):
        await asyncio.wait_for(ws.recv(), 10)
    assert ws.close_code == 1012
