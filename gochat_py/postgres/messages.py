"""Messages in PostgreSQL, as history reads them: keyset pages on (conversation_id, seq).

The worker writes them (worker/persist.py); the server only reads.
"""

from __future__ import annotations

import asyncpg

from gochat_py.ids import ConversationId, MessageId
from gochat_py.messages import Direction, Message
from gochat_py.postgres.conversations import message_columns, message_from_row

SELECT = f"""
SELECT {message_columns("m", "u")}
FROM messages m JOIN users u ON u.id = m.sender_id
WHERE m.conversation_id = $1
"""


class Messages:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def page(
        self, conversation_id: ConversationId, direction: Direction, bound: int | None, limit: int
    ) -> list[Message]:
        """Up to `limit` messages past `bound` (none: from the newest), in walking order."""
        # Each shape is a plain range on (conversation_id, seq), so the index finds the
        # page directly and a deep page costs what the first one does.
        args: tuple[int | None, ...]
        if direction == "after":
            sql, args = SELECT + " AND m.seq > $2 ORDER BY m.seq LIMIT $3", (bound, limit)
        elif bound is not None:
            sql, args = SELECT + " AND m.seq < $2 ORDER BY m.seq DESC LIMIT $3", (bound, limit)
        else:
            sql, args = SELECT + " ORDER BY m.seq DESC LIMIT $2", (limit,)
        rows = await self._pool.fetch(sql, conversation_id, *args)
        return [message_from_row(row) for row in rows]

    async def one(self, conversation_id: ConversationId, message_id: MessageId) -> Message | None:
        """The stored message, as its last stored change left it."""
        row = await self._pool.fetchrow(SELECT + " AND m.id = $2", conversation_id, message_id)
        return None if row is None else message_from_row(row)
