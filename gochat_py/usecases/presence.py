"""Presence: telling a user's watchers when they come and go, and answering who is online.

A user's watchers (postgres/presence.py) hear of their first socket opening and their last
one going, each on their own route (`Announcer.to_user`). Someone who hides their presence,
or who blocked the asker, is offline with no last seen to everyone else, live and over REST.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterable, Sequence
from typing import Literal

import msgspec
from loguru import logger

from gochat_py import times
from gochat_py.ids import ConversationId, UserId
from gochat_py.metrics import Metrics
from gochat_py.postgres.contacts import UserRef
from gochat_py.postgres.presence import PresenceDirectory
from gochat_py.realtime.events import Announcer, PresenceEvent
from gochat_py.realtime.membership import Membership
from gochat_py.redis.presence import PresenceState, PresenceStore

CLOSE_TIMEOUT = 2.0  # how long shutdown waits for last-seen writes still under way


class UserPresence(msgspec.Struct, frozen=True):
    user_id: uuid.UUID
    status: Literal["online", "offline"]
    last_seen_at: int | None  # unix ms; null while online, or when hidden or never seen


_HIDDEN = PresenceState(online=False, seen=None)


class Presence:
    def __init__(
        self,
        store: PresenceStore,
        directory: PresenceDirectory,
        announcer: Announcer,
        membership: Membership,
        metrics: Metrics,
    ) -> None:
        self._store = store
        self._directory = directory
        self._announcer = announcer
        self._membership = membership
        self._metrics = metrics
        self._writes: set[asyncio.Task[None]] = set()

    async def announce(self, user: UserId, online: bool, at: int) -> None:
        """Tell the user's watchers that they came online or went offline at `at` (unix ms)."""
        if not online:
            # Off the caller's path: a slow PostgreSQL delays no socket.
            task = asyncio.create_task(self._record_last_seen(user, at))
            self._writes.add(task)
            task.add_done_callback(self._writes.discard)
        audience = await self._directory.audience(user)
        if audience is None or not audience.shows_presence:
            return
        event = PresenceEvent(
            user_id=user,
            username=audience.username,
            status="online" if online else "offline",
            last_seen_at=None if online else at,
        )
        await self._announcer.to_users(audience.watchers, event)

    async def visibility_changed(self, user: UserId, shown: bool) -> None:
        """`show_presence` was just set: while the user is online, their watchers see them
        come online (shown) or go offline with no last seen (hidden) at once."""
        audience = await self._directory.audience(user)
        if audience is None or audience.shows_presence != shown:
            return  # changed again meanwhile, or gone: the newer change speaks
        state = (await self._states([user]))[user]
        if not state.online:
            return  # offline either way: nothing changes for anyone
        event = PresenceEvent(
            user_id=user,
            username=audience.username,
            status="online" if shown else "offline",
            last_seen_at=None,
        )
        await self._announcer.to_users(audience.watchers, event)

    async def _states(self, users: Iterable[UserId]) -> dict[UserId, PresenceState]:
        """The users' presence in Redis now. A user whose keys hold the wrong type reads as
        offline with no last seen, and is logged once per read, not failed: a listing of
        contacts answers whatever one of them left behind."""
        states = await self._store.states(users, times.now_ms())
        unreadable = [str(user) for user, state in states.items() if not state.readable]
        if unreadable:
            logger.warning("presence_unreadable", users=unreadable[:10], count=len(unreadable))
        return states

    async def _record_last_seen(self, user: UserId, at: int) -> None:
        try:
            await self._directory.record_last_seen(user, at)
        except Exception as exc:
            self._metrics.presence_failures.labels("last_seen").inc()
            logger.warning("last_seen_not_stored", user_id=str(user), error=type(exc).__name__)

    async def close(self) -> None:
        if self._writes:
            await asyncio.wait(set(self._writes), timeout=CLOSE_TIMEOUT)

    async def online_for(self, viewer: UserId) -> list[UserId]:
        """The users whose presence `viewer` hears of live who are online now."""
        watched = await self._directory.watched_by(viewer)
        # One NUMSUB narrows them to those with a socket somewhere (redis/online.py); only
        # their presence entries are read, not two commands for each of a thousand contacts.
        candidates = await self._store.with_sockets(watched)
        states = await self._states(candidates)
        return [user for user in watched if user in candidates and states[user].online]

    async def of_users(self, viewer: UserId, users: Sequence[UserId]) -> list[UserPresence]:
        """Each of `users` as `viewer` may see them; hidden, blocking and unknown users
        alike are offline with no last seen, so the answer tells nobody who exists."""
        visible = await self._directory.visible(viewer, users)
        states = await self._states(visible)
        answer = []
        for user in users:
            state = states.get(user, _HIDDEN)
            seen = state.seen
            if seen is None and (stored := visible.get(user)) is not None:
                seen = times.unix_ms(stored)
            answer.append(
                UserPresence(
                    user_id=user,
                    status="online" if state.online else "offline",
                    last_seen_at=None if state.online else seen,
                )
            )
        return answer

    async def introduce(self, one: UserRef, other: UserRef) -> None:
        """`one` and `other` just became contacts: each hears at once that the other is
        online, if they are and may be seen (offline is what a client assumes of someone
        it has heard nothing of)."""
        for viewer, subject in ((one, other), (other, one)):
            [state] = await self.of_users(UserId(viewer.id), [UserId(subject.id)])
            if state.status != "online":
                continue
            event = PresenceEvent(
                user_id=subject.id, username=subject.username, status="online", last_seen_at=None
            )
            await self._announcer.to_user(UserId(viewer.id), event)

    async def in_conversation(
        self, viewer: UserId, conversation_id: ConversationId
    ) -> dict[UserId, bool]:
        """Whether each member is online, as `viewer` may see it; NotAMember for a stranger."""
        members = sorted(await self._membership.require(conversation_id, viewer))
        presence = await self.of_users(viewer, members)
        return {UserId(p.user_id): p.status == "online" for p in presence}
