"""What the server announces live beside messages, to a conversation's members or to one
user's devices, and the one way such an announcement is published."""

from __future__ import annotations

import uuid
from collections.abc import Collection
from typing import Literal

import msgspec
from redis.asyncio import Redis

from gochat_py.ids import ConversationId, UserId
from gochat_py.notifications import Notification
from gochat_py.postgres.contacts import ContactRequest
from gochat_py.redis import envelope, keys
from gochat_py.redis.online import users_with_sockets
from gochat_py.redis.pipelining import Pipeliner


# Outgoing frames name their event first, so a person reading a socket sees it at once.
class TypingEvent(msgspec.Struct, frozen=True, kw_only=True):
    event: Literal["typing"] = "typing"
    conversation_id: uuid.UUID
    user_id: uuid.UUID
    username: str


class ReadEvent(msgspec.Struct, frozen=True, kw_only=True):
    event: Literal["read"] = "read"
    conversation_id: uuid.UUID
    user_id: uuid.UUID
    seq: int


class DeliveredEvent(msgspec.Struct, frozen=True, kw_only=True):
    """A device of member `user_id` has every entry of the conversation up to `seq`: to
    the senders of the messages that mark newly covers (usecases/delivery_flush.py)."""

    event: Literal["delivered"] = "delivered"
    conversation_id: uuid.UUID
    user_id: uuid.UUID
    seq: int


class NotificationEvent(msgspec.Struct, frozen=True, kw_only=True):
    """A new notification, to every device of its recipient."""

    event: Literal["notification"] = "notification"
    notification: Notification


class NotificationsReadEvent(msgspec.Struct, frozen=True, kw_only=True):
    """The user marked notifications read (on any device): to every device of theirs."""

    event: Literal["notifications_read"] = "notifications_read"
    ids: list[uuid.UUID]  # those this marking changed; empty when `all`
    all: bool  # every notification up to now is read
    unread_count: int


# The contact events go to both people concerned, every device of each, so the actor's
# other devices follow too; `from` and `to` say which side a device's user is on.
class ContactRequestEvent(msgspec.Struct, frozen=True, kw_only=True):
    """A friend request was sent."""

    event: Literal["contact_request"] = "contact_request"
    request: ContactRequest


class ContactRequestUpdatedEvent(msgspec.Struct, frozen=True, kw_only=True):
    """A friend request was accepted (the two are contacts now), rejected or cancelled."""

    event: Literal["contact_request_updated"] = "contact_request_updated"
    request: ContactRequest


class ContactRemovedEvent(msgspec.Struct, frozen=True, kw_only=True):
    """A friendship was ended by one of the two; `user_id` is the other person's id as
    each of them sees it: the contact they no longer have."""

    event: Literal["contact_removed"] = "contact_removed"
    user_id: uuid.UUID


class PresenceEvent(msgspec.Struct, frozen=True, kw_only=True):
    """A user the recipient may see came online (their first socket) or went offline (their
    last socket closed or expired); `last_seen_at` (unix ms) only with offline."""

    event: Literal["presence"] = "presence"
    user_id: uuid.UUID
    username: str
    status: Literal["online", "offline"]
    last_seen_at: int | None


class ConversationDeletedEvent(msgspec.Struct, frozen=True, kw_only=True):
    """A group was deleted (by its owner, or as its last member left), its history with
    it: to every device of each of its members, who can read or send nothing more there."""

    event: Literal["conversation_deleted"] = "conversation_deleted"
    conversation_id: uuid.UUID
    actor_id: uuid.UUID


# Every event a conversation's members or one user may be sent; each names itself in `event`.
Event = (
    TypingEvent
    | ReadEvent
    | DeliveredEvent
    | NotificationEvent
    | NotificationsReadEvent
    | ContactRequestEvent
    | ContactRequestUpdatedEvent
    | ContactRemovedEvent
    | PresenceEvent
    | ConversationDeletedEvent
)


class GochatPresence(msgspec.Struct, frozen=True, kw_only=True):
    """A PresenceEvent as gochat's own clients read it (websocket/dialects.py renders it)."""

    type: Literal["presence"] = "presence"
    user_id: uuid.UUID
    username: str
    status: Literal["online", "offline"]


# Events in gochat's shapes, named by `type`: what sockets speaking gochat's frames get
# instead of the Event of the same name.
GochatEvent = GochatPresence

_encoder = msgspec.json.Encoder()


class Announcer:
    """Publishes an event once on the conversation's channel, naming its recipients and the
    event; every process holding a socket of one of them hands it on to those of their
    sockets that asked for that event (realtime/hub.py)."""

    def __init__(
        self, redis: Redis, partitions: int, addressing: envelope.Addressing | None = None
    ) -> None:
        """`addressing`: when an event names its recipients and when it says "routed"
        instead (without it, events always name them)."""
        self._redis = redis
        self._partitions = partitions
        self._addressing = addressing or envelope.Addressing(named_max=None)
        # One event for many users (a presence change to every watcher) is many PUBLISHes
        # on as many channels: concurrent calls go out in one batch.
        self._pipeliner = Pipeliner(redis)

    async def to_user(self, user: UserId, event: Event) -> None:
        """Every socket of `user` that asked for the event, on every process."""
        await self.to_users([user], event)

    async def to_users(self, users: Collection[UserId], event: Event) -> None:
        """Every socket of each of `users` that asked for the event: the event encoded once,
        one PUBLISH per user with a socket somewhere, all in one batch.

        For many users, one NUMSUB first says who has a socket: most of a user's watchers
        are usually away, and a PUBLISH costs this process far more than its share of a
        NUMSUB (profiled, bench presence-churn). A watcher whose socket subscribes just
        after it is not missed: their connect reads presence after subscribing."""
        if len(users) > 1:
            users = await users_with_sockets(self._redis, users)
        frame = _encoder.encode(event)
        await self._pipeliner.execute_many(
            ("PUBLISH", keys.user_channel(user), envelope.seal([user], frame, event.event))
            for user in users
        )

    async def to_members(
        self,
        conversation_id: ConversationId,
        members: Collection[UserId],
        event: Event,
        *,
        excluding: Collection[UserId] = (),
    ) -> None:
        """Every socket that asked for the event of each of `members` but `excluding`."""
        channel = keys.conversation_channel(conversation_id, self._partitions)
        head = self._addressing.header(members, event.event, excluding=excluding)
        await self._redis.publish(channel, head + _encoder.encode(event))
