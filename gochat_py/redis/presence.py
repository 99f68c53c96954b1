"""Who is online, in Redis: each user's open sockets on every process, with deadlines.

A socket is an entry of its user's sorted set (`keys.presence`), scored by the deadline its
process must refresh it by. A process that dies stops refreshing, its entries fall behind
`now`, and whichever process sweeps them first announces the user offline: no state lives
in one process's memory. The scripts return the transitions, so exactly one caller sees
each: the first socket of a user coming up (CONNECT), the last one closing (DISCONNECT), or
the last one expiring (SWEEP).

Each script touches one user's keys, which share the user's hash tag; the deadlines index
(`keys.PRESENCE_DEADLINES`) is written by single-key commands of its own, never inside a
user's script, so everything stays within one slot per call on a Redis Cluster.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Collection, Iterable, Sequence
from typing import Any

import msgspec
from redis.asyncio import Redis

from gochat_py.ids import UserId
from gochat_py.redis import keys
from gochat_py.redis.online import users_with_sockets
from gochat_py.redis.pipelining import Arg, Pipeliner
from gochat_py.redis.scripts import LuaScript

# A user's socket set outlives its last deadline by this much, so that a set nobody sweeps
# (every process gone) does not stay forever, while a sweeper, which runs every few
# seconds, always finds the expired entries it must announce.
ENTRY_GRACE_MS = 10 * 60 * 1000
# The last-seen time stays in Redis this long; PostgreSQL (users.last_seen_at) keeps it for
# good, written off the socket's path.
SEEN_TTL_MS = 7 * 24 * 3600 * 1000
INDEX_BATCH = 500  # users per ZADD on the deadlines index: bounds one command

# KEYS: the user's sockets. ARGV: now, deadline, key lifetime (ms), socket ids.
# Returns 1 when the user had no live socket before: they just came online.
_CONNECT = """
local now = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local before = redis.call('ZCARD', KEYS[1])
local entries = {}
for i = 4, #ARGV do
    entries[#entries + 1] = ARGV[2]
    entries[#entries + 1] = ARGV[i]
end
redis.call('ZADD', KEYS[1], 'GT', unpack(entries))
redis.call('PEXPIRE', KEYS[1], ARGV[3])
if before == 0 then
    return 1
end
return 0
"""

# KEYS: the user's sockets, their last-seen time. ARGV: now, socket id, seen lifetime (ms).
# Returns 1 when this close removed the user's last live socket: they just went offline.
# A socket a sweeper already removed returns 0: the sweeper announced it.
_DISCONNECT = """
local removed = redis.call('ZREM', KEYS[1], ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if removed == 1 and redis.call('ZCARD', KEYS[1]) == 0 then
    redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[3])
    return 1
end
return 0
"""

# KEYS: the user's sockets, their last-seen time. ARGV: now, seen lifetime (ms).
# Returns 1 to the one sweeper whose removal of expired sockets emptied the set.
_SWEEP = """
local removed = redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if removed > 0 and redis.call('ZCARD', KEYS[1]) == 0 then
    redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2])
    return 1
end
return 0
"""

# KEYS: the deadlines index. ARGV: the user, now. A connect since the sweep may have raised
# the user's deadline: only an entry still due is removed.
_UNINDEX = """
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if score and tonumber(score) <= tonumber(ARGV[2]) then
    redis.call('ZREM', KEYS[1], ARGV[1])
    return 1
