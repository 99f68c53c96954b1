"""The bare bound: Starlette on uvicorn fanning frames out in-process; no Redis, no auth, no store.

`python -m bench.bare_server` serves `ws://SERVER_HOST:SERVER_PORT/ws?user=<n>` with gochat-py's
own uvicorn options (`gochat_py.app.uvicorn_options`, read from the same environment, its
WebSocket protocol included), so the only difference from gochat-py is everything gochat-py
does between socket and socket. With `--stock-websocket` it runs on uvicorn's own WebSocket
protocol instead: the stack as it ships, before anything of gochat-py's.

Groups are fixed at start, read from the JSON file named by `BENCH_GROUPS_FILE`: one object
mapping each conversation id (a string, used as-is in frames) to its members' user numbers
(the `<n>` of their socket URLs)::

    {"g0": [0, 1, 2, 3], "g1": [4, 5, 6, 7]}

Protocol (any server that speaks it can be measured by bench.fanout as another target):

- client → server: `{"conversation_id": "g0", "content": "..."}`
- server → every socket of every member, the sender's included, encoded once:
  `{"id": <n>, "conversation_id": "g0", "sender_id": <user>, "content": "...", "type": "text",
  "sent_at": <unix ms>}`
- a frame that does not decode, names an unknown group, or comes from a non-member is dropped.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import msgspec
import uvicorn
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket

from gochat_py.app import uvicorn_options
from gochat_py.settings import load_settings

GROUPS_FILE_VARIABLE = "BENCH_GROUPS_FILE"
STOCK_WEBSOCKET_FLAG = "--stock-websocket"
WS_1008_POLICY_VIOLATION = 1008  # no usable `?user=<n>`


class Inbound(msgspec.Struct, frozen=True):
    conversation_id: str
    content: str


class Outbound(msgspec.Struct, frozen=True):
    id: int
    conversation_id: str
    sender_id: int
    content: str
    type: str
    sent_at: int


class Rooms:
    """Who is in which group, and which sockets each user has open here."""

    def __init__(self, groups: dict[str, list[int]]) -> None:
        self._members = {cid: frozenset(users) for cid, users in groups.items()}
        self._sockets: dict[int, set[WebSocket]] = {}
        self._encoder = msgspec.json.Encoder()
        self._next_id = 0

    def attach(self, user: int, websocket: WebSocket) -> None:
        self._sockets.setdefault(user, set()).add(websocket)

    def detach(self, user: int, websocket: WebSocket) -> None:
        sockets = self._sockets.get(user)
        if sockets is not None:
            sockets.discard(websocket)
            if not sockets:
                del self._sockets[user]

    async def fan_out(self, sender: int, frame: Inbound) -> None:
        members = self._members.get(frame.conversation_id)
        if members is None or sender not in members:
            return
        self._next_id += 1
        outbound = Outbound(
            id=self._next_id,
            conversation_id=frame.conversation_id,
            sender_id=sender,
            content=frame.content,
            type="text",
            sent_at=int(time.time() * 1000),
        )
        text = self._encoder.encode(outbound).decode()  # once, shared by every recipient
        for user in members:
            for websocket in tuple(self._sockets.get(user, ())):
                try:
                    await websocket.send_text(text)
                except Exception:  # a member's socket closing mid-fan-out: drop it, go on
                    self.detach(user, websocket)


_decoder = msgspec.json.Decoder(Inbound)


async def socket_endpoint(websocket: WebSocket) -> None:
    rooms: Rooms = websocket.state.rooms
    raw_user = websocket.query_params.get("user", "")
    if not raw_user.isdigit():
        await websocket.close(WS_1008_POLICY_VIOLATION, "user must be a number")
        return
    user = int(raw_user)
    await websocket.accept()
    rooms.attach(user, websocket)
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            data = message.get("text") or message.get("bytes") or b""
            try:
                frame = _decoder.decode(data)
            except msgspec.DecodeError:
                continue
            await rooms.fan_out(user, frame)
    finally:
        rooms.detach(user, websocket)


def load_groups(path: Path) -> dict[str, list[int]]:
    raw = json.loads(path.read_text())
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: expected an object of conversation id -> user numbers")
    return {str(cid): [int(user) for user in users] for cid, users in raw.items()}


def build_app(groups: dict[str, list[int]]) -> Starlette:
    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Rooms]]:
        yield {"rooms": Rooms(groups)}

    return Starlette(routes=[WebSocketRoute("/ws", socket_endpoint)], lifespan=lifespan)


def main(argv: list[str]) -> int:
    path = os.environ.get(GROUPS_FILE_VARIABLE)
    if not path:
        sys.stderr.write(f"{GROUPS_FILE_VARIABLE} must name the groups JSON file\n")
        return 2
    settings = load_settings(os.environ)
    options = uvicorn_options(settings)
    if STOCK_WEBSOCKET_FLAG in argv:
        del options["ws"]  # uvicorn's own WebSocket protocol: the stack as it ships
    uvicorn.run(
        build_app(load_groups(Path(path))),
        host=settings.server_host,
        port=settings.server_port,
        **options,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
