from __future__ import annotations

import json
import uuid
from typing import Any

import msgspec
import pytest

from gochat_py.broadcasts import BroadcastResult, SentTo, Skipped
from gochat_py.messages import MAX_CLIENT_MSG_ID, MAX_CONTENT_CHARS
from gochat_py.realtime.events import ReadEvent, TypingEvent
from gochat_py.websocket.frames import (
    MAX_FRAME_BYTES,
    MAX_RESUME_CONVERSATIONS,
    Ack,
    Broadcast,
    BroadcastResultFrame,
    Error,
    FrameError,
    Ping,
    Pong,
    Read,
    Received,
    Resume,
    SendMessage,
    Typing,
    decode,
    encode,
)

CONVERSATION = uuid.UUID("0192f0c8-7b3a-7c4e-9a1b-2c3d4e5f6a7b")
USER = uuid.UUID("0192f0c8-7b3a-7c4e-9a1b-000000000001")


def frame(**fields: Any) -> str:
    return json.dumps(fields)


def refused(data: str | bytes) -> FrameError:
    with pytest.raises(FrameError) as caught:
        decode(data)
    return caught.value


def send(content: Any, **fields: Any) -> str:
    return frame(conversation_id=str(CONVERSATION), content=content, **fields)


# Client frames that decode


def test_a_frame_without_an_event_is_a_message() -> None:
    assert decode(send("hi")) == SendMessage(conversation_id=CONVERSATION, content="hi")


def test_a_message_may_name_its_event_and_carry_a_client_msg_id() -> None:
    decoded = decode(send("hi", event="message", client_msg_id="c-1"))
    assert decoded == SendMessage(conversation_id=CONVERSATION, content="hi", client_msg_id="c-1")


def test_typing_read_and_ping_decode_to_their_frames() -> None:
    assert decode(frame(event="typing", conversation_id=str(CONVERSATION))) == Typing(
        event="typing", conversation_id=CONVERSATION
    )
    assert decode(frame(event="read", conversation_id=str(CONVERSATION), seq=7)) == Read(
        event="read", conversation_id=CONVERSATION, seq=7
    )
    assert decode(frame(event="ping")) == Ping(event="ping")


def test_received_decodes_to_its_frame() -> None:
    assert decode(frame(event="received", conversation_id=str(CONVERSATION), seq=9)) == Received(
        event="received", conversation_id=CONVERSATION, seq=9
    )


def test_a_broadcast_decodes_to_its_frame() -> None:
    decoded = decode(
        frame(event="broadcast", recipient_ids=[str(USER)], content="hi", client_broadcast_id="b")
    )
    assert decoded == Broadcast(
        event="broadcast", recipient_ids=[USER], content="hi", client_broadcast_id="b"
    )


def test_bytes_decode_like_text() -> None:
    assert decode(b'{"event": "ping"}') == Ping(event="ping")


def test_fields_a_later_client_adds_are_ignored() -> None:
    assert decode(frame(event="ping", sent_by="a newer app")) == Ping(event="ping")
    assert decode(send("hi", attachments=[])) == SendMessage(
        conversation_id=CONVERSATION, content="hi"
    )


# What is wrong with a frame


@pytest.mark.parametrize("data", ["", "not json", "{", b"\xff\xfe", '{"event": "ping"'])
def test_what_is_not_json_is_invalid_json(data: str | bytes) -> None:
    error = refused(data)
    assert (error.code, error.message, error.ref) == (
        "invalid_json",
        "frame is not a JSON object",
        None,
    )


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("[1, 2]", "Expected object, got array"),
        ('"ping"', "Expected object, got str"),
        ("42", "Expected object, got int"),
        ('{"event": 5}', "Expected str, got int - at $.event"),
        ('{"event": null}', "Expected str, got null - at $.event"),
        (
            '{"event": "ping", "client_msg_id": 7}',
            "Expected str | null, got int - at $.client_msg_id",
        ),
    ],
)
def test_json_that_is_not_a_frame_is_invalid_frame_and_says_where(data: str, message: str) -> None:
    error = refused(data)
    assert (error.code, error.message, error.ref) == ("invalid_frame", message, None)


