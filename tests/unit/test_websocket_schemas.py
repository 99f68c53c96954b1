"""docs/websocket.md and docs/websocket.schema.json cover every frame type there is."""

from __future__ import annotations

import inspect
import json
import re
import typing
import uuid

import jsonschema
import msgspec
import pytest

from gochat_py import broadcasts, messages, notifications
from gochat_py.postgres.contacts import ContactRequest, UserRef
from gochat_py.realtime import events
from gochat_py.websocket import frames
from gochat_py.websocket.frames import ClientFrame
from gochat_py.websocket.schemas import ServerFrame, frame_types, render
from tests.harness import ROOT

SCHEMA_FILE = ROOT / "docs" / "websocket.schema.json"
GUIDE = ROOT / "docs" / "websocket.md"
ID = uuid.UUID("0192f0c8-7b3a-7c4e-9a1b-000000000001")


# The frames in gochat's shapes: named by `type`, as gochat writes them, under the heading
# of the event they render.
GOCHAT_FRAMES = (events.GochatPresence, frames.GochatPresenceList)


def event_names(frame: type[msgspec.Struct]) -> set[str]:
    """The names a frame type goes by (an edit and a delete share one type)."""
    hints = typing.get_type_hints(frame)
    if "event" in hints:
        return {str(name) for name in typing.get_args(hints["event"])}
    if frame in GOCHAT_FRAMES:
        return {str(name) for name in typing.get_args(hints["type"])}
    assert frame is messages.Message, f"{frame.__name__} names no event"
    return {"message"}


def defined_frames() -> set[type[msgspec.Struct]]:
    """Every Struct with an `event` field (or gochat's `type`) in the modules that define
    frames, and the message."""
    found = {messages.Message}
    for module in (frames, events):
        for _, member in inspect.getmembers(module, inspect.isclass):
            if issubclass(member, msgspec.Struct) and member.__module__ == module.__name__:
                named = {"event", "type"} & set(member.__struct_fields__)
                if named and not member.__name__.startswith("_"):
                    found.add(member)
    return found


def test_every_frame_in_gochats_shape_is_named_by_type_alone() -> None:
    gochat = {frame for frame in defined_frames() if "event" not in frame.__struct_fields__}
    assert gochat - {messages.Message} == set(GOCHAT_FRAMES)
    for frame in GOCHAT_FRAMES:
        assert event_names(frame) <= set().union(*map(event_names, defined_frames() - {frame}))


def section(title: str) -> str:
    text = GUIDE.read_text()
    start = text.index(f"## {title}")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def test_the_committed_schema_is_the_generated_one() -> None:
    assert SCHEMA_FILE.read_text() == render(), (
        "frames changed: python -m gochat_py.websocket.schemas > docs/websocket.schema.json"
    )


def test_every_frame_type_is_in_a_union_the_schema_covers() -> None:
    covered = set(frame_types(ClientFrame)) | set(frame_types(ServerFrame))
    assert defined_frames() - covered == set()
    definitions = json.loads(SCHEMA_FILE.read_text())["$defs"]
    assert {frame.__name__ for frame in covered} <= set(definitions)


@pytest.mark.parametrize(
    ("union", "title"), [(ClientFrame, "Client → server"), (ServerFrame, "Server → client")]
)
def test_every_frame_type_has_its_heading_in_the_guide(union: object, title: str) -> None:
    headings = set(re.findall(r"^### `([a-z_]+)`$", section(title), re.MULTILINE))
    assert set().union(*map(event_names, frame_types(union))) == headings


REQUEST = ContactRequest(
    id=ID, from_=UserRef(ID, "alice"), to=UserRef(ID, "bob"), status="pending", created_at=1,
    decided_at=None,
)  # fmt: skip


