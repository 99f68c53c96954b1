"""`auth` on an open socket: a fresh access token of the same user moves its expiry.

The socket then lives on that token's session: a token of another live session of the
same user (a new login on the device) moves the socket to it, so that logging out of the
old session no longer closes it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from gochat_py.errors import Unauthorized
from gochat_py.realtime.expiry import Expiry
from gochat_py.realtime.revocation import Revocations
from gochat_py.usecases.auth import Auth
from gochat_py.websocket.frames import AuthOk, FrameError

if TYPE_CHECKING:
    from gochat_py.websocket.session import SocketSession


class Renewal:
    def __init__(
        self,
        auth: Auth,
        revocations: Revocations,
        expiry: Expiry,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._auth = auth
        self._revocations = revocations
        self._expiry = expiry
        self._clock = clock

    async def renew(self, socket: SocketSession, token: str) -> None:
        """Answer `auth_ok` and move the socket's expiry; FrameError naming the problem
        (the socket otherwise unaffected) for a token that is not a live one of its user."""
        try:
            claims = self._auth.verify(token)
        except Unauthorized as exc:
            raise FrameError(exc.code, exc.message) from None
        if claims.user_id != socket.user:
            raise FrameError("wrong_user", "the token belongs to another user")
        previous, session_id = socket.session_id, claims.session_id
        # Held under both sessions while the new one is checked: a revocation of either
        # meanwhile closes the socket, as it would right after a renewal.
        self._revocations.add(socket, session_id)
        renewed = False
        try:
            await self._auth.require_live(claims.session_id)
            renewed = True
        except Unauthorized as exc:
            raise FrameError(exc.code, exc.message) from None
        finally:
            if session_id != previous:
                self._revocations.discard(socket, previous if renewed else session_id)
        socket.session_id = session_id
        socket.reply(AuthOk(expires_in=max(0, claims.exp - int(self._clock()))))
        self._expiry.extend(socket, claims.exp)
        socket.log.info("socket_renewed", moved_session=session_id != previous)