@pytest.mark.parametrize(
    "data",
    [
        '{"content": "hi", "conversation_id": ' + "[" * 5000 + "]" * 5000 + "}",
        '{"event": "ping", "extra": ' + "[" * 5000 + "]" * 5000 + "}",  # a field skipped
        '{"event": "auth", "token": ' + '{"a":' * 5000 + "1" + "}" * 5000 + "}",
    ],
)
def test_a_frame_nested_too_deeply_is_invalid_frame_not_a_crash(data: str) -> None:
    error = refused(data)
    assert (error.code, error.message) == ("invalid_frame", "frame is nested too deeply")


def test_an_unknown_event_is_named_in_the_error_cut_to_40_characters() -> None:
    assert refused(frame(event="dance")).message == "unknown event 'dance'"
    error = refused(frame(event="x" * 100))
    assert (error.code, error.message) == ("unknown_event", f"unknown event {'x' * 40!r}")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (frame(content="hi"), "Object missing required field conversation_id"),
        (frame(conversation_id=str(CONVERSATION)), "Object missing required field content"),
        (frame(event="typing"), "Object missing required field conversation_id"),
        (
            frame(event="read", conversation_id=str(CONVERSATION)),
            "Object missing required field seq",
        ),
        (
            frame(event="received", conversation_id=str(CONVERSATION)),
            "Object missing required field seq",
        ),
        (frame(event="received", seq=1), "Object missing required field conversation_id"),
    ],
)
def test_a_frame_without_a_required_field_is_missing_field(data: str, message: str) -> None:
    error = refused(data)
    assert (error.code, error.message) == ("missing_field", message)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (frame(conversation_id="nope", content="hi"), "Invalid UUID - at $.conversation_id"),
        (send(5), "Expected str, got int - at $.content"),
        (send(None), "Expected str, got null - at $.content"),
        # PostgreSQL's text cannot hold U+0000: acked, it could never be stored.
        (send("nul \u0000 byte"), r"Expected str matching regex '^[^\\x00]*$' - at $.content"),
        (
            frame(event="read", conversation_id=str(CONVERSATION), seq=-1),
            "Expected int >= 0 - at $.seq",
        ),
        (
            # Past PostgreSQL's bigint: the read mark's query failed, and the socket with 1011.
            frame(event="read", conversation_id=str(CONVERSATION), seq=2**63),
            f"Expected int <= {2**63 - 1} - at $.seq",
        ),
        (
            frame(event="read", conversation_id=str(CONVERSATION), seq="1"),
            "Expected int, got str - at $.seq",
        ),
        (frame(event="typing", conversation_id=7), "Expected uuid, got int - at $.conversation_id"),
        (
            frame(event="received", conversation_id=str(CONVERSATION), seq=-3),
            "Expected int >= 0 - at $.seq",
        ),
        (
            frame(event="received", conversation_id=str(CONVERSATION), seq=2**63),
            f"Expected int <= {2**63 - 1} - at $.seq",
        ),
        (
            frame(event="received", conversation_id=str(CONVERSATION), seq=1.5),
            "Expected int, got float - at $.seq",
        ),
    ],
)
def test_a_field_of_the_wrong_type_or_range_is_invalid_field(data: str, message: str) -> None:
    error = refused(data)
    assert (error.code, error.message) == ("invalid_field", message)


@pytest.mark.parametrize("content", ["", " ", "   \n\t ", "\u3000\u00a0"])
def test_empty_or_whitespace_content_is_left_to_the_send_use_case(content: str) -> None:
    # Blankness is the sending rule of every door (usecases/sending.py), not the schema's:
    # an image's or a file's caption may be empty, a text may not.
    # tests/integration/test_websocket.py sees the socket answer empty_content for it.
    decoded = decode(send(content, client_msg_id="c-1"))
    assert isinstance(decoded, SendMessage) and decoded.content == content


def test_an_image_frame_may_leave_content_out_and_a_text_frame_may_not() -> None:
    media_id = "0190a8a4-6c3e-7000-8000-000000000001"
    decoded = decode(frame(conversation_id=str(CONVERSATION), type="image", media_id=media_id))
    assert isinstance(decoded, SendMessage)
    assert (decoded.type, str(decoded.media_id)) == ("image", media_id)
    error = refused(frame(conversation_id=str(CONVERSATION), type="text"))
    assert (error.code, error.message) == ("missing_field", "Object missing required field content")


