"""The write-behind log's entries: what the send script writes and the worker reads.

An entry of a partition stream (keys.stream) has one field, PAYLOAD_FIELD: the message
exactly as delivered live (messages.Message as JSON). An entry of a dead-letter stream
(keys.dead_letters) keeps that payload beside why it could not be persisted.
"""

from __future__ import annotations

from collections.abc import Mapping

from redis.typing import EncodableT, FieldT

from gochat_py.messages import Message, encode

PAYLOAD_FIELD = "m"
_PAYLOAD_KEY = PAYLOAD_FIELD.encode()  # redis-py returns field names as bytes

# Dead letters: the payload under PAYLOAD_FIELD, then these.
DEAD_REASON = "reason"
DEAD_SOURCE_STREAM = "source_stream"
DEAD_SOURCE_ID = "source_id"
DEAD_DELIVERIES = "deliveries"


def entry(message: Message) -> dict[FieldT, EncodableT]:
    """The fields of a message's entry, for writers other than the send script."""
    return {PAYLOAD_FIELD: encode(message)}


def payload(fields: Mapping[bytes, bytes]) -> bytes | None:
    """The message JSON of an entry read back from Redis, if it has one."""
    return fields.get(_PAYLOAD_KEY)
