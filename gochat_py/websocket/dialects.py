"""The two shapes of the same events: gochat-py's own, and gochat's, for its clients.

Events are published once, in gochat-py's shape (realtime/events.py). A socket speaking
gochat's frames (negotiation.py) gets the few gochat knows rewritten here, the one place
the two shapes differ; messages are the same in both and never pass through here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import msgspec

from gochat_py.ids import UserId
from gochat_py.realtime.events import GochatPresence, PresenceEvent
from gochat_py.websocket import frames

_presence = msgspec.json.Decoder(PresenceEvent)
_encoder = msgspec.json.Encoder()


class Dialect(Protocol):
    def render(self, event: str, frame: str) -> str:
        """The published frame of `event` as this dialect writes it."""

    def presence_list(self, online: Sequence[UserId]) -> frames.Reply:
        """The users online now, sent once on connect."""


class RichDialect:
    """gochat-py's own shapes: frames go out as published."""

    def render(self, event: str, frame: str) -> str:
        return frame

    def presence_list(self, online: Sequence[UserId]) -> frames.Reply:
        return frames.PresenceList(online_users=list(online))


class GochatDialect:
    """gochat's shapes. One instance serves every such socket of the process and remembers
    its last rewrite: the hub hands every socket the same published frame object, so N
    sockets cost one rewrite, and the remembered source is held, so identity is proof."""

    def __init__(self) -> None:
        self._source: str | None = None
        self._rendered = ""

    def render(self, event: str, frame: str) -> str:
        if event != "presence":
            return frame
        if frame is not self._source:
            published = _presence.decode(frame)
            gochat = GochatPresence(
                user_id=published.user_id, username=published.username, status=published.status
            )
            self._source, self._rendered = frame, _encoder.encode(gochat).decode()
        return self._rendered

    def presence_list(self, online: Sequence[UserId]) -> frames.Reply:
        return frames.GochatPresenceList(online_users=list(online))


RICH = RichDialect()  # stateless: one for every socket
