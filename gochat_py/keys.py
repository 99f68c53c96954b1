"""Redis key and channel names: the one contract the server and the worker share.

Every key that a multi-key operation touches carries the same hash tag (`{…}`), so a
Redis Cluster places them in one slot.
"""

from __future__ import annotations

PREFIX = "gochat"


def session_refresh(session_id: str) -> str:
    """The id (jti) of the one refresh token of a login session that may still be used."""
    return f"{PREFIX}:session:{{{session_id}}}:refresh"


def session_revoked(session_id: str) -> str:
    """Present while a session is revoked (logout or reuse of a spent refresh token)."""
    return f"{PREFIX}:session:{{{session_id}}}:revoked"


def rate_limit(action: str, subject: str) -> str:
    return f"{PREFIX}:ratelimit:{action}:{{{subject}}}"
