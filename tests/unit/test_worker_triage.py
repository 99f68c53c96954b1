from __future__ import annotations

import uuid

from gochat_py.ids import uuid7
from gochat_py.messages import Message, encode
from worker.group import Entry
from worker.persist import Persisted, to_row
from worker.triage import decode, sort_out


def message(**overrides: object) -> Message:
    values: dict[str, object] = {
        "id": uuid7(),
        "conversation_id": uuid.uuid4(),
        "sender_id": uuid.uuid4(),
        "sender_username": "alice",
        "content": "hi",
        "type": "text",
        "sent_at": 1_700_000_000_000,
        "client_msg_id": None,
        "seq": 1,
    }
    values.update(overrides)
    return Message(**values)  # type: ignore[arg-type]


def entry(fields: dict[bytes, bytes], deliveries: int = 1, n: int = 1) -> Entry:
    return Entry(0, f"1-{n}".encode(), fields, deliveries)


def test_an_entry_carrying_a_message_becomes_its_row() -> None:
    sent = message()
    good = entry({b"m": encode(sent)})

    rows, dead = decode([good], max_deliveries=5)

    assert rows == [(good, to_row(sent))]
    assert dead == []


def test_each_unusable_entry_becomes_a_dead_letter_that_says_why() -> None:
    entries = {
        "over-delivered": entry({b"m": encode(message())}, deliveries=6, n=1),
        "no m": entry({b"x": b"1", b"y": b"2"}, n=2),
        "not json": entry({b"m": b"hello"}, n=3),
        "sent_at past year 9999": entry({b"m": encode(message(sent_at=10**17))}, n=4),
    }

    rows, dead = decode(list(entries.values()), max_deliveries=5)

    assert rows == []
    reasons = {letter.entry.id: (letter.kind, letter.reason) for letter in dead}
    assert reasons[entries["over-delivered"].id] == (
        "max_deliveries",
        "delivered 6 times, more than WORKER_MAX_DELIVERIES=5",
    )
    assert reasons[entries["no m"].id] == ("undecodable", "undecodable: no field m (has: x, y)")
    assert reasons[entries["not json"].id][1].startswith("undecodable: JSON is malformed")
    assert reasons[entries["sent_at past year 9999"].id][0] == "undecodable"


def test_after_the_commit_stored_rows_are_done_and_turned_away_ones_dead() -> None:
    stored, rejected, displaced = message(), message(), message()
    rows = [(entry({}, n=i), to_row(m)) for i, m in enumerate((stored, rejected, displaced))]
    persisted = Persisted(
        inserted=1,
        committed=[to_row(stored)],
        displaced=[to_row(displaced)],
        rejected={rejected.id: "23503 fk"},
    )

    done, dead = sort_out(rows, persisted)

    assert done == [rows[0][0]]
    assert [(d.entry, d.kind) for d in dead] == [
        (rows[1][0], "rejected"),
        (rows[2][0], "seq_taken"),
    ]
    assert dead[0].reason == "rejected by PostgreSQL: 23503 fk"
    assert dead[1].reason == (
        f"seq 1 of conversation {displaced.conversation_id} is already taken by another message"
    )
