"""Who has a socket open anywhere, asked of Redis's pub/sub registry rather than kept.

Every API process subscribes a user's own channel (`keys.user_channel`) for as long as it
holds one of their sockets (realtime/hub.py), so `PUBSUB NUMSUB` of that channel is above
zero exactly while the user has a socket on some process. Under sharded pub/sub
(SSUBSCRIBE) the question becomes `PUBSUB SHARDNUMSUB`, asked of the node owning each
channel's slot; plain NUMSUB on a cluster counts one node's subscribers only.

Errs towards "offline": while a process re-subscribes after losing its pub/sub connection,
its users look offline and may get a webhook event for something their socket also shows.
"""

from __future__ import annotations

from collections.abc import Collection

from redis.asyncio import Redis

from gochat_py.ids import UserId
from gochat_py.redis import keys

# Channels per NUMSUB: Redis answers it in one go while other clients wait, like a read.
NUMSUB_CHUNK = 500


async def users_with_sockets(redis: Redis, users: Collection[UserId]) -> set[UserId]:
    """Those of `users` who have a socket open on some API process right now."""
    ordered = list(dict.fromkeys(users))
    online: set[UserId] = set()
    for start in range(0, len(ordered), NUMSUB_CHUNK):
        chunk = ordered[start : start + NUMSUB_CHUNK]
        counts = await redis.pubsub_numsub(*(keys.user_channel(user) for user in chunk))
        # The reply is in the order asked, one (channel, count) per channel.
        online.update(user for user, (_, count) in zip(chunk, counts, strict=True) if count)
    return online


async def users_without_sockets(redis: Redis, users: Collection[UserId]) -> set[UserId]:
    """Those of `users` who have no open socket on any API process right now."""
    return set(users) - await users_with_sockets(redis, users)
