"""A batch of log entries into PostgreSQL in one transaction: messages by COPY straight into
`messages`, then edits and deletes applied to the messages they change.

Idempotent by construction: a row that is already stored (a batch persisted twice because
a crash came between COMMIT and XACK, or an entry twice in one batch) fails the COPY with a
unique violation, and the batch is then merged through a staging table instead, where
`ON CONFLICT DO NOTHING` on the message id (and on `(conversation_id, seq)`) absorbs it.

A change carries the whole message as it reads afterwards and is an upsert that only a
newer change may overwrite (`changed_seq`), and never a deleted message: applied twice, out
of order, or before the message itself is stored (another worker still holds it, or a crash
left it pending), the row ends as the newest change made it; the message's own row, stored
later, then finds its id taken and changes nothing.

An entry of a conversation that was deleted meanwhile (its log still in the stream, or a
send that raced the deletion) is left out and reported as gone, to be acknowledged: not a
poison entry for the dead letters, and never a row that brings its conversation back. The
transaction locks the batch's conversations before it writes: a deletion either committed
before (the row is missing: gone) or waits for the commit and then takes those rows with it.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple

import asyncpg
import msgspec

from gochat_py import times
from gochat_py.messages import LogEntry, Message, MessageChange
from gochat_py.outages import POSTGRES_DOWN
from worker import media_uses

# The fallback only. Per session, emptied at every commit: concurrent workers never see
# each other's rows.
_CREATE_STAGING = """
CREATE TEMP TABLE IF NOT EXISTS messages_staging
    (LIKE messages INCLUDING DEFAULTS) ON COMMIT DELETE ROWS
"""
# Only for rows the INSERT skipped (rare: a redelivery, or a collision). One whose id is
# not in messages lost its (conversation_id, seq) to another message: report it instead of
# dropping it silently, and keep it out of the bookkeeping. Checking every staged row
# instead made PostgreSQL anti-join the whole table on each batch (measured: more time
# than the INSERT itself).
_PRESENT = "SELECT id FROM messages WHERE id = ANY($1::uuid[])"
# Lock the touched conversations in id order first: two workers whose batches share
# conversations then queue on the first one instead of deadlocking on the second. Those
# that exist come back; the others were deleted.
_LOCK_CONVERSATIONS = """
SELECT id FROM conversations WHERE id = ANY($1::uuid[]) ORDER BY id FOR NO KEY UPDATE
"""
# The newest seq and sent_at per conversation come from the batch in hand: aggregating
# them in PostgreSQL needs the rows in a table first, which is what COPY straight into
# messages saves.
_ADVANCE_CONVERSATIONS = """
UPDATE conversations c
SET last_seq = GREATEST(c.last_seq, t.last_seq),
    last_activity_at = GREATEST(c.last_activity_at, t.last_activity_at)
FROM unnest($1::uuid[], $2::bigint[], $3::timestamptz[]) AS t (id, last_seq, last_activity_at)
WHERE c.id = t.id
"""


class Row(NamedTuple):
    """One message as a row of `messages`, in COPY column order; for a change, the message
    as it reads after it, with `changed_seq` the change's own seq."""

    id: uuid.UUID
    conversation_id: uuid.UUID
    seq: int
    sender_id: uuid.UUID
    type: str
    content: str
    client_msg_id: str | None
    sent_at: datetime
    edited_at: datetime | None = None
    deleted_at: datetime | None = None
    changed_seq: int | None = None
    system: str | None = None  # JSON text: asyncpg's jsonb codec takes text
    reply_to: str | None = None
    mentions: list[uuid.UUID] | None = None
    media: str | None = None  # JSON text, as system

    @property
    def position(self) -> int:
        """The entry's seq in its conversation's log."""
        return self.seq if self.changed_seq is None else self.changed_seq


COLUMNS = list(Row._fields)
_STORED_COLUMNS = ", ".join(COLUMNS)
_INSERT = f"""
INSERT INTO messages ({_STORED_COLUMNS})
SELECT {_STORED_COLUMNS}
FROM messages_staging
ON CONFLICT DO NOTHING
RETURNING id
"""
# A change: the message as it reads afterwards, stored whole when the message is not yet.
_APPLY_CHANGE = f"""
INSERT INTO messages AS m ({_STORED_COLUMNS})
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
ON CONFLICT (id) DO UPDATE
SET content = excluded.content, edited_at = excluded.edited_at,
    deleted_at = excluded.deleted_at, changed_seq = excluded.changed_seq,
    reply_to = excluded.reply_to, mentions = excluded.mentions, media = excluded.media
WHERE m.deleted_at IS NULL AND coalesce(m.changed_seq, m.seq) < excluded.changed_seq
"""
_json = msgspec.json.Encoder()