end
return 0
"""


class PresenceState(msgspec.Struct, frozen=True):
    online: bool
    seen: int | None  # unix ms the last socket closed, when Redis still knows it
    # False when a key of the user held something else (WRONGTYPE, or no number): what
    # that key should have said is unknown, and reads as offline, or as no last seen.
    readable: bool = True


class PresenceStore:
    def __init__(self, redis: Redis, ttl: float) -> None:
        self._redis = redis
        self._pipeliner = Pipeliner(redis)
        self._ttl_ms = int(ttl * 1000)
        self._connect = LuaScript(redis, _CONNECT, self._pipeliner)
        self._disconnect = LuaScript(redis, _DISCONNECT, self._pipeliner)
        self._sweep = LuaScript(redis, _SWEEP, self._pipeliner)
        self._unindex = LuaScript(redis, _UNINDEX, self._pipeliner)

    async def connect(self, user: UserId, sockets: Sequence[str], now: int) -> bool:
        """Give `sockets` a fresh deadline (adding the new ones); True when the user had no
        live socket before. Also the heartbeat: a socket a sweeper dropped comes back."""
        deadline = now + self._ttl_ms
        came_online, _ = await asyncio.gather(
            self._connect(
                [keys.presence(user)], [now, deadline, deadline - now + ENTRY_GRACE_MS, *sockets]
            ),
            self._pipeliner.execute("ZADD", keys.PRESENCE_DEADLINES, "GT", deadline, str(user)),
        )
        return bool(came_online)

    async def refresh(self, sockets: dict[UserId, list[str]], now: int) -> list[UserId]:
        """A new deadline for every socket of every user in `sockets`, all in one batch;
        the users who had no live socket left (a sweeper took them for dead)."""
        deadline = now + self._ttl_ms
        users = list(sockets)
        lifetime = deadline - now + ENTRY_GRACE_MS
        calls = [
            self._connect([keys.presence(user)], [now, deadline, lifetime, *sockets[user]])
            for user in users
        ]
        for start in range(0, len(users), INDEX_BATCH):
            entries: list[int | str] = []
            for user in users[start : start + INDEX_BATCH]:
                entries += [deadline, str(user)]
            calls.append(self._pipeliner.execute("ZADD", keys.PRESENCE_DEADLINES, "GT", *entries))
        replies = await asyncio.gather(*calls)
        return [user for user, back in zip(users, replies, strict=False) if back]

    async def disconnect(self, user: UserId, socket: str, now: int) -> bool:
        """Remove the socket; True when it was the user's last live one."""
        went_offline = await self._disconnect(
            [keys.presence(user), keys.presence_seen(user)], [now, socket, SEEN_TTL_MS]
        )
        return bool(went_offline)

    async def due(self, now: int, limit: int) -> list[UserId]:
        """Users whose latest deadline has passed: some of their sockets may have expired."""
        members = await self._pipeliner.execute(
            "ZRANGEBYSCORE", keys.PRESENCE_DEADLINES, "-inf", now, "LIMIT", 0, limit
        )
        return [UserId(uuid.UUID(member.decode())) for member in members]

    async def sweep(self, user: UserId, now: int) -> bool:
        """Drop the user's expired sockets; True for the one caller that took the last."""
        went_offline = await self._sweep(
            [keys.presence(user), keys.presence_seen(user)], [now, SEEN_TTL_MS]
        )
        return bool(went_offline)

    async def unindex(self, user: UserId, now: int) -> None:
        await self._unindex([keys.PRESENCE_DEADLINES], [str(user), now])

    async def with_sockets(self, users: Collection[UserId]) -> set[UserId]:
        """Those of `users` with a socket on some process: one NUMSUB (redis/online.py), a
        cheap first cut before reading their entries."""
        return await users_with_sockets(self._redis, users)

    async def states(self, users: Iterable[UserId], now: int) -> dict[UserId, PresenceState]:
        """Whether each user has a live socket, and when their last one went, pipelined."""
        users = list(users)
        commands: list[tuple[Arg, ...]] = []
        for user in users:
            commands.append(("ZCOUNT", keys.presence(user), f"({now}", "+inf"))
            commands.append(("GET", keys.presence_seen(user)))
        # One user's unreadable key must not cost everyone else their presence.
        replies = await self._pipeliner.execute_many(commands, error_replies=True)
        states = {}
        for i, user in enumerate(users):
            count, stored_seen = _integer(replies[2 * i]), replies[2 * i + 1]
            seen = None if stored_seen is None else _integer(stored_seen)
            states[user] = PresenceState(
                online=count is not None and count > 0,
                seen=seen,
                readable=count is not None and (stored_seen is None or seen is not None),
            )
        return states


def _integer(reply: Any) -> int | None:
    """An integer reply, or a number stored as a string; None for an error reply (a key of
    another type) or a value that is no number."""
    if isinstance(reply, Exception):
        return None
    try:
        return int(reply)
    except (TypeError, ValueError):
        return None
