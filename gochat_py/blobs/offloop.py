"""Where the media code's blocking work runs: an upload's writing and hashing, fsyncs and
renames, thumbnails. A few threads of their own at lower priority (gochat_py/threads.py),
not asyncio's default executor: twenty uploads at once keep this pool busy, and on the
server's core its threads would otherwise take turns with the event loop as equals, each
message waiting behind them. One pool per process, like the default executor it replaces."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar

from gochat_py.threads import background_pool

MEDIA_THREADS = 4

_T = TypeVar("_T")
_pool = background_pool(MEDIA_THREADS, "media")


async def run(function: Callable[..., _T], *args: object) -> _T:
    return await asyncio.get_running_loop().run_in_executor(_pool, function, *args)
