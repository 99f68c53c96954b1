"""A conversation's log as it travels: one JSON encoding is the live frame, the stream entry
and the recent-cache member, so each entry is encoded once.

An entry is a message (text, or a system message recording a change to the group) or a
change to an earlier message (an edit or a delete), which takes a seq of its own; a
change frame names its event and starts with it, a message frame starts with its id."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

import msgspec

from gochat_py.media import MediaInfo

MAX_CONTENT_CHARS = 4000  # a long chat message; anything larger is a file, not text
MAX_CLIENT_MSG_ID = 64

# Which way a page walks a conversation's log: to older seqs, or to newer ones.
Direction = Literal["before", "after"]

# No U+0000: PostgreSQL's text cannot hold it, and an acked message must be storable.
Content = Annotated[
    str, msgspec.Meta(min_length=1, max_length=MAX_CONTENT_CHARS, pattern=r"^[^\x00]*$")
]
# An image or file message's caption: may be empty.
Caption = Annotated[str, msgspec.Meta(max_length=MAX_CONTENT_CHARS, pattern=r"^[^\x00]*$")]
# What a client may send: text, or an uploaded media (`media_id`) with a caption.
SentType = Literal["text", "image", "file"]
ClientMsgId = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_CLIENT_MSG_ID)]
# A send's `reply_to`: any string, so that a malformed id is answered as an unknown one is
# (`reply_not_found`), by the use case rather than the schema.
ReplyTo = Annotated[
    str, msgspec.Meta(description="the id of a message of the same conversation (a UUID)")
]
# PostgreSQL's bigint: no conversation comes near it, but a client may name a larger seq,
# and a query given one fails.
MAX_SEQ = 2**63 - 1
Seq = Annotated[int, msgspec.Meta(ge=0, le=MAX_SEQ)]


# The first characters of a message that a reply quotes and a mention's notification shows.
QUOTE_CHARS = 140

MemberRole = Literal["owner", "admin", "member"]
SystemAction = Literal[
    "created",
    "member_added",
    "member_left",
    "member_removed",
    "renamed",
    "description_changed",
    "role_changed",
    "ownership_transferred",
]


class SystemEvent(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """What a system message records, for clients to render in their own words (`content`
    is a short English line for those that do not)."""

    action: SystemAction
    actor_id: uuid.UUID
    target_ids: list[uuid.UUID] = msgspec.field(default_factory=list)
    name: str | None = None  # created, renamed: the group's name now
    role: MemberRole | None = None  # role_changed: the new role


class Quote(msgspec.Struct, frozen=True, kw_only=True):
    """The message a reply answers, as it read when the reply was sent."""

    id: uuid.UUID
    sender_id: uuid.UUID
    sender_username: str
    content: str  # its first QUOTE_CHARS characters; "" for a deleted message
    deleted: bool


class SendRequest(msgspec.Struct, frozen=True, kw_only=True):
    """A new message as its sender describes it, through either door (the REST body; the
    socket's frame adds the conversation): text, or an upload with a caption."""

    # Required for text (blank is `empty_content`); an image's or file's optional caption.
    content: Caption | msgspec.UnsetType = msgspec.UNSET
    client_msg_id: ClientMsgId | None = None
    reply_to: ReplyTo | None = None
    type: SentType = "text"
    media_id: uuid.UUID | None = None  # an upload of the sender's, for an image or a file

    def __post_init__(self) -> None:
        # Only an image or a file may leave content out. msgspec reports an error raised
        # here as the decoding's own, in the words it uses for a missing field.
        if self.content is msgspec.UNSET and self.type == "text":
            raise ValueError("Object missing required field `content`")


class Message(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """The message frame every member's devices receive: gochat's shape plus seq, and the
    optional fields only when they are set, so a plain message reads as gochat's."""

    id: uuid.UUID
    conversation_id: uuid.UUID
    sender_id: uuid.UUID
    sender_username: str
    content: str  # "" once deleted; an image or file message's caption, maybe ""
    type: Literal["text", "system", "image", "file"]
    sent_at: int  # unix milliseconds
    client_msg_id: str | None
    system: SystemEvent | None = None
    reply_to: Quote | None = None
    mentions: list[uuid.UUID] | None = None  # the members named with @username
    edited_at: int | None = None  # unix ms of the last edit
    deleted: bool = False
    media: MediaInfo | None = None  # image and file messages; null once deleted
    seq: int  # last field: the send script appends its value to the encoded prefix


ChangeEvent = Literal["message_updated", "message_deleted"]


class MessageChange(msgspec.Struct, frozen=True, kw_only=True):
    """An edit or a delete: the message as it reads afterwards, at the change's own seq."""

    event: ChangeEvent
    message: Message
    changed_at: int  # unix ms
    seq: int  # last field, as in Message


LogEntry = Message | MessageChange


class _Stamp(msgspec.Struct):
    """Just the send time of a frame; 0 for a frame that carries none (an event)."""

    sent_at: int = 0


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(Message)
_change_decoder = msgspec.json.Decoder(MessageChange)
_stamp_decoder = msgspec.json.Decoder(_Stamp)
_SEQ_PLACEHOLDER = b',"seq":0}'
_CHANGE_START = b'{"event":'


def encode_without_seq(entry: LogEntry) -> bytes:
    """The encoded entry up to `"seq":`; the send script appends the seq and `}`.

    seq is taken inside the same Redis script that publishes the entry, so the payload
    cannot carry it yet; splicing keeps the encoding to once per entry.
    """
    encoded = _encoder.encode(entry)
    assert encoded.endswith(_SEQ_PLACEHOLDER)
    return encoded[: -len(_SEQ_PLACEHOLDER)] + b',"seq":'


def decode(payload: bytes | str) -> Message:
    return _decoder.decode(payload)


def decode_change(payload: bytes | str) -> MessageChange:
    return _change_decoder.decode(payload)


def is_change(payload: bytes | str) -> bool:
    start = _CHANGE_START if isinstance(payload, bytes) else _CHANGE_START.decode()
    return payload.startswith(start)  # type: ignore[arg-type]


def decode_entry(payload: bytes | str) -> LogEntry:
    """A message or a change, told apart by how the encoding starts."""
    return _change_decoder.decode(payload) if is_change(payload) else _decoder.decode(payload)


def apply_changes(found: list[Message], changes: list[MessageChange]) -> list[Message]:
    """`found` as `changes` (in log order) leave them: each message reads as its newest
    change, and a deleted one stays deleted whatever comes after."""
    latest: dict[uuid.UUID, Message] = {}
    for change in changes:
        previous = latest.get(change.message.id)
        if previous is None or not previous.deleted:
            latest[change.message.id] = change.message
    if not latest:
        return found
    return [latest.get(message.id, message) for message in found]


def preview(content: str) -> str:
    return content[:QUOTE_CHARS]


def quote(message: Message) -> Quote:
    """What a reply to `message` carries of it; a deleted message's content is ""."""
    return Quote(
        id=message.id,
        sender_id=message.sender_id,
        sender_username=message.sender_username,
        content=preview(message.content),
        deleted=message.deleted,
    )


def sent_at_of(frame: bytes) -> int:
    """A live frame's `sent_at` (unix ms), 0 when it has none: decodes that field only."""
    try:
        return _stamp_decoder.decode(frame).sent_at
    except msgspec.DecodeError:
        return 0


def encode(message: Message) -> bytes:
    return _encoder.encode(message)
