"""Resuming after a reconnect: what a device missed in each conversation it names, from
the seq it last saw, members only, and the one place a completed resume is reported."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

import msgspec
from loguru import logger

from gochat_py.ids import ConversationId, UserId
from gochat_py.postgres.conversations import Conversations
from gochat_py.redis.replay import ReplayReader

# Told, once a resume's frames are queued on the socket, that a device of the user now
# holds a conversation up to a seq: a delivery watermark (issue 12, "Delivery status"),
# the shape of a `received` frame's use case.
DeliveredUpTo = Callable[[UserId, ConversationId, int], Awaitable[None]]


class Missed(msgspec.Struct, frozen=True, kw_only=True):
    """One conversation's part: its log from `from_seq` to `to_seq` (none when `from_seq`
    > `to_seq`); `frames` is all of it when `recovered`, and empty otherwise."""

    conversation_id: ConversationId
    recovered: bool
    from_seq: int
    to_seq: int
    frames: list[str]


class Replay(msgspec.Struct, frozen=True, kw_only=True):
    missed: list[Missed]  # in the order the device named them
    not_found: list[ConversationId]  # not a member, or no such conversation


class Resumption:
    def __init__(
        self,
        conversations: Conversations,
        reader: ReplayReader,
        replay_max: int,
        delivered: DeliveredUpTo | None = None,
    ) -> None:
        """`replay_max`: the frames one replay may carry in all; a conversation that does
        not fit is not recovered and its device reads it from history in pages."""
        self._conversations = conversations
        self._reader = reader
        self._replay_max = replay_max
        self._delivered = delivered

    async def replay(self, user: UserId, positions: Mapping[ConversationId, int]) -> Replay:
        """Per conversation `user` is a member of, what came after its position."""
        if not positions:
            return Replay(missed=[], not_found=[])
        stored = await self._conversations.stored_seqs(user, list(positions))
        mine = {c: position for c, position in positions.items() if c in stored}
        found = await self._reader.after(mine, self._replay_max)
        missed = []
        for conversation_id, position in mine.items():
            part = found[conversation_id]
            current, recovered = part.current, part.recovered
            if current < 0:
                # Redis knows nothing of it: no message yet, or Redis lost its data and
                # PostgreSQL knows how far the log went.
                current = stored[conversation_id]
                recovered = current <= position
            missed.append(
                Missed(
                    conversation_id=conversation_id,
                    recovered=recovered,
                    from_seq=position + 1,
                    to_seq=max(current, position),
                    frames=part.frames,
                )
            )
        not_found = [c for c in positions if c not in stored]
        return Replay(missed=missed, not_found=not_found)

    async def caught_up(self, user: UserId, replay: Replay) -> None:
        """The replay is queued on the device's socket: each conversation it brought up to
        date is reported here, the single place a resume counts as delivery. A report that
        fails is logged: the device has its frames whatever the watermark says."""
        if self._delivered is None:
            return
        for missed in replay.missed:
            if not missed.recovered or missed.from_seq > missed.to_seq:
                continue  # nothing came: the device already held what it holds
            try:
                await self._delivered(user, missed.conversation_id, missed.to_seq)
            except Exception as exc:
                logger.bind(user_id=str(user)).warning(
                    "resume_delivery_report_failed", error=type(exc).__name__
                )
