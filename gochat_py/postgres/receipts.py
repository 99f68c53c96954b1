"""Delivery and read watermarks in PostgreSQL: the batched advance of `delivered_seq`, the
senders of a range of stored messages, and a conversation's receipts."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence

import asyncpg
import msgspec

from gochat_py.ids import ConversationId, UserId

# Rows are locked in key order (the CTE's ORDER BY ... FOR UPDATE), so two processes
# flushing overlapping batches wait for each other instead of deadlocking. FOR UPDATE
# re-reads a row that another flush changed meanwhile: `old_seq` is the mark this statement
# moved from, and a mark already as far is left out (not updated, not reported).
_ADVANCE = """
WITH wanted AS (
    SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::bigint[]) AS w(conversation_id, user_id, seq)
), locked AS (
    SELECT m.conversation_id, m.user_id, m.delivered_seq AS old_seq, w.seq
    FROM conversation_members m
    JOIN wanted w USING (conversation_id, user_id)
    WHERE m.delivered_seq < w.seq
    ORDER BY m.conversation_id, m.user_id
    FOR UPDATE OF m
)
UPDATE conversation_members m SET delivered_seq = l.seq
FROM locked l
WHERE m.conversation_id = l.conversation_id AND m.user_id = l.user_id
RETURNING m.conversation_id, m.user_id, l.old_seq, m.delivered_seq
"""

# One query for every range: the distinct senders of text messages in (low, high].
_SENDERS = """
SELECT DISTINCT r.i, m.sender_id
FROM unnest($1::uuid[], $2::bigint[], $3::bigint[]) WITH ORDINALITY AS r(c, low, high, i)
JOIN messages m ON m.conversation_id = r.c AND m.seq > r.low AND m.seq <= r.high
WHERE m.type = 'text'
"""


class DeliveryMark(msgspec.Struct, frozen=True):
    """A member's device has every entry of the conversation up to `seq`."""

    conversation_id: ConversationId
    user_id: UserId
    seq: int


class Advance(msgspec.Struct, frozen=True):
    """A delivered mark that moved from `old_seq` to `new_seq`."""

    conversation_id: ConversationId
    user_id: UserId
    old_seq: int
    new_seq: int


class SeqRange(msgspec.Struct, frozen=True):
    """The entries of a conversation with low < seq <= high."""

    conversation_id: ConversationId
    low: int
    high: int


class MemberReceipt(msgspec.Struct, frozen=True):
    user_id: uuid.UUID
    username: str
    delivered_seq: int  # a device of theirs has everything up to here
    read_seq: int  # they have read up to here


class Receipts:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def advance_delivered(self, marks: Collection[DeliveryMark]) -> list[Advance]:
        """Move each mark forward in one statement (never back); the marks that moved.
        A pair that is not a member (any more) matches no row and is dropped."""
        if not marks:
            return []
        rows = await self._pool.fetch(
            _ADVANCE,
            [m.conversation_id for m in marks],
            [m.user_id for m in marks],
            [m.seq for m in marks],
        )
        return [
            Advance(
                ConversationId(row["conversation_id"]),
                UserId(row["user_id"]),
                row["old_seq"],
                row["delivered_seq"],
            )
            for row in rows
        ]

    async def senders_between(self, ranges: Sequence[SeqRange]) -> list[set[UserId]]:
        """For each range, who sent the stored text messages in it (index range scans on
        `(conversation_id, seq)`, one query for all)."""
        found: list[set[UserId]] = [set() for _ in ranges]
        if not ranges:
            return found
        rows = await self._pool.fetch(
            _SENDERS,
            [r.conversation_id for r in ranges],
            [r.low for r in ranges],
            [r.high for r in ranges],
        )
        for row in rows:
            found[row["i"] - 1].add(UserId(row["sender_id"]))
        return found

    async def of_conversation(self, conversation_id: ConversationId) -> list[MemberReceipt]:
        """Every member's delivered and read marks, in the order they joined."""
        rows = await self._pool.fetch(
            "SELECT u.id, u.username, m.delivered_seq, m.last_read_seq"
            " FROM conversation_members m JOIN users u ON u.id = m.user_id"
            " WHERE m.conversation_id = $1 ORDER BY m.joined_at, u.username",
            conversation_id,
        )
        return [
            MemberReceipt(
                user_id=row["id"],
                username=row["username"],
                # A read implies delivered; a read mark stored before this column existed,
                # or a delivered mark still waiting in a process's batch, is not behind it.
                delivered_seq=max(row["delivered_seq"], row["last_read_seq"]),
                read_seq=row["last_read_seq"],
            )
            for row in rows
        ]
