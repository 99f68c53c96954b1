"""The two shapes of presence: gochat-py's as published, gochat's for its own clients."""

from __future__ import annotations

import json
import uuid

from gochat_py.ids import UserId
from gochat_py.realtime.events import PresenceEvent, TypingEvent
from gochat_py.websocket import frames
from gochat_py.websocket.dialects import RICH, GochatDialect

BOB = uuid.UUID("0192f0c8-7b3a-7c4e-9a1b-000000000002")


def published(status: str = "offline") -> str:
    event = PresenceEvent(
        user_id=BOB, username="bob", status="offline" if status == "offline" else "online",
        last_seen_at=1795270057000 if status == "offline" else None,
    )  # fmt: skip
    return frames.encode(event)


def test_gochat_py_clients_get_the_frame_as_published() -> None:
    frame = published()
    assert RICH.render("presence", frame) is frame
    assert json.loads(frames.encode(RICH.presence_list([UserId(BOB)]))) == {
        "event": "presence_list",
        "online_users": [str(BOB)],
    }


def test_gochat_clients_get_presence_in_gochats_shape() -> None:
    rendered = GochatDialect().render("presence", published())
    assert json.loads(rendered) == {
        "type": "presence",
        "user_id": str(BOB),
        "username": "bob",
        "status": "offline",
    }
    assert json.loads(frames.encode(GochatDialect().presence_list([UserId(BOB)]))) == {
        "type": "presence_list",
        "online_users": [str(BOB)],
    }


def test_one_published_frame_is_rewritten_once_for_every_gochat_socket() -> None:
    dialect = GochatDialect()
    frame = published()
    first = dialect.render("presence", frame)
    assert dialect.render("presence", frame) is first
    # Another frame, even an equal one, is another publish: rendered afresh and right.
    online = dialect.render("presence", published("online"))
    assert json.loads(online)["status"] == "online"


def test_other_events_pass_through_unchanged() -> None:
    typing = frames.encode(TypingEvent(conversation_id=BOB, user_id=BOB, username="bob"))
    assert GochatDialect().render("typing", typing) is typing
