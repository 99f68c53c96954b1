"""The dev runner's supervisor with real child processes."""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path

import pytest

from gochat_py.devstack.supervisor import AppProcess, Supervisor

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


def test_with_reload_a_server_that_cannot_start_waits_for_a_code_change_then_starts_again(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    marker = tmp_path / "fixed"
    # Fails at once until the "fix" lands, then runs until stopped.
    code = (
        f"import pathlib, sys, time\n"
        f"if not pathlib.Path({str(marker)!r}).exists(): sys.exit(3)\n"
        f"time.sleep(60)\n"
    )
    server = AppProcess("server", [sys.executable, "-c", code], dict(os.environ), ROOT)
    # Its five failed starts come at once: what is tested is what it does after them.
    supervisor = Supervisor(wait_for_changes=True, backoff_max=0.1)
    supervisor.launch(server)
    changes: list[str] = []
    done = threading.Event()
    outcome: list[int] = []

    def supervise() -> None:
        outcome.append(supervisor.run(done.is_set, lambda: [changes.pop()] if changes else []))

    thread = threading.Thread(target=supervise)
    thread.start()
    try:
        seen = ""
        deadline = time.monotonic() + 40
        while "waiting for a change to its code" not in seen:
            assert time.monotonic() < deadline, seen
            assert thread.is_alive(), f"the supervisor gave up: {seen}"
            time.sleep(0.2)
            seen += capfd.readouterr().err
        marker.touch()
        changes.append("server")
        deadline = time.monotonic() + 10
        while "code changed; restarting" not in seen:
            assert time.monotonic() < deadline, seen
            time.sleep(0.1)
            seen += capfd.readouterr().err
        time.sleep(1.0)  # long enough for a quick death to be seen by the next tick
        assert server.exit_code() is None  # running the fixed code
        assert thread.is_alive()
    finally:
        done.set()
        thread.join(10)
        supervisor.stop()
    assert outcome == [0]
