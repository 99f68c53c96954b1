"""This process's part in presence: its sockets' entries in Redis, kept alive, and the
sweep that notices other processes' dead ones.

Opening a socket adds its entry (redis/presence.py), closing removes it; one task per
process refreshes every local entry each `PRESENCE_HEARTBEAT`, in one pipelined batch, and
sweeps the users whose deadline passed: a process killed outright leaves entries that
nobody refreshes, and the first sweeper to drop a user's last one announces them offline.
A transition (a user's first socket anywhere, or their last one gone) goes to `announce`.

Redis being unreachable never touches a socket: the failure is logged and counted, and the
next heartbeat puts the entries back (announcing whoever a sweep took for gone meanwhile).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable

from loguru import logger
from redis.exceptions import RedisError

from gochat_py import times
from gochat_py.ids import UserId
from gochat_py.metrics import Metrics
from gochat_py.redis.presence import PresenceStore

# announce(user, online, at): `at` (unix ms) is when the transition was seen.
Announce = Callable[[UserId, bool, int], Awaitable[None]]

SWEEP_INTERVAL_MAX = 5.0  # seconds between sweeps: offline within PRESENCE_TTL plus this
SWEEP_BATCH = 500  # due users read from the index at a time
SWEEP_ROUNDS_MAX = 20  # batches per sweep; the rest wait for the next one
# A presence call waits no longer than this: a socket opens or closes whatever Redis does.
CALL_TIMEOUT = 2.0
STOP_TIMEOUT = 2.0
_FAILURES = (RedisError, OSError, TimeoutError)


class PresenceTracker:
    def __init__(
        self,
        store: PresenceStore,
        announce: Announce,
        heartbeat: float,
        metrics: Metrics,
        clock: Callable[[], int] = times.now_ms,
    ) -> None:
        self._store = store
        self._announce = announce
        self._heartbeat = heartbeat
        self._tick = min(SWEEP_INTERVAL_MAX, heartbeat / 2)
        self._metrics = metrics
        self._clock = clock
        self._sockets: dict[UserId, set[str]] = {}  # the local sockets' ids, by user
        # A refresh sends every local entry; an open or close in flight beside it could
        # reach Redis after it (another connection) and be undone. So each waits for the
        # other: opens and closes run freely among themselves, a refresh runs alone.
        self._in_flight = 0
        self._quiet = asyncio.Event()
        self._quiet.set()
        self._not_refreshing = asyncio.Event()
        self._not_refreshing.set()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="presence")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.wait({self._task}, timeout=STOP_TIMEOUT)

    async def opened(self, user: UserId, socket: str) -> None:
        """A socket of `user` opened here: announced when it is their first anywhere."""
        self._sockets.setdefault(user, set()).add(socket)
        came_online, now = await self._guarded(
            "connect", lambda now: self._store.connect(user, [socket], now)
        )
        if came_online:
            await self._tell(user, True, now)

    async def closed(self, user: UserId, socket: str) -> None:
        """A socket of `user` closed here: announced when it was their last anywhere."""
        local = self._sockets.get(user)
        if local is not None:
            local.discard(socket)
            if not local:
                del self._sockets[user]
        went_offline, now = await self._guarded(
            "disconnect", lambda now: self._store.disconnect(user, socket, now)
        )
        if went_offline:
            await self._tell(user, False, now)

    async def _guarded(self, step: str, call: Callable[[int], Awaitable[bool]]) -> tuple[bool, int]:
        """`call(now)`'s answer, or False when Redis failed it; and `now`."""
        await self._not_refreshing.wait()
        self._in_flight += 1
        self._quiet.clear()
        now = self._clock()
        try:
            return await asyncio.wait_for(call(now), CALL_TIMEOUT), now
        except _FAILURES as exc:
            self._failed(step, exc)
            return False, now
        finally:
            self._in_flight -= 1
            if not self._in_flight:
                self._quiet.set()

    async def _tell(self, user: UserId, online: bool, at: int) -> None:
        try:
            await self._announce(user, online, at)
        except Exception as exc:
            self._failed("announce", exc)

    def _failed(self, step: str, exc: BaseException) -> None:
        self._metrics.presence_failures.labels(step).inc()
        logger.warning("presence_failed", step=step, error=type(exc).__name__)

    async def _run(self) -> None:
        next_refresh = time.monotonic() + self._heartbeat
        while True:
            await asyncio.sleep(self._tick)
            try:
                if time.monotonic() >= next_refresh:
                    next_refresh = time.monotonic() + self._heartbeat
                    await self._refresh()
                await self._sweep()
            except Exception:
                # One bad round must not end presence for the process's lifetime.
                self._metrics.presence_failures.labels("round").inc()
                logger.exception("presence_round_failed")

    async def _refresh(self) -> None:
        self._not_refreshing.clear()
        try:
            await self._quiet.wait()
            sockets = {user: list(ids) for user, ids in self._sockets.items()}
            if not sockets:
                return
            now = self._clock()
            # Bounded by the heartbeat, not CALL_TIMEOUT: it carries every local socket.
            back = await asyncio.wait_for(self._store.refresh(sockets, now), self._heartbeat)
        except _FAILURES as exc:
            self._failed("refresh", exc)
            return
        finally:
            self._not_refreshing.set()
        # Swept for dead while this process stalled or Redis was away: online again.
        await asyncio.gather(*(self._tell(user, True, now) for user in back))

    async def _sweep(self) -> None:
        for _ in range(SWEEP_ROUNDS_MAX):
            now = self._clock()
            try:
                due = await self._store.due(now, SWEEP_BATCH)
                gone = await asyncio.gather(*(self._store.sweep(user, now) for user in due))
            except _FAILURES as exc:
                self._failed("sweep", exc)
                return
            offline = [user for user, went in zip(due, gone, strict=True) if went]
            await asyncio.gather(*(self._tell(user, False, now) for user in offline))
            with contextlib.suppress(*_FAILURES):
                await asyncio.gather(*(self._store.unindex(user, now) for user in due))
            if len(due) < SWEEP_BATCH:
                return
