"""Login sessions in Redis: refresh-token rotation, reuse detection, revocation.

A session (the `sid` claim) is one login. It has exactly one refresh token that may still
be spent; spending it rotates it. Presenting an older one means the token was copied, so
the whole session is revoked: its refresh token and every access token carrying its sid.
Both scripts that revoke announce it on keys.REVOCATION_CHANNEL in the same step, so every
API process closes the session's sockets at once (realtime/revocation.py).
"""

from __future__ import annotations

import enum
from collections.abc import Collection

from redis.asyncio import Redis

from gochat_py.ids import SessionId
from gochat_py.redis import keys
from gochat_py.redis.scripts import LuaScript

# Check-and-rotate must be atomic: two concurrent refreshes with the same token must not
# both succeed, or a stolen token would live on beside the real one.
_ROTATE = """
if redis.call('EXISTS', KEYS[2]) == 1 then return 'revoked' end
local current = redis.call('GET', KEYS[1])
if not current then return 'unknown' end
if current ~= ARGV[1] then
  redis.call('DEL', KEYS[1])
  redis.call('SET', KEYS[2], 'reuse', 'PX', ARGV[3])
  redis.call('PUBLISH', ARGV[4], ARGV[5])
  return 'reused'
end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 'rotated'
"""

_REVOKE = """
redis.call('DEL', KEYS[1])
redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2])
redis.call('PUBLISH', ARGV[3], ARGV[4])
return 1
"""
# Sessions looked up per pipeline when a process rechecks its sockets: bounds one write.
RECHECK_BATCH = 2000


class Rotation(enum.Enum):
    ROTATED = "rotated"
    REUSED = "reused"  # a spent token came back: the session is now revoked
    REVOKED = "revoked"
    UNKNOWN = "unknown"  # expired from Redis or never existed


class Sessions:
    def __init__(self, redis: Redis, refresh_ttl: float) -> None:
        self._redis = redis
        # Revocation must outlive every token of the session, the longest being a refresh token.
        self._ttl_ms = int(refresh_ttl * 1000)
        self._rotate = LuaScript(redis, _ROTATE)
        self._revoke = LuaScript(redis, _REVOKE)

    async def start(self, session_id: SessionId, refresh_jti: str) -> None:
        await self._redis.set(keys.session_refresh(session_id), refresh_jti, px=self._ttl_ms)

    async def rotate(self, session_id: SessionId, spent_jti: str, next_jti: str) -> Rotation:
        result = await self._rotate(
            keys=[keys.session_refresh(session_id), keys.session_revoked(session_id)],
            args=[spent_jti, next_jti, self._ttl_ms, keys.REVOCATION_CHANNEL, session_id],
        )
        return Rotation(result.decode() if isinstance(result, bytes) else result)

    async def revoke(self, session_id: SessionId, reason: str) -> None:
        await self._revoke(
            keys=[keys.session_refresh(session_id), keys.session_revoked(session_id)],
            args=[reason, self._ttl_ms, keys.REVOCATION_CHANNEL, session_id],
        )

    async def is_revoked(self, session_id: SessionId) -> bool:
        return bool(await self._redis.exists(keys.session_revoked(session_id)))

    async def revoked_among(self, session_ids: Collection[str]) -> set[str]:
        """The ones of `session_ids` that are revoked, in one round trip per RECHECK_BATCH.

        Not a multi-key EXISTS: each session's keys sit in a slot of their own. A
        non-transactional pipeline is what a cluster client splits per node by itself."""
        ordered = list(session_ids)
        revoked: set[str] = set()
        for start in range(0, len(ordered), RECHECK_BATCH):
            batch = ordered[start : start + RECHECK_BATCH]
            pipe = self._redis.pipeline(transaction=False)
            for session_id in batch:
                pipe.exists(keys.session_revoked(session_id))
            replies = await pipe.execute()
            revoked.update(s for s, present in zip(batch, replies, strict=True) if present)
        return revoked
