"""A broadcast as it travels: the request both doors decode, and the result they answer
with, which Redis also keeps for a repeat of the same `client_broadcast_id`."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

import msgspec

from gochat_py.messages import MAX_CLIENT_MSG_ID, Content

MAX_RECIPIENTS = 1000  # one request's sends go to Redis in two pipelined batches at most
# Each message's client_msg_id is this prefix and the broadcast's id: a retry after a crash
# finds every message already sent (redis/publish.py's idempotency) and never sends it twice.
CLIENT_MSG_ID_PREFIX = "broadcast:"
MAX_CLIENT_BROADCAST_ID = MAX_CLIENT_MSG_ID - len(CLIENT_MSG_ID_PREFIX)

Recipients = Annotated[list[uuid.UUID], msgspec.Meta(min_length=1, max_length=MAX_RECIPIENTS)]
ClientBroadcastId = Annotated[
    str, msgspec.Meta(min_length=1, max_length=MAX_CLIENT_BROADCAST_ID, pattern=r"^[^\x00]*$")
]
# Why a recipient got nothing: one of the pair blocked the other, the recipient takes direct
# messages from contacts only, no such account, or the sender named themself.
SkipReason = Literal["blocked", "not_a_contact", "unknown_user", "self"]


class BroadcastRequest(msgspec.Struct, frozen=True, kw_only=True):
    """`POST /api/v1/broadcasts`: one message to each recipient, in your direct conversation."""

    recipient_ids: Recipients
    content: Content
    client_broadcast_id: ClientBroadcastId


class SentTo(msgspec.Struct, frozen=True, kw_only=True, tag_field="status", tag="sent"):
    recipient_id: uuid.UUID
    conversation_id: uuid.UUID
    message_id: uuid.UUID
    seq: int


class Skipped(msgspec.Struct, frozen=True, kw_only=True, tag_field="status", tag="skipped"):
    recipient_id: uuid.UUID
    reason: SkipReason


Outcome = SentTo | Skipped


class BroadcastResult(msgspec.Struct, frozen=True, kw_only=True):
    """Each recipient's outcome, in the order of `recipient_ids`."""

    client_broadcast_id: str
    duplicate: bool  # a repeat of an earlier call with this id: nothing was sent now
    results: list[Outcome]


def client_msg_id(client_broadcast_id: str) -> str:
    """The client_msg_id of every message of the broadcast (one per conversation)."""
    return CLIENT_MSG_ID_PREFIX + client_broadcast_id


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(BroadcastResult)


def encode(result: BroadcastResult) -> bytes:
    return _encoder.encode(result)


def decode(payload: bytes) -> BroadcastResult:
    return _decoder.decode(payload)
