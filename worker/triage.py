"""What becomes of each entry of a batch: a row to store, or a dead letter and why."""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from gochat_py import messages
from gochat_py.redis import stream_entries
from worker.group import DeadLetter, Entry
from worker.persist import Persisted, Row, to_row


def decode(
    entries: Sequence[Entry], max_deliveries: int
) -> tuple[list[tuple[Entry, Row]], list[DeadLetter]]:
    """Rows for the entries that carry a message or a change; dead letters for the rest."""
    rows: list[tuple[Entry, Row]] = []
    dead: list[DeadLetter] = []
    for entry in entries:
        if entry.deliveries > max_deliveries:
            reason = (
                f"delivered {entry.deliveries} times, "
                f"more than WORKER_MAX_DELIVERIES={max_deliveries}"
            )
            dead.append(DeadLetter(entry, reason, "max_deliveries"))
            continue
        payload = stream_entries.payload(entry.fields)
        if payload is None:
            names = ", ".join(sorted(f.decode(errors="replace") for f in entry.fields))
            reason = f"undecodable: no field {stream_entries.PAYLOAD_FIELD} (has: {names})"
            dead.append(DeadLetter(entry, reason, "undecodable"))
            continue
        try:
            rows.append((entry, to_row(messages.decode_entry(payload))))
        except (msgspec.DecodeError, ValueError, OverflowError) as exc:
            # UnicodeDecodeError (a ValueError) for bytes that are not UTF-8 at all,
            # OverflowError for a sent_at no timestamp can hold.
            dead.append(DeadLetter(entry, f"undecodable: {exc}", "undecodable"))
    return rows, dead


def sort_out(
    rows: Sequence[tuple[Entry, Row]], persisted: Persisted
) -> tuple[list[Entry], list[DeadLetter]]:
    """After the commit: entries now safe to acknowledge (those of a deleted conversation
    among them: there is nothing left to store them in), and those PostgreSQL turned away."""
    displaced = {row.id for row in persisted.displaced}
    done: list[Entry] = []
    dead: list[DeadLetter] = []
    for entry, row in rows:
        if row.id in persisted.rejected:
            reason = f"rejected by PostgreSQL: {persisted.rejected[row.id]}"
            dead.append(DeadLetter(entry, reason, "rejected"))
        elif row.id in displaced:
            reason = (
                f"seq {row.seq} of conversation {row.conversation_id} "
                "is already taken by another message"
            )
            dead.append(DeadLetter(entry, reason, "seq_taken"))
        else:
            done.append(entry)
    return done, dead
