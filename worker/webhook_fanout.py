"""After a batch is committed and before it is acknowledged: one webhook event per message
per member (the sender aside) who has no socket open anywhere, queued for the webhook
deliverer. A crash between the two redelivers the batch, and its events are queued again
under the same ids, so an event is never lost to a crash, at worst queued twice.

Persistence never waits on it for long and never fails because of it: a failure here (Redis
refusing the events, a fan-out past FANOUT_TIMEOUT) is logged and counted and the batch is
settled all the same; its events are lost then, the one trade of the design.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from collections.abc import Iterator, Sequence

import asyncpg
from loguru import logger

from gochat_py import times, webhooks
from gochat_py.ids import UserId
from gochat_py.redis import stream_entries
from gochat_py.redis.webhook_queue import WebhookQueue
from worker.group import Entry
from worker.metrics import WorkerMetrics
from worker.persist import Row

# Seconds one batch's fan-out may take (a member query, a NUMSUB per 500 members, the
# XADDs) before the worker moves on to the next batch without the rest of its events.
FANOUT_TIMEOUT = 10.0
# One query for every conversation of the batch.
_MEMBERS = """
SELECT conversation_id, user_id FROM conversation_members
WHERE conversation_id = ANY($1::uuid[])
"""


class WebhookFanout:
    def __init__(self, queue: WebhookQueue, pool: asyncpg.Pool, metrics: WorkerMetrics) -> None:
        self._queue = queue
        self._pool = pool
        self._metrics = metrics

    async def queue_for_offline(self, committed: Sequence[tuple[Entry, Row]]) -> None:
        """Queue the events of a committed batch; log and count, never raise, on failure."""
        if not committed:
            return
        try:
            async with asyncio.timeout(FANOUT_TIMEOUT):
                queued = await self._queue_batch(committed)
        except Exception as exc:
            # Anything at all: persistence must not stop for the webhook.
            self._metrics.webhook_queue_failures.inc(len(committed))
            logger.bind(messages=len(committed), error=f"{type(exc).__name__}: {exc}").warning(
                "webhook_not_queued"
            )
            return
        self._metrics.webhook_events_queued.inc(queued)

    async def _queue_batch(self, committed: Sequence[tuple[Entry, Row]]) -> int:
        conversations = list({row.conversation_id for _, row in committed})
        async with self._pool.acquire() as conn:
            found = await conn.fetch(_MEMBERS, conversations)
        members: dict[uuid.UUID, list[UserId]] = defaultdict(list)
        for record in found:
            members[record["conversation_id"]].append(UserId(record["user_id"]))
        recipients = {
            user
            for _, row in committed
            for user in members[row.conversation_id]
            if user != row.sender_id
        }
        offline = await self._queue.offline(recipients)
        if not offline:
            return 0
        return await self._queue.add(_events(committed, members, offline))


def _events(
    committed: Sequence[tuple[Entry, Row]],
    members: dict[uuid.UUID, list[UserId]],
    offline: set[UserId],
) -> Iterator[webhooks.WebhookEvent]:
    for entry, row in committed:
        if row.changed_seq is not None or row.type == "system":
            continue  # edits, deletes and the group's own records reach nobody's phone
        frame = stream_entries.payload(entry.fields)
        if frame is None:  # triage made no row of such an entry
            continue
        sent_at = times.unix_ms(row.sent_at)
        for user in members[row.conversation_id]:
            if user != row.sender_id and user in offline:
                yield webhooks.for_message(user, row.id, frame, sent_at)
