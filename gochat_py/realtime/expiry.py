"""Access-token expiry on open sockets: one sweeper per process, once a second.

A socket is due twice: `lead` seconds before its access token expires it is warned
(`token_expiring`), and when the token expires it is closed, unless an `auth` frame moved
its expiry meanwhile. Sockets wait in buckets keyed by the second they are next due, so a
sweep touches only the buckets of the seconds that passed, and an idle socket costs one set
entry rather than a task or a timer of its own.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from typing import Protocol

from loguru import logger

LEAD_MAX = 60  # seconds of warning: time enough to refresh over REST and renew on the socket
# ... but no more than this share of the token's lifetime, or short-lived tokens would be
# warned about the moment they are issued.
LEAD_SHARE = 1 / 5
SWEEP_SLACK = 0.005  # wake just past each whole second, so that second's bucket is due
STOP_TIMEOUT = 2.0


def warning_lead(access_ttl: float) -> int:
    """Whole seconds before expiry that a socket is warned: min(60, a fifth of the access
    token's lifetime), rounded up, at least one."""
    return max(1, min(LEAD_MAX, math.ceil(access_ttl * LEAD_SHARE)))


class Expiring(Protocol):
    expires_at: int  # unix seconds: the `exp` of the token the socket lives on

    def token_expiring(self, expires_in: int) -> None:
        """Tell the client its socket closes in `expires_in` seconds unless renewed."""

    def token_expired(self) -> None:
        """Close: the token expired and was not renewed."""


class Expiry:
    def __init__(self, lead: int, clock: Callable[[], float] = time.time) -> None:
        self.lead = lead
        self._clock = clock  # wall-clock time: token expiry is in unix seconds
        self._due: dict[int, set[Expiring]] = {}
        self._swept = int(clock())  # every second up to this one has been swept
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="expiry-sweeper")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.wait({self._task}, timeout=STOP_TIMEOUT)

    @property
    def tracked(self) -> int:
        """Sockets waiting for a warning or a close."""
        return sum(len(bucket) for bucket in self._due.values())

    def track(self, socket: Expiring) -> None:
        """Warn and close `socket` on time; a socket already inside its warning window is
        warned at once."""
        if socket.expires_at <= self._swept:
            socket.token_expired()
            return
        warn_at = socket.expires_at - self.lead
        if warn_at > self._swept:
            self._due.setdefault(warn_at, set()).add(socket)
            return
        socket.token_expiring(socket.expires_at - max(self._swept, int(self._clock())))
        self._due.setdefault(socket.expires_at, set()).add(socket)

    def forget(self, socket: Expiring) -> None:
        # A tracked socket sits in exactly one of the two buckets its expiry implies.
        for second in (socket.expires_at - self.lead, socket.expires_at):
            bucket = self._due.get(second)
            if bucket is not None and socket in bucket:
                bucket.discard(socket)
                if not bucket:
                    del self._due[second]

    def extend(self, socket: Expiring, expires_at: int) -> None:
        """Move the socket's expiry to that of a fresh token."""
        self.forget(socket)
        socket.expires_at = expires_at
        self.track(socket)

    def sweep(self) -> None:
        """Warn and close every socket due in the seconds since the last sweep."""
        now = int(self._clock())
        for second in range(self._swept + 1, now + 1):
            for socket in self._due.pop(second, ()):
                if socket.expires_at <= second:
                    socket.token_expired()
                else:
                    socket.token_expiring(max(0, socket.expires_at - now))
                    self._due.setdefault(socket.expires_at, set()).add(socket)
            self._swept = second

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(1 - self._clock() % 1 + SWEEP_SLACK)
            try:
                self.sweep()
            except Exception:
                # One misbehaving socket must not end expiry for every socket here.
                logger.exception("expiry_sweep_failed")
