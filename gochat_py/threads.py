"""Worker threads that give way to the event loop. On a busy core the loop's thread, which
serves every socket, should run before a password hash, an upload's hashing and writing or
an image's decoding: those threads run at nice 10 (Linux threads are tasks with their own
nice value, inherited by threads they start), so their work waits instead of messages and
health checks."""

from __future__ import annotations

import contextlib
import os
import threading
from concurrent.futures import ThreadPoolExecutor

BACKGROUND_NICE = 10


def _lower_priority() -> None:
    with contextlib.suppress(OSError, AttributeError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), BACKGROUND_NICE)


def background_pool(max_workers: int, name: str) -> ThreadPoolExecutor:
    """At most `max_workers` threads at BACKGROUND_NICE, started as work comes."""
    return ThreadPoolExecutor(
        max_workers=max_workers, thread_name_prefix=name, initializer=_lower_priority
    )