def to_row(entry: LogEntry) -> Row:
    """The row for a decoded entry; ValueError/OverflowError if it has no representation."""
    message, changed_seq, deleted_at = entry, None, None
    if isinstance(entry, MessageChange):
        message, changed_seq = entry.message, entry.seq
        if message.deleted:
            deleted_at = times.from_unix_ms(entry.changed_at)
    assert isinstance(message, Message)
    return Row(
        message.id,
        message.conversation_id,
        message.seq,
        message.sender_id,
        message.type,
        message.content,
        message.client_msg_id,
        times.from_unix_ms(message.sent_at),
        None if message.edited_at is None else times.from_unix_ms(message.edited_at),
        deleted_at,
        changed_seq,
        None if message.system is None else _json.encode(message.system).decode(),
        None if message.reply_to is None else _json.encode(message.reply_to).decode(),
        message.mentions,
        None if message.media is None else _json.encode(message.media).decode(),
    )


@dataclass
class Persisted:
    """What one or more committed transactions did with a batch."""

    inserted: int = 0  # new rows; rows already present (a redelivery) are not counted
    committed: list[Row] = field(default_factory=list)  # stored now or before
    displaced: list[Row] = field(default_factory=list)  # (conversation_id, seq) taken by another id
    rejected: dict[uuid.UUID, str] = field(default_factory=dict)  # message id -> reason
    gone: list[Row] = field(default_factory=list)  # of conversations deleted meanwhile


class Failure(enum.Enum):
    """Why a persist attempt failed, which decides what happens to the batch."""

    REJECTED = "rejected"  # the data itself: isolate the entry and dead-letter it
    # PostgreSQL is unreachable (outages.POSTGRES_DOWN): keep the batch, back off, retry.
    UNAVAILABLE = "unavailable"
    TRANSIENT = "transient"  # a deadlock, a lock timeout, a missing table: retry the batch as is


def classify(error: BaseException) -> Failure | None:
    """The Failure an exception means, or None for a bug that should not be retried."""
    sqlstate = str(getattr(error, "sqlstate", "") or "")
    if isinstance(error, asyncpg.PostgresError) and sqlstate.startswith(("22", "23")):
        return Failure.REJECTED  # data exception, integrity constraint violation
    if (
        isinstance(error, asyncpg.InterfaceError)
        and isinstance(error, ValueError)
        and not isinstance(error, asyncpg.ClientConfigurationError)
    ):
        # asyncpg's client-side data error is an InterfaceError too: a bad value, no outage.
        return Failure.REJECTED
    if isinstance(error, POSTGRES_DOWN):
        return Failure.UNAVAILABLE  # what the server answers 503 for
    if isinstance(error, asyncpg.PostgresError):
        return Failure.TRANSIENT
    if isinstance(error, (ValueError, ArithmeticError)):
        # Raised by asyncpg while encoding a value PostgreSQL cannot hold (an int past
        # bigint, an unencodable string): a property of the entry, not of the server.
        return Failure.REJECTED
    return None


def describe_rejection(error: BaseException) -> str:
    sqlstate = getattr(error, "sqlstate", None)
    detail = getattr(error, "detail", None)
    text = f"{sqlstate} {error}" if sqlstate else f"{type(error).__name__}: {error}"
    return f"{text} ({detail})" if detail else text


async def persist_batch(pool: asyncpg.Pool, rows: Sequence[Row]) -> Persisted:
    """Store `rows` in one transaction; raise if any of them cannot be stored."""
    if not rows:
        return Persisted()
    async with pool.acquire() as conn:
        try:
            async with conn.transaction():
                live, gone = await _lock_conversations(conn, rows)
                messages, changes = _split(live)
                if messages:
                    await conn.copy_records_to_table("messages", records=messages, columns=COLUMNS)
                if changes:
                    await conn.executemany(_APPLY_CHANGE, changes)
                if live:
                    await _advance_conversations(conn, live)
                    await media_uses.record(conn, live)
        except asyncpg.UniqueViolationError:
            pass  # some row is stored already: merge the batch instead, skipping those
        else:
            return Persisted(inserted=len(messages), committed=live, gone=gone)
        async with conn.transaction():
            live, gone = await _lock_conversations(conn, rows)
            messages, changes = _split(live)
            merged = await _merge(conn, messages)
            if changes:
                await conn.executemany(_APPLY_CHANGE, changes)
                await _advance_conversations(conn, changes)
            merged.committed += changes
            merged.gone = gone
            await media_uses.record(conn, merged.committed)
            return merged


