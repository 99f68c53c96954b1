"""A broadcast, whichever door asked: one message into the sender's direct conversation with
each recipient, each an ordinary message of that conversation's log.

The conversations missing are created together (postgres/conversations.py `open_directs`)
and announced like any new conversation; the sends are the ordinary send path, run
concurrently so that redis/publish.py's script calls share pipelined round trips. Who may
not be written to is skipped with the reason, never failing the whole call. A repeat of a
`client_broadcast_id` answers with the first call's result; each message's client_msg_id
comes from it, so a retry after a crash sends only what the crash left unsent.
"""

from __future__ import annotations

import asyncio
import contextlib

import msgspec

from gochat_py import broadcasts
from gochat_py.broadcasts import BroadcastRequest, BroadcastResult, Outcome, SentTo, Skipped
from gochat_py.direct_policy import Blocked, NotAContact
from gochat_py.errors import ValidationFailed
from gochat_py.ids import ConversationId, UserId
from gochat_py.postgres.conversations import Conversations
from gochat_py.realtime.membership import Membership, MembershipChange
from gochat_py.redis.broadcasts import BroadcastLedger
from gochat_py.redis.ratelimit import RateLimiter
from gochat_py.redis.sequences import Sequences
from gochat_py.usecases.sending import Sending

RATE_LIMIT_ACTION = "broadcast"


class Broadcasting:
    def __init__(
        self,
        conversations: Conversations,
        membership: Membership,
        sending: Sending,
        sequences: Sequences,
        ledger: BroadcastLedger,
        limiter: RateLimiter,
        limit: int,
    ) -> None:
        """`limiter` counts in the window of BROADCAST_RATE; `limit`: broadcasts per window."""
        self._conversations = conversations
        self._membership = membership
        self._sending = sending
        self._sequences = sequences
        self._ledger = ledger
        self._limiter = limiter
        self._limit = limit

    async def broadcast(
        self, sender: UserId, sender_username: str, request: BroadcastRequest
    ) -> BroadcastResult:
        """Each recipient's outcome, in order. ValidationFailed for blank content or a
        recipient named twice; RateLimited past BROADCAST_RATE; BroadcastInProgress while
        a call with the same id runs. A failure midway (Redis down, a conversation
        backlogged) raises, and a retry with the same id sends only what is missing."""
        if not request.content.strip():
            raise ValidationFailed(
                "content must not be blank", code="empty_content", field="content"
            )
        if len(set(request.recipient_ids)) != len(request.recipient_ids):
            raise ValidationFailed(
                "recipient_ids lists a user twice", code="duplicate_recipients",
                field="recipient_ids",
            )  # fmt: skip
        claimed = await self._ledger.claim(sender, request.client_broadcast_id)
        if isinstance(claimed, BroadcastResult):
            return msgspec.structs.replace(claimed, duplicate=True)
        try:
            # After the claim: a repeat, or a call that finds one running, costs no quota.
            await self._limiter.hit(RATE_LIMIT_ACTION, str(sender), self._limit)
            result = await self._send_all(sender, sender_username, request)
            await self._ledger.save(sender, result)
        except BaseException:
            # A retry may start at once: what was sent, it finds sent (client_msg_id).
            with contextlib.suppress(Exception):
                await self._ledger.release(sender, request.client_broadcast_id, claimed)
            raise
        return result

    async def _send_all(
        self, sender: UserId, sender_username: str, request: BroadcastRequest
    ) -> BroadcastResult:
        openings = await self._conversations.open_directs(
            sender, [UserId(r) for r in request.recipient_ids]
        )
        targets = {o.recipient: o.conversation_id for o in openings if o.conversation_id}
        created = [
            MembershipChange(o.conversation_id, added=sorted((sender, o.recipient)))
            for o in openings
            if o.created and o.conversation_id
        ]
        client_msg_id = broadcasts.client_msg_id(request.client_broadcast_id)
        await self._sequences.start([change.conversation_id for change in created])
        # Every process routes the new conversations before their first message is sent.
        await self._membership.announce_changes(created)
        await self._membership.preload(targets.values())
        sends = await asyncio.gather(
            *(
                self._send_one(sender, sender_username, recipient, conversation_id,
                               request.content, client_msg_id)
                for recipient, conversation_id in targets.items()
            ),
            return_exceptions=True,
        )  # fmt: skip
        outcomes: dict[UserId, Outcome] = {}
        for recipient, sent in zip(targets, sends, strict=True):
            if isinstance(sent, BaseException):
                raise sent
            outcomes[recipient] = sent
        return BroadcastResult(
            client_broadcast_id=request.client_broadcast_id,
            duplicate=False,
            results=[
                Skipped(recipient_id=o.recipient, reason=o.refused)
                if o.refused
                else outcomes[o.recipient]
                for o in openings
            ],
        )

    async def _send_one(
        self,
        sender: UserId,
        sender_username: str,
        recipient: UserId,
        conversation_id: ConversationId,
        content: str,
        client_msg_id: str,
    ) -> Outcome:
        try:
            sent = await self._sending.send(
                sender, sender_username, conversation_id, content, client_msg_id
            )
        except Blocked:  # refused since open_directs asked: the send's own check decides
            return Skipped(recipient_id=recipient, reason="blocked")
        except NotAContact:
            return Skipped(recipient_id=recipient, reason="not_a_contact")
        message = sent.message
        return SentTo(
            recipient_id=recipient,
            conversation_id=message.conversation_id,
            message_id=message.id,
            seq=message.seq,
        )
