"""Delivery: one pub/sub connection per process fans frames out to the local sockets.

A user's channel is subscribed when their first socket here opens and unsubscribed when
their last one closes. After a lost connection the listener reconnects and subscribes
every channel again; frames published meanwhile are missed, and clients fill the gap
from history by seq.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import Protocol

from loguru import logger
from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.exceptions import RedisError

from gochat_py import keys
from gochat_py.ids import ConversationId
from gochat_py.membership import Membership
from gochat_py.metrics import Metrics

RECONNECT_BACKOFF_MAX = 5.0
# A socket is accepted only once Redis has confirmed its user's subscription, so nothing
# published after the client sees the socket open can miss it; past this, accept anyway.
SUBSCRIBE_CONFIRM_TIMEOUT = 2.0
STOP_TIMEOUT = 2.0


class Subscriber(Protocol):
    @property
    def channel(self) -> str: ...

    def deliver(self, frame: str) -> None:
        """Queue a frame without waiting; a subscriber that cannot keep up closes itself."""


class Hub:
    def __init__(self, redis: Redis, membership: Membership, metrics: Metrics) -> None:
        self._redis = redis
        self._membership = membership
        self._metrics = metrics
        self._local: dict[str, set[Subscriber]] = {}
        self._pubsub: PubSub | None = None
        self._confirmations: dict[str, asyncio.Future[None]] = {}
        self._connected = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._listen(), name="hub-listener")
        # Not awaited past a short wait: the server also starts while Redis is down.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._connected.wait(), 5.0)

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            # Bounded: on Python 3.11 a cancel landing inside redis-py's own wait_for can be
            # swallowed (CPython gh-86296); shutdown must not hang on it.
            await asyncio.wait({self._task}, timeout=STOP_TIMEOUT)

    @contextlib.asynccontextmanager
    async def attached(self, subscriber: Subscriber) -> AsyncIterator[None]:
        """Deliver the subscriber's channel to it for the duration of the block; on entry,
        the subscription is in place (confirmed by Redis, or being restored after a loss)."""
        channel = subscriber.channel
        local = self._local.setdefault(channel, set())
        local.add(subscriber)
        self._metrics.ws_connections.inc()
        try:
            if len(local) == 1:
                await self._subscribe(channel)
            else:
                await self._confirmed(channel)
            yield
        finally:
            self._metrics.ws_connections.dec()
            local.discard(subscriber)
            if not local and self._local.get(channel) is local:
                del self._local[channel]
                await self._command("unsubscribe", channel)

    async def _subscribe(self, channel: str) -> None:
        confirmation = self._confirmations.get(channel)
        if confirmation is None or confirmation.done():
            confirmation = asyncio.get_running_loop().create_future()
            self._confirmations[channel] = confirmation
        await self._command("subscribe", channel)
        await self._confirmed(channel)

    async def _confirmed(self, channel: str) -> None:
        confirmation = self._confirmations.get(channel)
        if confirmation is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(confirmation), SUBSCRIBE_CONFIRM_TIMEOUT)
        except TimeoutError:
            logger.warning("subscribe_unconfirmed", channel=channel)

    async def _command(self, name: str, channel: str) -> None:
        pubsub = self._pubsub
        if pubsub is None:
            return  # the listener subscribes every wanted channel when it reconnects
        try:
            await getattr(pubsub, name)(channel)
        except (RedisError, OSError) as exc:
            logger.warning("pubsub_command_failed", command=name, error=type(exc).__name__)

    async def _listen(self) -> None:
        backoff = 0.1
        while True:
            pubsub = self._redis.pubsub()
            try:
                wanted = set(self._local)
                await pubsub.subscribe(keys.MEMBERSHIP_CHANNEL, *wanted)
                self._pubsub = pubsub
                # Sockets that came or went while that subscribe was in flight.
                if joined := set(self._local) - wanted:
                    await pubsub.subscribe(*joined)
                if left := wanted - set(self._local):
                    await pubsub.unsubscribe(*left)
                # Invalidations may have been missed while disconnected.
                self._membership.invalidate_all()
                self._connected.set()
                logger.info("pubsub_connected", channels=len(self._local))
                backoff = 0.1
                while True:
                    message = await pubsub.get_message(timeout=None)
                    if message is None:
                        continue
                    if message["type"] == "message":
                        self._dispatch(message["channel"], message["data"])
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

    def _confirm(self, channel: bytes) -> None:
        confirmation = self._confirmations.pop(channel.decode(), None)
        if confirmation is not None and not confirmation.done():
            confirmation.set_result(None)

    def _dispatch(self, channel: bytes, data: bytes) -> None:
        name = channel.decode()
        if name == keys.MEMBERSHIP_CHANNEL:
            with contextlib.suppress(ValueError):
                self._membership.invalidate(ConversationId(uuid.UUID(data.decode())))
            return
        subscribers = self._local.get(name)
        if not subscribers:
            return
        frame = data.decode()  # once per published frame, shared by every local socket
        for subscriber in tuple(subscribers):
            subscriber.deliver(frame)
        self._metrics.deliveries.inc(len(subscribers))
