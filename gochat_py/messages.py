"""A chat message as it travels: one JSON encoding is the live frame, the stream entry and
the recent-cache member, so it is encoded once per message."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

import msgspec

MAX_CONTENT_CHARS = 4000  # a long chat message; anything larger is a file, not text
MAX_CLIENT_MSG_ID = 64

# Which way a page walks a conversation's log: to older seqs, or to newer ones.
Direction = Literal["before", "after"]

# No U+0000: PostgreSQL's text cannot hold it, and an acked message must be storable.
Content = Annotated[
    str, msgspec.Meta(min_length=1, max_length=MAX_CONTENT_CHARS, pattern=r"^[^\x00]*$")
]
ClientMsgId = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_CLIENT_MSG_ID)]
# PostgreSQL's bigint: no conversation comes near it, but a client may name a larger seq,
# and a query given one fails.
MAX_SEQ = 2**63 - 1
Seq = Annotated[int, msgspec.Meta(ge=0, le=MAX_SEQ)]


class Message(msgspec.Struct, frozen=True, omit_defaults=False):
    """The message frame every member's devices receive (gochat's shape plus seq)."""

    id: uuid.UUID
    conversation_id: uuid.UUID
    sender_id: uuid.UUID
    sender_username: str
    content: str
    type: Literal["text", "system"]
    sent_at: int  # unix milliseconds
    client_msg_id: str | None
    seq: int  # last field: the send script appends its value to the encoded prefix


class _Stamp(msgspec.Struct):
    """Just the send time of a frame; 0 for a frame that carries none (an event)."""

    sent_at: int = 0


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(Message)
_stamp_decoder = msgspec.json.Decoder(_Stamp)
_SEQ_PLACEHOLDER = b',"seq":0}'


def encode_without_seq(message: Message) -> bytes:
    """The encoded message up to `"seq":`; the send script appends the seq and `}`.

    seq is taken inside the same Redis script that publishes the message, so the payload
    cannot carry it yet; splicing keeps the encoding to once per message.
    """
    encoded = _encoder.encode(message)
    assert encoded.endswith(_SEQ_PLACEHOLDER)
    return encoded[: -len(_SEQ_PLACEHOLDER)] + b',"seq":'


def decode(payload: bytes | str) -> Message:
    return _decoder.decode(payload)


def sent_at_of(frame: bytes) -> int:
    """A live frame's `sent_at` (unix ms), 0 when it has none: decodes that field only."""
    try:
        return _stamp_decoder.decode(frame).sent_at
    except msgspec.DecodeError:
        return 0


def encode(message: Message) -> bytes:
    return _encoder.encode(message)
