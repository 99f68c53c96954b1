"""Fixed-window rate limits kept in Redis, shared by every server instance."""

from __future__ import annotations

from redis.asyncio import Redis

from gochat_py.errors import RateLimited
from gochat_py.redis import keys
from gochat_py.redis.scripts import LuaScript

# INCR and the first PEXPIRE in one script: a crash between them would leave a counter
# that never expires and locks the subject out for good.
_HIT = """
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]); ttl = tonumber(ARGV[1]) end
return {count, ttl}
"""


class RateLimiter:
    """Counts attempts per (action, subject) in windows of `window` seconds."""

    def __init__(self, redis: Redis, window: float) -> None:
        self._redis = redis
        self._window_ms = max(1, int(window * 1000))
        self._hit = LuaScript(redis, _HIT)

    async def hit(self, action: str, subject: str, limit: int) -> None:
        """Count one attempt; raise RateLimited once more than `limit` fall in the window."""
        count, ttl_ms = await self._hit(
            keys=[keys.rate_limit(action, subject)], args=[self._window_ms]
        )
        if int(count) > limit:
            raise RateLimited(
                f"too many {action} attempts; try again later", retry_after=int(ttl_ms) / 1000
            )
