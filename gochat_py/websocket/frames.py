"""WebSocket frames: what a client may send, what the server sends back, and the decoding.

A frame without `"event"` is gochat's message frame `{conversation_id, content}`; every
other frame names its event.
"""

from __future__ import annotations

import re
import uuid
from typing import Annotated, Literal

import msgspec

from gochat_py.broadcasts import BroadcastResult, ClientBroadcastId, Outcome, Recipients
from gochat_py.errors import BadRequest
from gochat_py.messages import Content, SendRequest, Seq

MAX_FRAME_BYTES = 64 * 1024  # a 4000-character message is ~16 KB even in 4-byte UTF-8
# Conversations one resume frame may name: far more than a client shows, and ~55 KB of
# positions, inside MAX_FRAME_BYTES.
MAX_RESUME_CONVERSATIONS = 1000


class SendMessage(SendRequest, frozen=True, forbid_unknown_fields=False):
    conversation_id: uuid.UUID
    event: Literal["message"] = "message"


class Typing(msgspec.Struct, frozen=True):
    event: Literal["typing"]
    conversation_id: uuid.UUID


class Read(msgspec.Struct, frozen=True):
    event: Literal["read"]
    conversation_id: uuid.UUID
    seq: Seq


class Received(msgspec.Struct, frozen=True):
    """This device has every entry of the conversation up to `seq`."""

    event: Literal["received"]
    conversation_id: uuid.UUID
    seq: Seq


class Ping(msgspec.Struct, frozen=True):
    event: Literal["ping"]


class Authenticate(msgspec.Struct, frozen=True):
    """A fresh access token for the open socket: it then lives until that token expires."""

    event: Literal["auth"]
    token: Annotated[str, msgspec.Meta(min_length=1, max_length=4096)]


class Edit(msgspec.Struct, frozen=True):
    """Edit a message you sent; every member's devices that asked get `message_updated`."""

    event: Literal["edit"]
    conversation_id: uuid.UUID
    message_id: uuid.UUID
    content: Content


class Delete(msgspec.Struct, frozen=True):
    """Delete a message (its sender, or a group's owner or admin): `message_deleted`."""

    event: Literal["delete"]
    conversation_id: uuid.UUID
    message_id: uuid.UUID


class Broadcast(msgspec.Struct, frozen=True, kw_only=True):
    """POST /api/v1/broadcasts as a frame: answered by one `broadcast_result`."""

    event: Literal["broadcast"]
    recipient_ids: Recipients
    content: Content
    client_broadcast_id: ClientBroadcastId


class Resume(msgspec.Struct, frozen=True):
    """What the device has seen: per conversation, the last seq it holds (0: nothing)."""

    event: Literal["resume"]
    positions: Annotated[dict[uuid.UUID, Seq], msgspec.Meta(max_length=MAX_RESUME_CONVERSATIONS)]


ClientFrame = (
    SendMessage
    | Typing
    | Read
    | Received
    | Ping
    | Authenticate
    | Edit
    | Delete
    | Broadcast
    | Resume
)


class _Envelope(msgspec.Struct, frozen=True):
    event: str = "message"
    client_msg_id: str | None = None
    # Any JSON: only a string is echoed as an error's `ref`; the frame's decoder says what
    # else is wrong with it.
    client_broadcast_id: object = None


# Outgoing frames name their event first, so a person reading a socket sees it at once.
class Ack(msgspec.Struct, frozen=True, kw_only=True):
    event: Literal["ack"] = "ack"
    client_msg_id: str | None
    id: uuid.UUID
    conversation_id: uuid.UUID
    seq: int
    sent_at: int
    duplicate: bool


class Error(msgspec.Struct, frozen=True, kw_only=True):
    event: Literal["error"] = "error"
    error: Literal[True] = True  # how gochat's clients tell an error from a message
    code: str
    message: str
    ref: str | None = None  # the client's client_msg_id, so it knows which send failed
    retry_after: float | None = None


class Pong(msgspec.Struct, frozen=True):
    event: Literal["pong"] = "pong"


class TokenExpiring(msgspec.Struct, frozen=True, kw_only=True):
    """The socket closes (4002) in `expires_in` seconds unless an `auth` frame renews it."""

    event: Literal["token_expiring"] = "token_expiring"
    expires_in: int


class AuthOk(msgspec.Struct, frozen=True, kw_only=True):
    """An `auth` frame was accepted: the socket now lives `expires_in` seconds more."""

    event: Literal["auth_ok"] = "auth_ok"
    expires_in: int


class PresenceList(msgspec.Struct, frozen=True, kw_only=True):
    """Right after connecting: the users whose presence the socket gets who are online now."""

    event: Literal["presence_list"] = "presence_list"
    online_users: list[uuid.UUID]


