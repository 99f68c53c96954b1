"""Revocation reaches open sockets: the local sockets of each login session, closed when
it is revoked anywhere.

The session scripts publish a revoked session's id on keys.REVOCATION_CHANNEL; the hub
hands each one to `revoked`. Pub/sub drops what is published while the hub reconnects, so
after every (re)connect `recheck` asks Redis about every local session at once.
"""

from __future__ import annotations

from typing import Protocol

from loguru import logger

from gochat_py.redis.sessions import Sessions


class Revocable(Protocol):
    @property
    def session_id(self) -> str: ...

    def session_revoked(self) -> None:
        """Close: the login session behind the socket was revoked."""


class Revocations:
    def __init__(self, sessions: Sessions) -> None:
        self._sessions = sessions
        # A list, not a set: nearly every session has one socket, and a one-item list is a
        # quarter of an empty set's 216 bytes.
        self._sockets: dict[str, list[Revocable]] = {}

    def add(self, socket: Revocable, session_id: str) -> None:
        """Close `socket` when `session_id` is revoked. A socket being renewed with another
        session's token is held under both until the renewal settles."""
        sockets = self._sockets.setdefault(session_id, [])
        if socket not in sockets:
            sockets.append(socket)

    def discard(self, socket: Revocable, session_id: str) -> None:
        sockets = self._sockets.get(session_id)
        if sockets is None:
            return
        if socket in sockets:
            sockets.remove(socket)
        if not sockets:
            del self._sockets[session_id]

    def revoked(self, session_id: str) -> int:
        """Close the local sockets of a revoked session; how many there were."""
        sockets = self._sockets.pop(session_id, [])
        for socket in sockets:
            socket.session_revoked()
        if sockets:
            logger.info("session_sockets_closed", session_id=session_id, sockets=len(sockets))
        return len(sockets)

    async def recheck(self) -> None:
        """Close the sockets of every local session revoked while announcements could be
        missed. Errors are the caller's: it runs again after the next reconnect."""
        if not self._sockets:
            return
        for session_id in await self._sessions.revoked_among(list(self._sockets)):
            self.revoked(session_id)
