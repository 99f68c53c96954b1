"""Which frames a socket receives, and in which shapes, agreed at the handshake.

gochat's clients treat every frame that is not an error or a presence frame as a chat
message, and show their own sends at once, so a socket that asks for nothing gets only what
gochat sends, in gochat's shapes: every member's messages but its own sends, errors, answers
to its own requests (`pong`, `auth_ok`, `broadcast_result`), an ack only for a send that
carried a `client_msg_id`, and presence as gochat writes it (`{"type": "presence_list"}` on connect,
then `{"type": "presence"}` frames). A client asks for more the way Zulip's clients register
event types, and then gets every event in gochat-py's own shape (`"event"` names it):

| handshake | events | shapes |
|---|---|---|
| nothing | `presence` | gochat's |
| the subprotocol `gochat-py.v1` | every event | gochat-py's |
| `?events=ack,typing` (with or without the subprotocol) | exactly those named | gochat-py's |

(`new WebSocket(url, ["gochat-py.v1"])`, `wscat -s gochat-py.v1`.)

A socket that gets the `resume` event may also connect with `?resume=1`: it then holds the
live frames it would be sent until its first frame, a `resume` naming what the device has
seen, is answered (websocket/seam.py).
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from gochat_py.errors import BadRequest

SUBPROTOCOL = "gochat-py.v1"
# What a client may ask for. Messages, errors and the answers to its own requests always
# come; naming them in `events` is allowed and changes nothing.
# `echo` is the sending socket's own copy of its message: gochat's client shows a send at
# once and would show the copy as a second message. A gochat client would likewise take a
# notification or contact frame for a message.
OPTIONAL_EVENTS = frozenset(
    {
        "ack",
        "echo",
        "typing",
        "read",
        "delivered",
        "token_expiring",
        "notification",
        "notifications_read",
        "contact_request",
        "contact_request_updated",
        "contact_removed",
        "presence",
        "message_updated",
        "message_deleted",
        "conversation_deleted",
        # `resumed`, the answer to a `resume` frame: a gochat client would take it for a
        # message, so a resuming client asks for it.
        "resume",
    }
)
# What a socket that asks for nothing gets beyond the frames always sent: gochat's own
# client reads presence (in its own shape).
GOCHAT_EVENTS = frozenset({"presence"})
ALWAYS_SENT = frozenset({"message", "error", "pong", "auth_ok", "broadcast_result"})
MAX_EVENTS_PARAM = 512  # far more than every event name, comma-separated


class Agreement(msgspec.Struct, frozen=True):
    """The subprotocol to answer the handshake with (None: none), the optional events the
    socket gets, and whether it gets them in gochat's shapes (websocket/dialects.py)."""

    subprotocol: str | None
    events: frozenset[str]
    gochat: bool = False
    resume: bool = False  # `?resume=1`: hold live frames until the first frame is answered


def negotiate(offered: Sequence[str], events: str | None, resume: str | None = None) -> Agreement:
    """The agreement for a handshake offering `offered` subprotocols and asking for
    `events` and `resume` (the query parameters), or BadRequest naming what is wrong."""
    agreement = _events(offered, events)
    if resume is None or resume == "0":
        return agreement
    if resume != "1":
        raise BadRequest("resume must be 1 or 0", code="invalid_resume")
    if "resume" not in agreement.events:
        raise BadRequest(
            "resume=1 needs the resume event (the subprotocol, or events=resume)",
            code="invalid_resume",
        )
    return msgspec.structs.replace(agreement, resume=True)


def _events(offered: Sequence[str], events: str | None) -> Agreement:
    subprotocol = SUBPROTOCOL if SUBPROTOCOL in offered else None
    if events is None:
        if subprotocol is None:
            return Agreement(None, GOCHAT_EVENTS, gochat=True)
        return Agreement(subprotocol, OPTIONAL_EVENTS)
    if len(events) > MAX_EVENTS_PARAM:
        raise BadRequest("events is too long", code="invalid_events")
    asked = {name.strip() for name in events.split(",") if name.strip()}
    unknown = sorted(asked - OPTIONAL_EVENTS - ALWAYS_SENT)
    if unknown:
        raise BadRequest(f"unknown event type {unknown[0][:40]!r}", code="invalid_events")
    return Agreement(subprotocol, frozenset(asked & OPTIONAL_EVENTS))
