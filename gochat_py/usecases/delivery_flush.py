"""One process's delivered marks, coalesced and written together, and the `delivered`
events they cause.

Every device says `received` for what reaches it: one UPDATE per frame per device would
be most of PostgreSQL's writes in a busy group. So `note` only keeps the highest seq per
(conversation, member) in memory, and every `DELIVERY_FLUSH_INTERVAL` (and once more at
shutdown) one statement advances them all (postgres/receipts.py). A process killed
outright loses the marks of at most its last interval: a watermark is then behind, never
wrong, and the member's next `received` or read moves it on.

Who hears of a mark that moved: the members (other than its owner) who sent a text message
in the range it newly covers, each on their own route (`Announcer.to_users`). Not every
member: that would cost members² frames per message in a group. Senders come from the
newest entries of that range in the recent cache (redis/recent.py) and, below what it
holds, from PostgreSQL's messages; a message still waiting for the worker below the
cache's newest SENDERS_SCAN_MAX of the range is not found, and its sender learns of the
mark only from `GET .../receipts`.
"""

from __future__ import annotations

import asyncio
import contextlib

import asyncpg
from loguru import logger
from redis.exceptions import RedisError

from gochat_py.ids import ConversationId, UserId
from gochat_py.outages import DEPENDENCY_DOWN
from gochat_py.postgres.receipts import Advance, DeliveryMark, Receipts, SeqRange
from gochat_py.realtime.events import Announcer, DeliveredEvent
from gochat_py.realtime.membership import Membership
from gochat_py.redis.recent import RecentCache

FLUSH_BATCH_MAX = 5000  # marks per UPDATE; a backlog after an outage goes in several
STOP_TIMEOUT = 5.0  # the last flush at shutdown may take this long before it is given up

_FAILURES = (RedisError, asyncpg.PostgresError, *DEPENDENCY_DOWN)


class DeliveryFlusher:
    def __init__(
        self,
        receipts: Receipts,
        recent: RecentCache,
        membership: Membership,
        announcer: Announcer,
        interval: float,
    ) -> None:
        self._receipts = receipts
        self._recent = recent
        self._membership = membership
        self._announcer = announcer
        self._interval = interval
        self._pending: dict[tuple[ConversationId, UserId], int] = {}
        self._task: asyncio.Task[None] | None = None

    def note(self, conversation_id: ConversationId, user: UserId, seq: int) -> None:
        """A device of `user` has the conversation up to `seq`: written at the next flush."""
        key = (conversation_id, user)
        if seq > self._pending.get(key, 0):
            self._pending[key] = seq

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="delivery-flusher")

    async def stop(self) -> None:
        """Stop the timer and write what is held."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        try:
            async with asyncio.timeout(STOP_TIMEOUT):
                await self.flush()
        except (TimeoutError, *_FAILURES) as exc:
            logger.warning("delivery_flush_lost", marks=len(self._pending), error=repr(exc))

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.flush()
            except _FAILURES as exc:
                # The marks went back into the batch: the next interval retries them.
                logger.warning("delivery_flush_failed", error=type(exc).__name__)

    async def flush(self) -> None:
        """Write every mark held now (marks noted meanwhile wait for the next flush; those
        not written return to the batch if PostgreSQL fails), then tell the senders of what
        the moved marks cover (an announcement that fails is logged, not retried)."""
        held, self._pending = self._pending, {}
        marks = [DeliveryMark(c, u, seq) for (c, u), seq in held.items()]
        for start in range(0, len(marks), FLUSH_BATCH_MAX):
            chunk = marks[start : start + FLUSH_BATCH_MAX]
            try:
                advances = await self._receipts.advance_delivered(chunk)
            except BaseException:
                for mark in marks[start:]:
                    self.note(mark.conversation_id, mark.user_id, mark.seq)
                raise
            try:
                await self._announce(advances)
            except _FAILURES as exc:
                logger.warning("delivered_announce_failed", error=type(exc).__name__)

    async def _announce(self, advances: list[Advance]) -> None:
        if not advances:
            return
        ranges = [(a.conversation_id, a.old_seq, a.new_seq) for a in advances]
        cached = await self._recent.senders_between(ranges)
        senders = [found.senders for found in cached]
        # Below the lowest entry read from the cache (all of the range when none was),
        # PostgreSQL holds the rest.
        below: list[tuple[int, SeqRange]] = []
        for i, (advance, found) in enumerate(zip(advances, cached, strict=True)):
            high = advance.new_seq if found.lowest is None else found.lowest - 1
            if high > advance.old_seq:
                below.append((i, SeqRange(advance.conversation_id, advance.old_seq, high)))
        stored = await self._receipts.senders_between([r for _, r in below])
        for (i, _), stored_senders in zip(below, stored, strict=True):
            senders[i] |= stored_senders
        announcements = []
        for advance, users in zip(advances, senders, strict=True):
            # A sender who has left the conversation since learns nothing more of it.
            members = await self._membership.members(advance.conversation_id)
            recipients = (users & members) - {advance.user_id}
            if recipients:
                event = DeliveredEvent(
                    conversation_id=advance.conversation_id,
                    user_id=advance.user_id,
                    seq=advance.new_seq,
                )
                announcements.append(self._announcer.to_users(recipients, event))
        # Issued together, their PUBLISHes share the Announcer's batches.
        await asyncio.gather(*announcements)