class GochatPresenceList(msgspec.Struct, frozen=True, kw_only=True):
    """A PresenceList in gochat's shape, for sockets speaking gochat's frames."""

    type: Literal["presence_list"] = "presence_list"
    online_users: list[uuid.UUID]


class BroadcastResultFrame(msgspec.Struct, frozen=True, kw_only=True):
    """The answer to a `broadcast` frame: POST /broadcasts's answer, named."""

    event: Literal["broadcast_result"] = "broadcast_result"
    client_broadcast_id: str
    duplicate: bool
    results: list[Outcome]

    @classmethod
    def of(cls, result: BroadcastResult) -> BroadcastResultFrame:
        return cls(
            client_broadcast_id=result.client_broadcast_id,
            duplicate=result.duplicate,
            results=result.results,
        )


class ResumedConversation(msgspec.Struct, frozen=True, kw_only=True):
    """One conversation of a resume. The device missed `from_seq` to `to_seq` (nothing when
    `from_seq` > `to_seq`). `recovered`: all of it came in this replay, `replayed` frames
    (fewer than the range when it holds events the socket did not ask for); otherwise none
    of it came and the device reads it from history (`?after_seq=`)."""

    conversation_id: uuid.UUID
    recovered: bool
    from_seq: int
    to_seq: int
    replayed: int


class Resumed(msgspec.Struct, frozen=True, kw_only=True):
    """The end of a replay: live frames follow. `not_found`: conversations of the resume
    that do not exist or that the user is not a member of (nothing was sent of them)."""

    event: Literal["resumed"] = "resumed"
    conversations: list[ResumedConversation]
    not_found: list[uuid.UUID]


# What the server sends a socket in answer to it or about it, beside the frames it
# publishes to members (messages.Message, realtime/events.py).
Reply = (
    Ack
    | Error
    | Pong
    | TokenExpiring
    | AuthOk
    | PresenceList
    | GochatPresenceList
    | BroadcastResultFrame
    | Resumed
)


class FrameError(BadRequest):
    """A frame the client must fix; the connection stays open."""

    def __init__(self, code: str, message: str, ref: str | None = None) -> None:
        super().__init__(message, code=code)
        self.ref = ref


_envelope = msgspec.json.Decoder(_Envelope)
_decoders: dict[str, msgspec.json.Decoder[ClientFrame]] = {
    "message": msgspec.json.Decoder(SendMessage),
    "typing": msgspec.json.Decoder(Typing),
    "read": msgspec.json.Decoder(Read),
    "received": msgspec.json.Decoder(Received),
    "ping": msgspec.json.Decoder(Ping),
    "auth": msgspec.json.Decoder(Authenticate),
    "edit": msgspec.json.Decoder(Edit),
    "delete": msgspec.json.Decoder(Delete),
    "broadcast": msgspec.json.Decoder(Broadcast),
    "resume": msgspec.json.Decoder(Resume),
}
_PATH = re.compile(r" - at `\$\.?([^`]*)`$")
_encoder = msgspec.json.Encoder()


def decode(data: str | bytes) -> ClientFrame:
    """The client frame in `data`, or FrameError saying what is wrong with it."""
    try:
        envelope = _envelope.decode(data)
    except msgspec.ValidationError as exc:
        raise FrameError("invalid_frame", _describe(exc)) from None
    except msgspec.DecodeError:
        raise FrameError("invalid_json", "frame is not a JSON object") from None
    except RecursionError:
        # msgspec decodes nested values recursively: ~1000 levels exhaust the stack.
        raise FrameError("invalid_frame", "frame is nested too deeply") from None
    named = envelope.client_msg_id or envelope.client_broadcast_id
    ref = named if isinstance(named, str) else None
    decoder = _decoders.get(envelope.event)
    if decoder is None:
        raise FrameError("unknown_event", f"unknown event {envelope.event[:40]!r}", ref)
    try:
        frame = decoder.decode(data)
    except msgspec.ValidationError as exc:
        raise FrameError(_code_for(exc), _describe(exc), ref) from None
    except RecursionError:
        raise FrameError("invalid_frame", "frame is nested too deeply", ref) from None
    return frame


def encode(frame: msgspec.Struct) -> str:
    return _encoder.encode(frame).decode()


def _describe(exc: msgspec.ValidationError) -> str:
    return str(exc).replace("`", "")


def _code_for(exc: msgspec.ValidationError) -> str:
    match = _PATH.search(str(exc))
    field = match.group(1) if match else ""
    text = str(exc)
    if field == "content" and "length <=" in text:
        return "content_too_long"
    if field == "content" and "length >=" in text:
        return "empty_content"
    if field == "positions" and "length <=" in text:
        return "too_many_conversations"
    if "missing required field" in text:
        return "missing_field"
    return "invalid_field"
