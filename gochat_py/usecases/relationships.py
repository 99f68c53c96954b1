"""Friend requests, friendships and blocks, whichever door asked.

Each change is committed first, then every process forgets the pair's direct conversation
(its permission to send is cached with its members: realtime/membership.py), then the
people concerned hear of it live on every device. A block is announced to nobody: the
blocked user learns of it only as the code `blocked` when they try to reach the blocker.
"""

from __future__ import annotations

import uuid

import asyncpg
from loguru import logger
from redis.exceptions import RedisError

from gochat_py.errors import NotFound
from gochat_py.ids import UserId
from gochat_py.notifications import ContactNotice, NotificationType
from gochat_py.outages import DEPENDENCY_DOWN
from gochat_py.postgres.blocks import Block, BlockRow, Blocks
from gochat_py.postgres.contacts import (
    After,
    ContactRequest,
    ContactRow,
    Contacts,
    Direction,
    RequestRow,
)
from gochat_py.realtime.events import (
    Announcer,
    ContactRemovedEvent,
    ContactRequestEvent,
    ContactRequestUpdatedEvent,
    Event,
)
from gochat_py.realtime.membership import Membership
from gochat_py.redis.ratelimit import RateLimiter
from gochat_py.usecases.notifications import Notifications
from gochat_py.usecases.presence import Presence

REQUEST_ACTION = "contact_request"  # the rate limit's name (redis/keys.py rate_limit)


class Relationships:
    def __init__(
        self,
        contacts: Contacts,
        blocks: Blocks,
        membership: Membership,
        announcer: Announcer,
        limiter: RateLimiter,
        requests_per_window: int,
        notifications: Notifications,
        presence: Presence,
    ) -> None:
        self._contacts = contacts
        self._blocks = blocks
        self._membership = membership
        self._announcer = announcer
        self._limiter = limiter
        self._requests_per_window = requests_per_window
        self._notifications = notifications
        self._presence = presence

    async def request(self, sender: UserId, recipient: UserId) -> tuple[ContactRequest, bool]:
        """A pending request to `recipient`, or their own request to the sender accepted at
        once; and whether it was accepted. Every attempt counts toward the sender's limit,
        refused ones too, so the limit also bounds probing who exists or blocked them."""
        await self._limiter.hit(REQUEST_ACTION, str(sender), self._requests_per_window)
        request, accepted = await self._contacts.request(sender, recipient)
        if accepted:
            await self._membership.invalidate_direct_between(sender, recipient)
            await self._tell_both(request, ContactRequestUpdatedEvent(request=request))
            await self._introduce(request)
            # The recipient had asked first: this is their request, accepted.
            await self._notify(recipient, "contact_accepted", sender, request)
        else:
            await self._tell_both(request, ContactRequestEvent(request=request))
            await self._notify(recipient, "contact_request", sender, request)
        return request, accepted

    async def accept(self, user: UserId, request_id: uuid.UUID) -> ContactRequest:
        request = await self._contacts.decide(user, request_id, "accepted")
        await self._membership.invalidate_direct_between(
            UserId(request.from_.id), UserId(request.to.id)
        )
        await self._tell_both(request, ContactRequestUpdatedEvent(request=request))
        await self._introduce(request)
        await self._notify(UserId(request.from_.id), "contact_accepted", user, request)
        return request

    async def reject(self, user: UserId, request_id: uuid.UUID) -> ContactRequest:
        request = await self._contacts.decide(user, request_id, "rejected")
        await self._tell_both(request, ContactRequestUpdatedEvent(request=request))
        return request

    async def cancel(self, user: UserId, request_id: uuid.UUID) -> ContactRequest:
        request = await self._contacts.decide(user, request_id, "cancelled")
        await self._tell_both(request, ContactRequestUpdatedEvent(request=request))
        return request

    async def _introduce(self, request: ContactRequest) -> None:
        # Done and told: a presence Redis cannot read now comes with the next transition.
        try:
            await self._presence.introduce(request.from_, request.to)
        except (asyncpg.PostgresError, RedisError, *DEPENDENCY_DOWN) as exc:
            logger.warning("presence_not_introduced", error=type(exc).__name__)

    async def _notify(
        self, recipient: UserId, kind: NotificationType, actor: UserId, request: ContactRequest
    ) -> None:
        # The change is committed and both people were told live: a notification PostgreSQL
        # cannot store now is lost rather than turning a done change into an error.
        try:
            await self._notifications.notify(
                recipient, kind, actor, ContactNotice(request_id=request.id)
            )
        except (asyncpg.PostgresError, *DEPENDENCY_DOWN) as exc:
            logger.warning("notification_lost", type=kind, error=type(exc).__name__)

    async def pending(
        self, user: UserId, direction: Direction, limit: int, after: After | None
    ) -> list[RequestRow]:
        return await self._contacts.pending(user, direction, limit, after)

    async def contacts(self, user: UserId, limit: int, after: After | None) -> list[ContactRow]:
        return await self._contacts.page(user, limit, after)

    async def remove_contact(self, user: UserId, other: UserId) -> None:
        """End the friendship for both; NotFound when they are not contacts."""
        if not await self._contacts.remove(user, other):
            raise NotFound("not a contact", code="contact_not_found")
        await self._membership.invalidate_direct_between(user, other)
        await self._announcer.to_user(user, ContactRemovedEvent(user_id=other))
        await self._announcer.to_user(other, ContactRemovedEvent(user_id=user))

    async def block(self, blocker: UserId, blocked: UserId) -> tuple[Block, bool]:
        """The block and whether this call made it; a friendship and pending requests
        between the two end with it."""
        block, created = await self._blocks.block(blocker, blocked)
        await self._membership.invalidate_direct_between(blocker, blocked)
        return block, created

    async def unblock(self, blocker: UserId, blocked: UserId) -> None:
        """Lift a block; NotFound when there was none."""
        if not await self._blocks.unblock(blocker, blocked):
            raise NotFound("not blocked", code="block_not_found")
        await self._membership.invalidate_direct_between(blocker, blocked)

    async def blocks(self, blocker: UserId, limit: int, after: After | None) -> list[BlockRow]:
        return await self._blocks.page(blocker, limit, after)

    async def _tell_both(self, request: ContactRequest, event: Event) -> None:
        for user in (request.from_.id, request.to.id):
            await self._announcer.to_user(UserId(user), event)
