"""Notifications: made by the other use cases, stored, pushed live to every device of their
recipient, listed and marked read by that recipient only.

PostgreSQL is the record and the push is a courtesy: a notification is stored before it is
pushed, and a push that fails (Redis down) is logged and counted, never raised, so the
action that caused it succeeds and the notification is listed all the same. With the webhook
on (NOTIFY_WEBHOOK_URL), recipients who have no socket open anywhere also get it queued for
the webhook, under the same rule: a failure is logged and counted, never raised."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from datetime import datetime

import msgspec
from loguru import logger
from redis.exceptions import RedisError

from gochat_py import cursors, times, webhooks
from gochat_py.errors import BadRequest
from gochat_py.ids import UserId
from gochat_py.metrics import Metrics
from gochat_py.notifications import Notification, NotificationData, NotificationType
from gochat_py.postgres.notifications import StoredNotifications
from gochat_py.realtime.events import (
    Announcer,
    Event,
    NotificationEvent,
    NotificationsReadEvent,
)
from gochat_py.redis.webhook_queue import WebhookQueue

DEFAULT_PAGE = 20
MAX_PAGE = 100
MAX_READ_IDS = 100  # a page's worth per request; `all` marks any number

_encoder = msgspec.json.Encoder()


# Tagged: another listing's cursor, also a number and an id, is refused here.
class Cursor(msgspec.Struct, frozen=True, array_like=True, forbid_unknown_fields=True, tag="n"):
    """Where a page ended: its last notification's created_at (unix ms, exact: stored at
    millisecond precision) and id."""

    created_at: int
    id: uuid.UUID


class NotificationPage(msgspec.Struct, frozen=True):
    notifications: list[Notification]  # newest first
    next_cursor: str | None  # None on the last page
    unread_count: int  # all the caller's unread notifications, counted up to 1000


class Marked(msgspec.Struct, frozen=True):
    updated: int  # notifications this request turned read (already read ones not counted)
    unread_count: int  # the caller's unread notifications now, counted up to 1000


class Notifications:
    def __init__(
        self,
        stored: StoredNotifications,
        announcer: Announcer,
        metrics: Metrics,
        webhooks: WebhookQueue | None = None,
    ) -> None:
        self._stored = stored
        self._announcer = announcer
        self._metrics = metrics
        self._webhooks = webhooks  # None: the webhook is off

    async def notify(
        self,
        recipient: UserId,
        type: NotificationType,
        actor: UserId | None,
        data: NotificationData,
    ) -> Notification:
        """Store a notification for `recipient` and push it to each of their devices.

        `actor` is who caused it (None: the server itself); `data` is the type's Struct
        (notifications.py). Call it after the change it reports is committed. Raises only
        if PostgreSQL fails; a failed push is logged and counted."""
        [made] = await self.notify_many([recipient], type, actor, data)
        return made

    async def notify_many(
        self,
        recipients: Sequence[UserId],
        type: NotificationType,
        actor: UserId | None,
        data: NotificationData,
    ) -> list[Notification]:
        """`notify` for several recipients of the same event: one INSERT, the pushes
        published concurrently."""
        if not recipients:
            return []
        made = await self._stored.add(recipients, type, actor, _encoder.encode(data))
        self._metrics.notifications.labels(type).inc(len(made))
        await self._push([(user, NotificationEvent(notification=n)) for user, n in made])
        await self._queue_for_offline(made)
        return [notification for _, notification in made]

    async def page(
        self, user: UserId, unread_only: bool, limit: int, cursor: str | None
    ) -> NotificationPage:
        """The user's notifications, newest first, after `cursor` (a `next_cursor` of an
        earlier page; BadRequest `invalid_cursor` for anything else)."""
        before = _decode_cursor(cursor) if cursor is not None else None
        # One extra row says whether another page follows, so the last page has no cursor.
        found, unread = await self._stored.page(user, unread_only, limit + 1, before)
        page, more = found[:limit], len(found) > limit
        next_cursor = _encode_cursor(page[-1]) if more else None
        return NotificationPage(notifications=page, next_cursor=next_cursor, unread_count=unread)

    async def mark_read(self, user: UserId, ids: Sequence[uuid.UUID]) -> Marked:
        """Mark those of `ids` that are the user's read; others' ids change nothing and are
        not told apart from ids that do not exist. Every device of the user hears what
        changed (the one that asked too: one announcement for all of them)."""
        changed, unread = await self._stored.mark_read(user, ids)
        if changed:
            event = NotificationsReadEvent(ids=changed, all=False, unread_count=unread)
            await self._push([(user, event)])
        return Marked(updated=len(changed), unread_count=unread)

    async def mark_all_read(self, user: UserId) -> Marked:
        """Mark every notification of the user read, announced like mark_read."""
        changed, unread = await self._stored.mark_all_read(user)
        if changed:
            event = NotificationsReadEvent(ids=[], all=True, unread_count=unread)
            await self._push([(user, event)])
        return Marked(updated=changed, unread_count=unread)

    async def _push(self, events: list[tuple[UserId, Event]]) -> None:
        # Concurrently rather than pipelined: each user's channel may live on its own
        # cluster node (sharded pub/sub), and a pipeline must not span slots.
        results = await asyncio.gather(
            *(self._announcer.to_user(user, event) for user, event in events),
            return_exceptions=True,
        )
        for (user, event), result in zip(events, results, strict=True):
            if isinstance(result, RedisError | OSError):
                self._metrics.user_event_failures.labels(event.event).inc()
                logger.warning(
                    "user_event_unpublished",
                    user_id=str(user),
                    event=event.event,
                    error=type(result).__name__,
                )
            elif isinstance(result, BaseException):
                raise result

    async def _queue_for_offline(self, made: Sequence[tuple[UserId, Notification]]) -> None:
        if self._webhooks is None:
            return
        try:
            offline = await self._webhooks.offline([user for user, _ in made])
            events = (webhooks.for_notification(u, n) for u, n in made if u in offline)
            queued = await self._webhooks.add(events)
        except (RedisError, OSError) as exc:
            self._metrics.webhook_queue_failures.labels("notification").inc(len(made))
            logger.warning("webhook_not_queued", type="notification", error=type(exc).__name__)
            return
        self._metrics.webhook_events_queued.labels("notification").inc(queued)


def _encode_cursor(last: Notification) -> str:
    return cursors.encode(Cursor(last.created_at, last.id))


def _decode_cursor(text: str) -> tuple[datetime, uuid.UUID]:
    cursor = cursors.decode(text, Cursor)
    try:
        return times.from_unix_ms(cursor.created_at), cursor.id
    except OverflowError:
        raise BadRequest("cursor is not one this server issued", code="invalid_cursor") from None
