"""`--reload`: which of the runner's processes run code that changed, seen by watchfiles."""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

import watchfiles


class CodeWatcher:
    """Watches packages in a thread; `take()` returns the processes to restart since last asked."""

    def __init__(self, root: Path, users: Mapping[str, Sequence[str]]) -> None:
        """`users` maps a package directory under `root` to the processes that import it."""
        self._root = root
        self._users = users
        self._pending: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="codewatch", daemon=True)
        self._thread.start()

    def take(self) -> set[str]:
        with self._lock:
            pending, self._pending = self._pending, set()
        return pending

    def close(self) -> None:
        self._stop.set()
        self._thread.join()

    def _watch(self) -> None:
        packages = [self._root / package for package in self._users]
        for changes in watchfiles.watch(
            *packages, watch_filter=watchfiles.PythonFilter(), stop_event=self._stop
        ):
            names = {
                name
                for _, path in changes
                for package, names in self._users.items()
                if Path(path).is_relative_to(self._root / package)
                for name in names
            }
            with self._lock:
                self._pending |= names
