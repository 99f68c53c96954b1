"""Lua scripts run by their SHA, loaded again when Redis has forgotten them (a restart,
SCRIPT FLUSH, a failover to a replica that never saw them).

redis-py's own Script object checks on every call whether it runs in a pipeline, an
isinstance test against a typing Protocol that cost ~50 µs per call, 11 % of a busy
server's CPU (profiled); this calls EVALSHA directly.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import NoScriptError

from gochat_py.redis.pipelining import Arg, Pipeliner


class LuaScript:
    def __init__(self, redis: Redis, source: str, pipeliner: Pipeliner | None = None) -> None:
        """With a `pipeliner`, calls from concurrent tasks go to Redis in batches."""
        self._redis = redis
        self._execute = pipeliner.execute if pipeliner else redis.execute_command
        self._source = source
        self._sha = hashlib.sha1(source.encode()).hexdigest()

    async def __call__(self, keys: Sequence[str], args: Sequence[Arg] = ()) -> Any:
        command = ("EVALSHA", self._sha, len(keys), *keys, *args)
        try:
            return await self._execute(*command)
        except NoScriptError:
            await self._redis.script_load(self._source)
            return await self._execute(*command)