def server_samples() -> list[msgspec.Struct]:
    message = messages.Message(
        id=ID, conversation_id=ID, sender_id=ID, sender_username="alice", content="hi",
        type="text", sent_at=1, client_msg_id=None, seq=1,
    )  # fmt: skip
    return [
        message,
        messages.MessageChange(
            event="message_updated",
            message=msgspec.structs.replace(message, content="hello", edited_at=2),
            changed_at=2,
            seq=2,
        ),
        frames.Ack(client_msg_id="c", id=ID, conversation_id=ID, seq=1, sent_at=1, duplicate=False),
        frames.Error(code="invalid_json", message="no"),
        frames.Pong(),
        frames.TokenExpiring(expires_in=5),
        frames.AuthOk(expires_in=5),
        events.TypingEvent(conversation_id=ID, user_id=ID, username="bob"),
        events.ReadEvent(conversation_id=ID, user_id=ID, seq=3),
        events.DeliveredEvent(conversation_id=ID, user_id=ID, seq=3),
        events.NotificationEvent(
            notification=notifications.Notification(
                id=ID,
                type="added_to_conversation",
                actor=notifications.Actor(ID, "alice"),
                data={"conversation_id": str(ID), "conversation_name": "g"},
                created_at=1,
                read_at=None,
            )
        ),
        events.NotificationsReadEvent(ids=[ID], all=False, unread_count=0),
        events.ContactRequestEvent(request=REQUEST),
        events.ContactRequestUpdatedEvent(request=REQUEST),
        events.ContactRemovedEvent(user_id=ID),
        events.ConversationDeletedEvent(conversation_id=ID, actor_id=ID),
        events.PresenceEvent(user_id=ID, username="bob", status="offline", last_seen_at=1),
        events.GochatPresence(user_id=ID, username="bob", status="online"),
        frames.PresenceList(online_users=[ID]),
        frames.GochatPresenceList(online_users=[ID]),
        frames.BroadcastResultFrame(
            client_broadcast_id="b",
            duplicate=False,
            results=[
                broadcasts.SentTo(recipient_id=ID, conversation_id=ID, message_id=ID, seq=1),
                broadcasts.Skipped(recipient_id=ID, reason="not_a_contact"),
            ],
        ),
        frames.Resumed(
            conversations=[
                frames.ResumedConversation(
                    conversation_id=ID, recovered=True, from_seq=2, to_seq=3, replayed=2
                )
            ],
            not_found=[ID],
        ),
    ]


def validator(definition: str) -> jsonschema.Draft202012Validator:
    schema = json.loads(SCHEMA_FILE.read_text())
    return jsonschema.Draft202012Validator(
        {"$defs": schema["$defs"], "$ref": f"#/$defs/{definition}"}
    )


def test_what_the_server_encodes_matches_the_server_frame_schema() -> None:
    samples = server_samples()
    assert {type(s) for s in samples} == set(frame_types(ServerFrame))
    check = validator("ServerFrame")
    for sample in samples:
        check.validate(json.loads(frames.encode(sample)))
    # Not vacuous: a frame missing a field the server always writes is refused.
    ack = json.loads(frames.encode(samples[1]))
    del ack["seq"]
    assert not check.is_valid(ack)


def test_what_the_server_decodes_matches_the_client_frame_schema() -> None:
    check = validator("ClientFrame")
    samples = [
        {"conversation_id": str(ID), "content": "hi"},
        {"conversation_id": str(ID), "type": "image", "media_id": str(ID)},
        {"event": "typing", "conversation_id": str(ID)},
        {"event": "read", "conversation_id": str(ID), "seq": 0},
        {"event": "received", "conversation_id": str(ID), "seq": 4},
        {"event": "ping"},
        {"event": "auth", "token": "x.y.z"},
        {"event": "edit", "conversation_id": str(ID), "message_id": str(ID), "content": "x"},
        {"event": "delete", "conversation_id": str(ID), "message_id": str(ID)},
        {
            "event": "broadcast",
            "recipient_ids": [str(ID)],
            "content": "hi all",
            "client_broadcast_id": "b-1",
        },
        {"event": "resume", "positions": {str(ID): 4}},
    ]
    for sample in samples:
        frames.decode(json.dumps(sample))
        check.validate(sample)
    assert {type(frames.decode(json.dumps(s))) for s in samples} == set(frame_types(ClientFrame))
    assert not check.is_valid({"conversation_id": str(ID), "content": "x" * 4001})
    assert not check.is_valid({"conversation_id": str(ID), "type": "video", "content": "x"})
    assert not check.is_valid({"event": "resume", "positions": {str(ID): -1}})