async def _lock_conversations(
    conn: asyncpg.Connection, rows: Sequence[Row]
) -> tuple[list[Row], list[Row]]:
    """Lock the rows' conversations; the rows of those that exist, and of those deleted."""
    ids = sorted({row.conversation_id for row in rows})
    present = {r["id"] for r in await conn.fetch(_LOCK_CONVERSATIONS, ids)}
    if len(present) == len(ids):
        return list(rows), []
    return (
        [row for row in rows if row.conversation_id in present],
        [row for row in rows if row.conversation_id not in present],
    )


def _split(rows: Sequence[Row]) -> tuple[list[Row], list[Row]]:
    """Messages, and changes in log order (each change overwrites the one before it)."""
    messages = [row for row in rows if row.changed_seq is None]
    changes = sorted((row for row in rows if row.changed_seq is not None), key=_position)
    return messages, changes


def _position(row: Row) -> int:
    return row.position


async def _merge(conn: asyncpg.Connection, rows: Sequence[Row]) -> Persisted:
    """Insert what is not stored yet, and sort out why each skipped row was skipped."""
    if not rows:
        return Persisted()
    await conn.execute(_CREATE_STAGING)
    await conn.copy_records_to_table("messages_staging", records=rows, columns=COLUMNS)
    inserted_ids = {r["id"] for r in await conn.fetch(_INSERT)}
    displaced_ids: set[uuid.UUID] = set()
    skipped = [r.id for r in rows if r.id not in inserted_ids]
    if skipped:
        present = {r["id"] for r in await conn.fetch(_PRESENT, skipped)}
        displaced_ids = set(skipped) - present
    committed = [r for r in rows if r.id not in displaced_ids]
    displaced = [r for r in rows if r.id in displaced_ids]
    if committed:
        await _advance_conversations(conn, committed)
    return Persisted(inserted=len(inserted_ids), committed=committed, displaced=displaced)


async def _advance_conversations(conn: asyncpg.Connection, rows: Sequence[Row]) -> None:
    """Move each conversation's last_seq (the newest log position, changes included) and
    last_activity_at (the newest message's time: an edit does not bring a conversation up)
    forward, never back. The conversations are locked already (_lock_conversations)."""
    newest: dict[uuid.UUID, tuple[int, datetime]] = {}
    for row in rows:
        seq, sent_at = newest.get(row.conversation_id, (row.position, row.sent_at))
        newest[row.conversation_id] = (max(seq, row.position), max(sent_at, row.sent_at))
    ids = list(newest)
    seqs, sent = zip(*newest.values(), strict=True)
    await conn.execute(_ADVANCE_CONVERSATIONS, ids, seqs, sent)


async def persist_isolating(pool: asyncpg.Pool, rows: Sequence[Row]) -> Persisted:
    """Store `rows`; if the batch is rejected, split it in halves until the poison is apart.

    Halving finds one poison row among n in about 2·log2(n) transactions where retrying
    row by row took n: seconds of stall for a 5,000-row batch. Raises on anything but a
    rejection (PostgreSQL unreachable, a deadlock): the caller keeps the whole batch and
    retries it later; rows already committed by the halving are then absorbed by ON CONFLICT.
    """
    try:
        return await persist_batch(pool, rows)
    except Exception as exc:
        if classify(exc) is not Failure.REJECTED:
            raise
        if len(rows) == 1:
            return Persisted(rejected={rows[0].id: describe_rejection(exc)})
    middle = len(rows) // 2
    first = await persist_isolating(pool, rows[:middle])
    second = await persist_isolating(pool, rows[middle:])
    return Persisted(
        inserted=first.inserted + second.inserted,
        committed=first.committed + second.committed,
        displaced=first.displaced + second.displaced,
        rejected=first.rejected | second.rejected,
        gone=first.gone + second.gone,
    )
