"""Delivery: one pub/sub connection per process fans frames out to the local sockets.

A process subscribes the channel of every conversation that a user with a socket here
belongs to, and that user's own channel (events meant for them alone), once however many
of its holders are here, and drops it when the last of them goes. Each frame arrives once
per process in an envelope naming its recipients, or, in a big group, saying "routed"
(envelope.py), and goes to every local device of each recipient: those named, or the
local users routed to the conversation's channel. Joins and leaves reach every process as
membership changes, and move the routes before the next pub/sub message is read; the
system message recording a leave drops the leaver's route too, after handing it to them,
so no frame behind it on the channel reaches them (docs/ARCHITECTURE.md, "Deliver, in big
groups"). After a lost connection the listener reconnects, subscribes every channel
again and reloads the local users' conversations; frames published meanwhile are missed,
and clients fill the gap from history by seq. Revoked sessions arrive on a process-wide
channel too; ones announced while disconnected are found by asking Redis about every local
session once the channel is subscribed again.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Collection,
    Coroutine,
    Iterable,
)
from typing import Any, Protocol

import msgspec
from loguru import logger
from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.exceptions import RedisError

from gochat_py.ids import ConversationId, UserId
from gochat_py.messages import sent_at_of
from gochat_py.metrics import Metrics
from gochat_py.realtime.membership import Membership, MembershipChange, decode_change
from gochat_py.realtime.revocation import Revocations
from gochat_py.redis import keys
from gochat_py.redis.envelope import EXCLUDED, LEAVING, ROUTED, open_envelope, user_key

RECONNECT_BACKOFF_MAX = 5.0
# A socket is accepted only once Redis has confirmed its conversations' subscriptions, so
# nothing published after the client sees the socket open can miss it; past this, accept
# anyway.
SUBSCRIBE_CONFIRM_TIMEOUT = 2.0
STOP_TIMEOUT = 2.0
# At most one published frame per this many seconds has its delivery latency measured: a
# clock read per frame is the whole cost of the frames in between, whatever the fan-out.
LATENCY_SAMPLE_INTERVAL = 0.01
_MEMBERSHIP = keys.MEMBERSHIP_CHANNEL.encode()
_REVOCATION = keys.REVOCATION_CHANNEL.encode()

ConversationsOf = Callable[[list[UserId]], Awaitable[dict[UserId, list[ConversationId]]]]


class Subscriber(Protocol):
    @property
    def user(self) -> UserId: ...

    def deliver(self, frame: str) -> None:
        """Queue a frame without waiting; a subscriber that cannot keep up closes itself."""

    def render(self, event: str, frame: str) -> str | None:
        """The frame of this event as the subscriber reads it, or None when it did not ask
        for the event (messages skip this: they go to every subscriber as published)."""

    def time_delivery(self, sent_at: int) -> None:
        """Measure the frame just delivered: from `sent_at` (unix ms) to its write."""


class Hub:
    def __init__(
        self,
        redis: Redis,
        membership: Membership,
        metrics: Metrics,
        conversations_of: ConversationsOf,
        partitions: int,
        revocations: Revocations,
    ) -> None:
        self._redis = redis
        self._revocations = revocations
        self._membership = membership
        self._metrics = metrics
        self._conversations_of = conversations_of
        self._partitions = partitions
        self._devices: dict[bytes, set[Subscriber]] = {}  # by envelope.user_key
        self._sockets = 0  # subscribers attached, across every user
        self._next_sample = 0.0  # time.monotonic() from which a frame's latency is measured
        self._routes: dict[bytes, set[str]] = {}  # channels held for each local user
        self._holders: dict[str, set[bytes]] = {}  # local users holding each channel
        self._confirmations: dict[str, asyncio.Future[None]] = {}
        self._pubsub: PubSub | None = None
        self._connected = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._membership.watch(self.apply_change)
        self._task = asyncio.create_task(self._listen(), name="hub-listener")
        # Not awaited past a short wait: the server also starts while Redis is down.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._connected.wait(), 5.0)

    async def stop(self) -> None:
        tasks = {t for t in (self._task, *self._background) if t is not None}
        for task in tasks:
            task.cancel()
        if tasks:
            # Bounded: on Python 3.11 a cancel landing inside redis-py's own wait_for can be
            # swallowed (CPython gh-86296); shutdown must not hang on it.
            await asyncio.wait(tasks, timeout=STOP_TIMEOUT)

    @contextlib.asynccontextmanager
    async def attached(
        self, subscriber: Subscriber, conversations: Iterable[ConversationId]
    ) -> AsyncIterator[None]:
        """Deliver the frames of the subscriber's user to it for the duration of the block;
        on entry, the channels of `conversations` (theirs) are subscribed (confirmed by
        Redis, or being restored after a loss)."""
        user = user_key(subscriber.user)
        devices = self._devices.setdefault(user, set())
        devices.add(subscriber)
        self._sockets += 1
        self._metrics.ws_connections.inc()
        try:
            await self._hold(user, self._channels_of(subscriber.user, conversations))
            yield
        finally:
            self._sockets -= 1
            self._metrics.ws_connections.dec()
            devices.discard(subscriber)
            if not devices and self._devices.get(user) is devices:
                del self._devices[user]
                await self._unsubscribe(self._drop_routes(user, list(self._routes.get(user, ()))))
                self._routes.pop(user, None)

    @property
    def sockets(self) -> int:
        """Sockets open on this process."""
        return self._sockets

    @property
    def users(self) -> int:
        """Distinct users with a socket open on this process."""
        return len(self._devices)

    async def apply_change(self, change: MembershipChange) -> None:
        """A change this process announces, before it goes out: route the conversation to
        local users who joined it, done when the channel is subscribed (confirmed by Redis)
        if anyone here joined. Those who left keep their routes until the change comes back
        over pub/sub (`_on_change`) behind every frame published before it: dropped now,
        a frame already published but not read yet would miss them."""
        joined_only = MembershipChange(change.conversation_id, added=change.added)
        _, fresh, joined = self._move_routes(joined_only)
        await self._subscribe(fresh)
        if joined:
            await self._confirmed([self._channel(change.conversation_id)])

    def _move_routes(self, change: MembershipChange) -> tuple[list[str], list[str], bool]:
        """The routes a change moves, moved at once (no await): a frame that follows the
        change on the pub/sub connection finds them moved. (Channels nobody here holds any
        more, channels held here for the first time, whether anyone here joined.)"""
        channel = self._channel(change.conversation_id)
        gone: list[str] = []
        for user in map(user_key, change.removed):
            if channel in self._routes.get(user, ()):
                gone += self._drop_routes(user, [channel])
        fresh: list[str] = []
        joined = False
        for user in map(user_key, change.added):
            if user in self._devices:
                fresh += self._add_routes(user, [channel])
                joined = True
        return gone, fresh, joined

    def _channel(self, conversation_id: ConversationId) -> str:
        return keys.conversation_channel(conversation_id, self._partitions)

    def _channels_of(self, user: UserId, conversations: Iterable[ConversationId]) -> list[str]:
        """What a user's sockets hear: their conversations' channels and their own."""
        return [keys.user_channel(user), *map(self._channel, conversations)]

    async def _hold(self, user: bytes, channels: list[str]) -> None:
        await self._subscribe(self._add_routes(user, channels))
        await self._confirmed(channels)

    def _add_routes(self, user: bytes, channels: Iterable[str]) -> list[str]:
        """Make `user` a holder of `channels`; the ones nobody here held before."""
        routes = self._routes.setdefault(user, set())
        fresh = []
        for channel in channels:
            if channel not in routes:
                routes.add(channel)
                holders = self._holders.setdefault(channel, set())
                holders.add(user)
                if len(holders) == 1:
                    fresh.append(channel)
        return fresh

    def _drop_routes(self, user: bytes, channels: Iterable[str]) -> list[str]:
        """Forget `user` as a holder of `channels`; the ones nobody here holds any more."""
        routes = self._routes.get(user, set())
        unheld = []
        for channel in channels:
            routes.discard(channel)
            holders = self._holders.get(channel)
            if holders is not None:
                holders.discard(user)
                if not holders:
                    del self._holders[channel]
                    unheld.append(channel)
        return unheld

    async def _subscribe(self, channels: list[str]) -> None:
        if not channels:
            return
        loop = asyncio.get_running_loop()
        for channel in channels:
            confirmation = self._confirmations.get(channel)
            if confirmation is None or confirmation.done():
                self._confirmations[channel] = loop.create_future()
        await self._command("subscribe", channels)

    async def _unsubscribe(self, channels: list[str]) -> None:
        if channels:
            await self._command("unsubscribe", channels)

    async def _confirmed(self, channels: list[str]) -> None:
        pending = [
            confirmation
            for channel in channels
            if (confirmation := self._confirmations.get(channel)) is not None
            and not confirmation.done()
        ]
        if not pending:
            return
        _, unconfirmed = await asyncio.wait(pending, timeout=SUBSCRIBE_CONFIRM_TIMEOUT)
        if unconfirmed:
            logger.warning("subscribe_unconfirmed", channels=len(unconfirmed))

    async def _command(self, name: str, channels: list[str]) -> None:
        pubsub = self._pubsub
        if pubsub is None:
            return  # the listener subscribes every wanted channel when it reconnects
        try:
            await getattr(pubsub, name)(*channels)
        except (RedisError, OSError) as exc:
            logger.warning("pubsub_command_failed", command=name, error=type(exc).__name__)

    async def _listen(self) -> None:
        backoff = 0.1
        while True:
            pubsub = self._redis.pubsub()
            try:
                wanted = set(self._holders)
                revocations = asyncio.get_running_loop().create_future()
                self._confirmations[keys.REVOCATION_CHANNEL] = revocations
                await pubsub.subscribe(keys.MEMBERSHIP_CHANNEL, keys.REVOCATION_CHANNEL, *wanted)
                self._pubsub = pubsub
                # Sockets that came or went while that subscribe was in flight.
                if joined := set(self._holders) - wanted:
                    await pubsub.subscribe(*joined)
                if left := wanted - set(self._holders):
                    await pubsub.unsubscribe(*left)
                # Changes may have been missed while disconnected.
                self._membership.invalidate_all()
                self._in_background(self._reload_routes())
                self._in_background(self._recheck_revocations(revocations))
                self._connected.set()
                logger.info("pubsub_connected", channels=len(self._holders))
                backoff = 0.1
                while True:
                    message = await pubsub.get_message(timeout=None)
                    if message is None:
                        continue
                    if message["type"] == "message":
                        try:
                            self._dispatch(message["channel"], message["data"])
                        except Exception:
                            # One unreadable publish must not stop delivery to everyone here.
                            logger.exception("dispatch_failed", channel=message["channel"])
                    elif message["type"] == "subscribe":
                        self._confirm(message["channel"])
            except (RedisError, OSError) as exc:
                self._metrics.pubsub_disconnects.inc()
                logger.warning("pubsub_lost", error=type(exc).__name__, retry_in=backoff)
            finally:
                self._pubsub = None
                self._connected.clear()
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, RECONNECT_BACKOFF_MAX)

    async def _reload_routes(self) -> None:
        """Hold exactly the channels of the conversations the local users are in now."""
        users = {key: next(iter(devices)).user for key, devices in self._devices.items()}
        if not users:
            return
        try:
            listing = await self._conversations_of(list(users.values()))
        except Exception as exc:
            logger.warning("routes_reload_failed", error=type(exc).__name__)
            return
        fresh, gone = [], []
        for key, user in users.items():
            if key not in self._devices:
                continue  # left while the listing loaded
            wanted = set(self._channels_of(user, listing.get(user, [])))
            routes = self._routes.get(key, set())
            gone += self._drop_routes(key, routes - wanted)
            fresh += self._add_routes(key, wanted - routes)
        await self._unsubscribe(gone)
        await self._subscribe(fresh)

    async def _recheck_revocations(self, subscribed: asyncio.Future[None]) -> None:
        """Once Redis confirms the revocation channel, a revocation announced from then on
        arrives as a message; one announced before is in Redis for the recheck to find."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(subscribed, SUBSCRIBE_CONFIRM_TIMEOUT)
        try:
            await self._revocations.recheck()
        except (RedisError, OSError) as exc:
            # The connection is being lost: the next reconnect rechecks.
            logger.warning("revocations_recheck_failed", error=type(exc).__name__)

    def _in_background(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _confirm(self, channel: bytes) -> None:
        confirmation = self._confirmations.pop(channel.decode(), None)
        if confirmation is not None and not confirmation.done():
            confirmation.set_result(None)

    def _dispatch(self, channel: bytes, data: bytes) -> None:
        if channel == _MEMBERSHIP:
            self._on_change(data)
            return
        if channel == _REVOCATION:
            self._revocations.revoked(data.decode())
            return
        event, names, frame = open_envelope(data)
        recipients: Collection[bytes]
        leaving: list[bytes] = []
        if names[0] == ROUTED:
            recipients, leaving = self._routed(channel, names)
        else:
            recipients = names
        text: str | None = None  # decoded once per published frame, shared by every socket
        delivered = 0
        last: Subscriber | None = None
        for user in recipients:
            devices = self._devices.get(user)
            if devices:
                if text is None:
                    text = frame.decode()
                if event is None:
                    for device in devices:
                        device.deliver(text)
                    last = device  # only messages are timed: they carry sent_at
                    delivered += len(devices)
                    continue
                for device in devices:
                    rendered = device.render(event, text)
                    if rendered is not None:
                        device.deliver(rendered)
                        delivered += 1
        if leaving:
            self._leave(channel.decode(), leaving)
        if delivered:
            self._metrics.deliveries.inc(delivered)
        if last is not None:
            now = time.monotonic()
            if now >= self._next_sample:
                # The last device queued: its write comes after the others' (writers wake in
                # the order they were handed frames), so this is the fan-out's latency.
                sent_at = sent_at_of(frame)
                if sent_at:
                    self._next_sample = now + LATENCY_SAMPLE_INTERVAL
                    last.time_delivery(sent_at)

    def _routed(self, channel: bytes, names: list[bytes]) -> tuple[Collection[bytes], list[bytes]]:
        """The local recipients of a routed envelope (envelope.py), and those of them who
        leave with this frame."""
        holders = self._holders.get(channel.decode(), set())
        if len(names) == 1:
            return holders, []
        excluded = {name[1:] for name in names if name[:1] == EXCLUDED}
        leaving = [name[1:] for name in names if name[:1] == LEAVING]
        recipients = [user for user in holders if user not in excluded]
        recipients += [user for user in leaving if user not in holders]
        return recipients, leaving

    def _leave(self, channel: str, leaving: list[bytes]) -> None:
        """Drop the routes of members who left, the frame recording it just delivered: the
        frames behind it on the channel are not theirs. Their process normally dropped them
        already, at the membership change that was published before this frame."""
        gone: list[str] = []
        for user in leaving:
            if channel in self._routes.get(user, ()):
                gone += self._drop_routes(user, [channel])
        if gone:
            self._in_background(self._unsubscribe(gone))

    def _on_change(self, data: bytes) -> None:
        try:
            change = decode_change(data)
        except msgspec.DecodeError:
            logger.warning("membership_change_unreadable", size=len(data))
            return
        if not self._membership.is_own(change):
            # This process forgot the conversation when it announced the change: forgetting
            # again would drop the rosters loaded since (a broadcast's, preloaded to send).
            self._membership.invalidate(change.conversation_id)
        # Routes move here, before the next pub/sub message is read: the frames a routed
        # envelope addresses after the change reach exactly the members after it.
        gone, fresh, _ = self._move_routes(change)
        if gone or fresh:
            self._in_background(self._resubscribe(gone, fresh))

    async def _resubscribe(self, gone: list[str], fresh: list[str]) -> None:
        await self._unsubscribe(gone)
        await self._subscribe(fresh)
