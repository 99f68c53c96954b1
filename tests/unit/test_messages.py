from __future__ import annotations

import json
import uuid

import msgspec
import pytest

from gochat_py.ids import uuid7
from gochat_py.messages import Message, decode, encode, encode_without_seq, sent_at_of


def message(**overrides: object) -> Message:
    values: dict[str, object] = {
        "id": uuid7(1_700_000_000_000),
        "conversation_id": uuid.UUID("0192f0c8-7b3a-7c4e-9a1b-00000000000a"),
        "sender_id": uuid.UUID("0192f0c8-7b3a-7c4e-9a1b-000000000001"),
        "sender_username": "alice",
        "content": "hi",
        "type": "text",
        "sent_at": 1_700_000_000_000,
        "client_msg_id": None,
        "seq": 0,
    }
    values.update(overrides)
    return Message(**values)  # type: ignore[arg-type]


def spliced(draft: Message, seq: int) -> bytes:
    """What the send script stores and publishes: the prefix, the seq, the closing brace."""
    return encode_without_seq(draft) + str(seq).encode() + b"}"


@pytest.mark.parametrize(
    "draft",
    [
        message(),
        message(client_msg_id="c-1"),
        message(type="system", content="alice added bob"),
        message(content='quotes " and \\ backslashes, a newline\nand a tab\t'),
        message(content="é€😀 and \u2028, which JSON allows and JavaScript once did not"),
        message(content="x" * 4000, sender_username="名前"),
    ],
    ids=["plain", "with client_msg_id", "system", "escapes", "non-ascii", "long"],
)
@pytest.mark.parametrize("seq", [1, 42, 2**53])
def test_the_spliced_payload_decodes_to_the_message_with_its_seq(draft: Message, seq: int) -> None:
    payload = spliced(draft, seq)
    assert decode(payload) == msgspec.structs.replace(draft, seq=seq)
    assert json.loads(payload)["seq"] == seq


def test_the_spliced_payload_is_byte_for_byte_the_full_encoding() -> None:
    draft = message(client_msg_id="c-1")
    assert spliced(draft, 7) == encode(msgspec.structs.replace(draft, seq=7))


def test_the_prefix_ends_where_the_script_appends_the_seq() -> None:
    assert encode_without_seq(message()).endswith(b',"seq":')


def test_every_field_is_in_the_encoding_in_declared_order_seq_last() -> None:
    encoded = json.loads(encode(message(seq=3)))
    assert list(encoded) == [
        "id",
        "conversation_id",
        "sender_id",
        "sender_username",
        "content",
        "type",
        "sent_at",
        "client_msg_id",
        "seq",
    ]
    assert encoded["client_msg_id"] is None  # null, not omitted: clients read the key


def test_a_payload_with_a_wrong_type_is_refused() -> None:
    with pytest.raises(msgspec.ValidationError):
        decode(spliced(message(), 1).replace(b'"type":"text"', b'"type":"video"'))


def test_sent_at_is_read_from_a_message_frame_and_zero_for_an_event() -> None:
    assert sent_at_of(b'{"id": "x", "content": "hi", "sent_at": 1700000000123, "seq": 1}') == (
        1700000000123
    )
    assert sent_at_of(b'{"event": "typing", "conversation_id": "c"}') == 0
    assert sent_at_of(b"not json") == 0
