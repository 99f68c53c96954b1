"""Each sender's broadcasts by `client_broadcast_id` in Redis: claimed while one runs, then
its result, so a repeat answers with the first call's result and sends nothing."""

from __future__ import annotations

import uuid
from typing import cast

from redis.asyncio import Redis

from gochat_py import broadcasts
from gochat_py.broadcasts import BroadcastResult
from gochat_py.errors import Conflict
from gochat_py.ids import UserId
from gochat_py.redis import keys
from gochat_py.redis.publish import IDEMPOTENCY_TTL
from gochat_py.redis.scripts import LuaScript

# A claim outlives any broadcast (1,000 sends take well under a second) and frees the id
# this long after a process died holding it. A claim that expires under a slow broadcast
# lets a second call run beside it, which duplicates nothing: each message is idempotent.
CLAIM_TTL_MS = 30_000
CLAIM_PREFIX = b"claimed:"  # a claim's value; a result is JSON and starts with `{`
IN_PROGRESS_RETRY_AFTER = 1.0  # seconds: about as long as a broadcast of 1,000 takes

# Only the claim's own holder frees it: one that expired and was claimed again stays.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class BroadcastInProgress(Conflict):
    """A call with the same `client_broadcast_id` is running: ask again shortly for its result."""

    code = "broadcast_in_progress"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.retry_after = IN_PROGRESS_RETRY_AFTER


class BroadcastLedger:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._release = LuaScript(redis, _RELEASE)

    async def claim(self, sender: UserId, client_broadcast_id: str) -> BroadcastResult | bytes:
        """The stored result of an earlier call, or the claim this call now holds (pass it to
        `release`); BroadcastInProgress while another call holds the id."""
        claim = CLAIM_PREFIX + uuid.uuid4().hex.encode()
        # SET NX GET: claimed, or what was there, in one atomic command.
        prior = cast(
            "bytes | None",
            await self._redis.set(
                keys.broadcast(sender, client_broadcast_id), claim,
                nx=True, get=True, px=CLAIM_TTL_MS,
            ),
        )  # fmt: skip
        if prior is None:
            return claim
        if prior.startswith(CLAIM_PREFIX):
            raise BroadcastInProgress(
                f"broadcast {client_broadcast_id!r} is being sent; ask again for its result"
            )
        return broadcasts.decode(prior)

    async def save(self, sender: UserId, result: BroadcastResult) -> None:
        """Keep the result for repeats, as long as the messages' own idempotency lasts."""
        await self._redis.set(
            keys.broadcast(sender, result.client_broadcast_id),
            broadcasts.encode(result),
            ex=IDEMPOTENCY_TTL,
        )

    async def release(self, sender: UserId, client_broadcast_id: str, claim: bytes) -> None:
        """Free the id of a call that failed, so a retry need not wait for the claim to lapse."""
        await self._release(keys=[keys.broadcast(sender, client_broadcast_id)], args=[claim])
