"""Delivery status: how far each member's devices have received a conversation, said by the
client (`received`), implied by a read, and listed beside the read marks."""

from __future__ import annotations

import msgspec

from gochat_py.errors import BadRequest
from gochat_py.ids import ConversationId, UserId
from gochat_py.postgres.conversations import Conversations
from gochat_py.postgres.receipts import MemberReceipt, Receipts
from gochat_py.realtime.membership import Membership
from gochat_py.redis.sequences import Sequences
from gochat_py.usecases.delivery_flush import DeliveryFlusher


class ConversationReceipts(msgspec.Struct, frozen=True):
    receipts: list[MemberReceipt]


class DeliveryMarks:
    def __init__(
        self,
        membership: Membership,
        conversations: Conversations,
        counter: Sequences,
        receipts: Receipts,
        flusher: DeliveryFlusher,
    ) -> None:
        self._membership = membership
        self._conversations = conversations
        self._counter = counter
        self._receipts = receipts
        self._flusher = flusher

    async def received(self, user: UserId, conversation_id: ConversationId, seq: int) -> None:
        """A device of `user` has everything of the conversation up to `seq`: the
        `received` frame, and any other way the server learns it (a resume).

        The mark never moves back. A seq past the last one handed out is refused
        (`seq_ahead`): no device can have it, so the client is wrong about what it holds,
        and a mark set there would report messages delivered before they exist.
        NotAMember for a stranger."""
        await self._membership.require(conversation_id, user)
        last = await self._last_seq(conversation_id)
        if seq > last:
            raise BadRequest(
                f"seq {seq} is past the conversation's last seq ({last})", code="seq_ahead"
            )
        self._flusher.note(conversation_id, user, seq)

    async def read(self, user: UserId, conversation_id: ConversationId, seq: int) -> None:
        """A member's read mark moved to `seq`: what was read was delivered. A read mark
        is not checked against the last seq, so this one is capped at it."""
        self._flusher.note(conversation_id, user, min(seq, await self._last_seq(conversation_id)))

    async def receipts(self, user: UserId, conversation_id: ConversationId) -> ConversationReceipts:
        """Every member's delivered and read marks, for a member; NotAMember otherwise.
        Marks still held by a process's batch appear within DELIVERY_FLUSH_INTERVAL."""
        await self._membership.require(conversation_id, user)
        return ConversationReceipts(await self._receipts.of_conversation(conversation_id))

    async def _last_seq(self, conversation_id: ConversationId) -> int:
        last = await self._counter.last(conversation_id)
        if last is None:
            # No counter in Redis: nothing sent yet, or Redis lost it (the send script
            # re-seeds it from the same place).
            last = await self._conversations.highest_seq(conversation_id)
        return last
