"""How far the worker trails the send path while a load runs: the stream entries sent but
not yet committed to PostgreSQL (never read by the consumer group, plus read and not yet
acknowledged), sampled through a phase, and how long the worker takes to catch up once
the load stops.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from redis.asyncio import Redis

from gochat_py.redis import keys

SAMPLE_EVERY = 0.1
CATCH_UP_TIMEOUT = 60.0


class PersistLag:
    def __init__(self, redis_url: str, partitions: int = 1) -> None:
        self._redis = Redis.from_url(redis_url)
        self._partitions = partitions
        self._samples: list[int] = []
        self._task: asyncio.Task[None] | None = None
        self._load_stopped: float | None = None
        self._caught_up: float | None = None  # seconds from the load's stop to an empty backlog

    async def backlog(self) -> int | None:
        """Entries not yet persisted; None before the worker has made its group."""
        total = 0
        for partition in range(self._partitions):
            stream = keys.stream(partition)
            if not await self._redis.exists(stream):
                continue
            groups = await self._redis.xinfo_groups(stream)
            group = next((g for g in groups if g["name"] == keys.CONSUMER_GROUP.encode()), None)
            if group is None:
                return None
            # lag is None when Redis cannot tell (after deletions): count it from the length.
            lag = group["lag"] if group["lag"] is not None else await self._redis.xlen(stream)
            total += int(lag) + int(group["pending"])
        return total

    def start(self) -> None:
        self._task = asyncio.create_task(self._sample())

    def load_stopped(self) -> None:
        """From now on, samples are the catch-up, not the load."""
        self._load_stopped = time.perf_counter()

    async def _sample(self) -> None:
        while self._caught_up is None:
            backlog = await self.backlog()
            if self._load_stopped is None:
                if backlog is not None:
                    self._samples.append(backlog)
            elif backlog == 0:
                self._caught_up = time.perf_counter() - self._load_stopped
            await asyncio.sleep(SAMPLE_EVERY)

    async def stop(self) -> dict[str, Any]:
        """The figures: the backlog under load, and the catch-up (waited for, bounded)."""
        if self._load_stopped is None:
            self.load_stopped()
        if self._task is not None:
            await asyncio.wait({self._task}, timeout=CATCH_UP_TIMEOUT)
            self._task.cancel()
        await self._redis.aclose()
        samples = self._samples or [0]
        return {
            "persist_backlog_max": max(samples),
            "persist_backlog_mean": round(sum(samples) / len(samples), 1),
            "persist_catch_up_s": None if self._caught_up is None else round(self._caught_up, 2),
        }