def test_content_with_whitespace_around_text_is_kept_as_sent() -> None:
    decoded = decode(send("  hi \n"))
    assert isinstance(decoded, SendMessage) and decoded.content == "  hi \n"


@pytest.mark.parametrize("char", ["x", "é", "€", "😀"], ids=["1 byte", "2 bytes", "3", "4"])
def test_content_of_4000_characters_is_accepted_whatever_their_utf8_size(char: str) -> None:
    decoded = decode(send(char * MAX_CONTENT_CHARS))
    assert isinstance(decoded, SendMessage) and len(decoded.content) == 4000


@pytest.mark.parametrize("char", ["x", "é", "€", "😀"], ids=["1 byte", "2 bytes", "3", "4"])
def test_content_of_4001_characters_is_content_too_long(char: str) -> None:
    error = refused(send(char * (MAX_CONTENT_CHARS + 1)))
    assert (error.code, error.message) == (
        "content_too_long",
        "Expected str of length <= 4000 - at $.content",
    )


def test_the_content_limit_counts_characters_not_their_json_escapes() -> None:
    def escaped(count: int) -> str:
        content = "\\u00e9" * count  # é, six bytes of JSON each
        return f'{{"conversation_id": "{CONVERSATION}", "content": "{content}"}}'

    decoded = decode(escaped(MAX_CONTENT_CHARS))
    assert isinstance(decoded, SendMessage) and decoded.content == "é" * 4000
    assert refused(escaped(MAX_CONTENT_CHARS + 1)).code == "content_too_long"


def test_a_client_msg_id_of_64_characters_is_accepted() -> None:
    decoded = decode(send("hi", client_msg_id="c" * MAX_CLIENT_MSG_ID))
    assert isinstance(decoded, SendMessage) and decoded.client_msg_id == "c" * 64


@pytest.mark.parametrize(
    ("client_msg_id", "message"),
    [
        ("c" * 65, "Expected str of length <= 64 - at $.client_msg_id"),
        ("", "Expected str of length >= 1 - at $.client_msg_id"),
    ],
)
def test_a_client_msg_id_out_of_bounds_is_invalid_field(client_msg_id: str, message: str) -> None:
    error = refused(send("hi", client_msg_id=client_msg_id))
    assert (error.code, error.message) == ("invalid_field", message)


# The client's client_msg_id comes back as `ref`, so it knows which send failed


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (send("hi", client_msg_id="c-9", type="video"), "invalid_field"),
        (send("x" * 4001, client_msg_id="c-9"), "content_too_long"),
        (frame(content="hi", client_msg_id="c-9"), "missing_field"),
        (frame(conversation_id="nope", content="hi", client_msg_id="c-9"), "invalid_field"),
        (frame(event="dance", client_msg_id="c-9"), "unknown_event"),
    ],
)
def test_an_error_carries_the_client_msg_id_as_ref(data: str, code: str) -> None:
    error = refused(data)
    assert (error.code, error.ref) == (code, "c-9")


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"recipient_ids": [], "content": "hi"}, "invalid_field"),
        ({"recipient_ids": [str(USER)] * 1001, "content": "hi"}, "invalid_field"),
        ({"recipient_ids": [str(USER)], "content": ""}, "empty_content"),
        ({"content": "hi"}, "missing_field"),
    ],
)
def test_a_refused_broadcast_carries_its_client_broadcast_id_as_ref(
    fields: dict[str, Any], code: str
) -> None:
    error = refused(frame(event="broadcast", client_broadcast_id="b-1", **fields))
    assert (error.code, error.ref) == (code, "b-1")


def test_an_error_has_no_ref_when_the_frame_had_no_client_msg_id() -> None:
    assert refused(send("x" * 4001)).ref is None


def test_a_client_msg_id_that_is_not_a_string_is_no_ref() -> None:
    error = refused(frame(event="ping", client_msg_id=["c-9"]))
    assert (error.code, error.ref) == ("invalid_frame", None)


# Server frames


