"""Keeps the local stack's processes running: a child that dies is started again after an
exponential backoff; one that keeps dying right after it starts stops the stack, or, with
`--reload`, waits for the next change to its code (the developer is fixing it)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from gochat_py.devstack.console import say
from gochat_py.devstack.services import die_with_parent

TICK = 0.2  # how often children are looked at: restarts within a blink, no busy loop
BACKOFF_FIRST = 0.5  # a crash after a good run is restarted almost at once
# A process that keeps crashing is retried at most this far apart (LOCAL_RESTART_BACKOFF_MAX).
BACKOFF_MAX = 8.0
QUICK_DEATH = 10.0  # a death this soon after starting (a slow box included) is a failed start
CRASH_LOOP_LIMIT = 5  # this many quick deaths in a row: it cannot start, retrying will not help
CHILD_STOP_TIMEOUT = 15.0  # the worker finishes its batch on SIGTERM; past this it is killed


class Child(Protocol):
    """A process the supervisor keeps running."""

    @property
    def name(self) -> str: ...

    def launch(self) -> None:
        """Start it without waiting for it to be ready."""

    def exit_code(self) -> int | None:
        """None while it runs."""

    def stop(self) -> None: ...

    def log_tail(self) -> str:
        """Its last words, when they are not on the terminal already ('' otherwise)."""


class AppProcess:
    """The API server or the worker: our own code, its output on the runner's terminal."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], cwd: Path) -> None:
        self.name = name
        self._argv = argv
        self._env = env
        self._cwd = cwd
        self._process: subprocess.Popen[bytes] | None = None

    def launch(self) -> None:
        self._process = subprocess.Popen(
            self._argv,
            env=self._env,
            cwd=self._cwd,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C reaches only the runner, which stops children in order
            preexec_fn=die_with_parent,
        )

    def exit_code(self) -> int | None:
        return self._process.poll() if self._process else None

    def stop(self) -> None:
        """SIGTERM its whole process group, then SIGKILL after CHILD_STOP_TIMEOUT."""
        child = self._process
        if child is None or child.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, signal.SIGTERM)
        try:
            child.wait(CHILD_STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGKILL)
            child.wait()

    def log_tail(self) -> str:
        return ""


@dataclass
class _Watched:
    child: Child
    started_at: float
    quick_deaths: int = 0
    restarts: int = 0
    restart_at: float | None = None  # set while it waits out its backoff
    parked: bool = False  # it cannot start; with --reload it waits for a code change


class Supervisor:
    """Children in start order; they are stopped in the reverse order."""

    def __init__(self, wait_for_changes: bool = False, backoff_max: float = BACKOFF_MAX) -> None:
        self._watched: list[_Watched] = []
        self._wait_for_changes = wait_for_changes
        self._backoff_max = backoff_max

    def adopt(self, child: Child) -> None:
        """Watch a child that is already running."""
        self._watched.append(_Watched(child, time.monotonic()))

    def launch(self, child: Child) -> None:
        child.launch()
        self.adopt(child)

    def run(self, stop_requested: Callable[[], bool], changed: Callable[[], Iterable[str]]) -> int:
        """Supervise until `stop_requested()` (0) or a child cannot start (1). `changed()`
        names children whose code changed: they are restarted at once, not counted."""
        while not stop_requested():
            now = time.monotonic()
            for watched in self._watched:
                if not self._keep_running(watched, now):
                    return 1
            names = set(changed())
            for watched in self._watched:
                if watched.child.name in names:
                    say(f"{watched.child.name} code changed; restarting")
                    watched.child.stop()
                    watched.quick_deaths, watched.parked = 0, False
                    self._relaunch(watched, time.monotonic())
            time.sleep(TICK)
        return 0

    def stop(self) -> None:
        for watched in reversed(self._watched):
            watched.child.stop()

    def _keep_running(self, watched: _Watched, now: float) -> bool:
        child = watched.child
        if watched.parked:
            return True
        if watched.restart_at is not None:
            if now >= watched.restart_at:
                self._relaunch(watched, now)
            return True
        code = child.exit_code()
        if code is None:
            return True
        lived = now - watched.started_at
        watched.quick_deaths = watched.quick_deaths + 1 if lived < QUICK_DEATH else 0
        if watched.quick_deaths >= CRASH_LOOP_LIMIT:
            tail = child.log_tail()
            # Only our own code can be fixed by an edit; PostgreSQL or Redis cannot.
            park = self._wait_for_changes and isinstance(child, AppProcess)
            then = "waiting for a change to its code" if park else "stopping"
            say(
                f"{child.name} exited with code {code} {watched.quick_deaths} times in a row, "
                f"each within {QUICK_DEATH:.0f}s of starting; {then}"
                + (f": {tail}" if tail else "")
            )
            watched.parked = park
            return park
        delay = min(BACKOFF_FIRST * 2**watched.quick_deaths, self._backoff_max)
        watched.restarts += 1
        watched.restart_at = now + delay
        say(
            f"{child.name} exited with code {code} after {lived:.1f}s; "
            f"restart #{watched.restarts} in {delay:.1f}s"
        )
        return True

    def _relaunch(self, watched: _Watched, now: float) -> None:
        watched.restart_at = None
        watched.started_at = now
        watched.child.launch()
