"""Where a server's memory per connection goes: tracemalloc snapshots of a process started
through bench.traced, taken before its sockets open and once they idle, compared by the
source file that allocated each block still alive."""

from __future__ import annotations

import os
import signal
import sysconfig
import time
import tracemalloc
from pathlib import Path
from typing import Any

SNAPSHOT_TIMEOUT = 300.0  # tens of thousands of traced blocks per second on a busy core
# Printed paths are shortened to what follows these.
_PREFIXES = sorted(
    {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["stdlib"], str(Path.cwd())},
    key=len,
    reverse=True,
)


def snapshot(pid: int, directory: Path) -> Path:
    """Ask the traced process `pid` for a snapshot; its path once written."""
    existing = set(directory.glob(f"{pid}-*.snap"))
    os.kill(pid, signal.SIGUSR1)
    deadline = time.monotonic() + SNAPSHOT_TIMEOUT
    while time.monotonic() < deadline:
        new = set(directory.glob(f"{pid}-*.snap")) - existing
        if new:
            return new.pop()
        time.sleep(0.2)
    raise RuntimeError(f"no tracemalloc snapshot from pid {pid} in {SNAPSHOT_TIMEOUT:.0f} s")


def per_connection(before: Path, after: Path, connections: int, top: int) -> dict[str, Any]:
    """Bytes still allocated per connection between the two snapshots, by source file: the
    `top` largest, and the total."""
    ignore = [tracemalloc.Filter(False, tracemalloc.__file__)]
    old = tracemalloc.Snapshot.load(str(before)).filter_traces(ignore)
    new = tracemalloc.Snapshot.load(str(after)).filter_traces(ignore)
    stats = new.compare_to(old, "filename")
    total = sum(stat.size_diff for stat in stats)
    return {
        "total_bytes": round(total / connections),
        "top": [
            {
                "file": _short(stat.traceback[0].filename),
                "bytes": round(stat.size_diff / connections),
            }
            for stat in stats[:top]
        ],
    }


def _short(path: str) -> str:
    for prefix in _PREFIXES:
        if path.startswith(prefix + os.sep):
            return path[len(prefix) + 1 :]
    return path