def test_every_server_frame_names_its_event_first() -> None:
    server_frames: list[msgspec.Struct] = [
        Ack(
            client_msg_id="c-1",
            id=USER,
            conversation_id=CONVERSATION,
            seq=3,
            sent_at=1_700_000_000_000,
            duplicate=False,
        ),
        Error(code="empty_content", message="content must not be blank"),
        TypingEvent(conversation_id=CONVERSATION, user_id=USER, username="alice"),
        ReadEvent(conversation_id=CONVERSATION, user_id=USER, seq=3),
        Pong(),
        BroadcastResultFrame.of(
            BroadcastResult(client_broadcast_id="b", duplicate=False, results=[])
        ),
    ]
    for server_frame in server_frames:
        assert encode(server_frame).startswith('{"event":'), server_frame


def test_an_ack_encodes_every_field_as_json() -> None:
    ack = Ack(
        client_msg_id=None,
        id=USER,
        conversation_id=CONVERSATION,
        seq=3,
        sent_at=1_700_000_000_000,
        duplicate=True,
    )
    assert json.loads(encode(ack)) == {
        "event": "ack",
        "client_msg_id": None,
        "id": str(USER),
        "conversation_id": str(CONVERSATION),
        "seq": 3,
        "sent_at": 1_700_000_000_000,
        "duplicate": True,
    }


def test_an_error_frame_carries_its_ref_and_retry_after() -> None:
    error = Error(code="rate_limited", message="slow down", ref="c-1", retry_after=0.5)
    assert encode(error) == (
        '{"event":"error","error":true,"code":"rate_limited","message":"slow down",'
        '"ref":"c-1","retry_after":0.5}'
    )


def test_pong_typing_and_read_events_encode_exactly() -> None:
    assert encode(Pong()) == '{"event":"pong"}'
    assert json.loads(
        encode(TypingEvent(conversation_id=CONVERSATION, user_id=USER, username="alice"))
    ) == {
        "event": "typing",
        "conversation_id": str(CONVERSATION),
        "user_id": str(USER),
        "username": "alice",
    }
    assert json.loads(encode(ReadEvent(conversation_id=CONVERSATION, user_id=USER, seq=9))) == {
        "event": "read",
        "conversation_id": str(CONVERSATION),
        "user_id": str(USER),
        "seq": 9,
    }


def test_a_broadcast_result_tags_each_outcome_with_its_status() -> None:
    result = BroadcastResult(
        client_broadcast_id="b",
        duplicate=False,
        results=[
            SentTo(recipient_id=USER, conversation_id=CONVERSATION, message_id=USER, seq=1),
            Skipped(recipient_id=USER, reason="blocked"),
        ],
    )
    assert json.loads(encode(BroadcastResultFrame.of(result))) == {
        "event": "broadcast_result",
        "client_broadcast_id": "b",
        "duplicate": False,
        "results": [
            {
                "status": "sent",
                "recipient_id": str(USER),
                "conversation_id": str(CONVERSATION),
                "message_id": str(USER),
                "seq": 1,
            },
            {"status": "skipped", "recipient_id": str(USER), "reason": "blocked"},
        ],
    }


def test_a_resume_names_a_seq_per_conversation_and_may_name_none() -> None:
    resume = decode(frame(event="resume", positions={str(CONVERSATION): 7}))
    assert resume == Resume(event="resume", positions={CONVERSATION: 7})
    assert decode(frame(event="resume", positions={})) == Resume(event="resume", positions={})


@pytest.mark.parametrize(
    ("positions", "code"),
    [
        ({str(CONVERSATION): -1}, "invalid_field"),
        ({str(CONVERSATION): 2**63}, "invalid_field"),
        ({str(CONVERSATION): "7"}, "invalid_field"),
        ({"conversation": 7}, "invalid_field"),
        ([7], "invalid_field"),
        (
            {str(uuid.UUID(int=i)): 0 for i in range(MAX_RESUME_CONVERSATIONS + 1)},
            "too_many_conversations",
        ),
    ],
)
def test_a_resume_with_a_bad_position_or_too_many_is_refused_with_a_code(
    positions: Any, code: str
) -> None:
    assert refused(frame(event="resume", positions=positions)).code == code


def test_a_resume_of_the_most_conversations_fits_in_a_frame() -> None:
    positions = {str(uuid.UUID(int=i)): 2**63 - 1 for i in range(MAX_RESUME_CONVERSATIONS)}
    data = frame(event="resume", positions=positions)
    assert len(data.encode()) <= MAX_FRAME_BYTES
    assert len(decode(data).positions) == MAX_RESUME_CONVERSATIONS  # type: ignore[union-attr]
