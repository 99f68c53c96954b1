"""Every close code the server sends or reads (RFC 6455 §7.4.1), named for why we use it."""

from __future__ import annotations

WS_1000_NORMAL = 1000
WS_1002_PROTOCOL_ERROR = 1002  # an unmasked frame, a stray continuation (websockets decides)
WS_1005_NO_STATUS = 1005  # the peer closed without a code; never sent
WS_1006_ABNORMAL = 1006  # the connection ended without a closing handshake; never sent
WS_1007_INVALID_DATA = 1007  # a text frame that is not UTF-8
WS_1008_POLICY_VIOLATION = 1008  # bad token, or sustained flooding past the rate limit
WS_1009_MESSAGE_TOO_BIG = 1009  # a frame over frames.MAX_FRAME_BYTES
WS_1011_INTERNAL_ERROR = 1011  # a bug, or no pong to our ping in time
WS_1012_SERVICE_RESTART = 1012  # the server is shutting down: reconnect, maybe elsewhere
WS_1013_TRY_AGAIN_LATER = 1013  # the client reads too slowly, or a dependency is down
# Application codes (4000-4999): the client must log in again, or renew, before reconnecting.
WS_4001_SESSION_REVOKED = 4001  # its login session was revoked (logout, refresh-token reuse)
WS_4002_TOKEN_EXPIRED = 4002  # its access token expired and no `auth` frame renewed it
