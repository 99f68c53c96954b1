"""What every benchmark stands on: a throwaway PostgreSQL and Redis, the API server (and
optionally the worker) pinned to CPU 0, and this load generator pinned to CPU 1."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import httpx
from redis import Redis

from bench.traced import TRACE_VARIABLE
from gochat_py.devstack.services import LocalStack, die_with_parent, free_port
from gochat_py.postgres import migrate

REPO_ROOT = Path(__file__).resolve().parent.parent
SERVER_CPU = 0
LOAD_CPU = 1
START_DEADLINE = 30.0
STOP_TIMEOUT = 10.0
JWT_SECRET = "bench-secret-that-is-long-enough-0123456789abcdef"
# Benchmarks create users and send in bursts from one address: lift the abuse limits.
UNLIMITED = {
    "LOGIN_LIMIT_PER_ACCOUNT": "1000000",
    "LOGIN_LIMIT_PER_ADDRESS": "1000000",
    "REGISTER_LIMIT_PER_ADDRESS": "1000000",
    "WS_RATE": "1000000",
    "WS_BURST": "1000000",
}


def can_pin() -> bool:
    return {SERVER_CPU, LOAD_CPU} <= os.sched_getaffinity(0)


class Process:
    """A child process in its own session, pinned to one CPU when the machine allows it."""

    def __init__(self, argv: list[str], env: Mapping[str, str], log: Path, cpu: int | None) -> None:
        self.log = log
        if TRACE_VARIABLE in env and argv[1:2] == ["-m"]:
            argv = [argv[0], "-m", "bench.traced", *argv[2:]]  # allocations traced
        if cpu is not None and shutil.which("taskset"):
            argv = ["taskset", "-c", str(cpu), *argv]  # taskset execs: the pid stays the child's
        with log.open("ab") as out:
            self.popen = subprocess.Popen(
                argv,
                cwd=REPO_ROOT,
                env=dict(env),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=die_with_parent,
            )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> None:
        if self.popen.poll() is not None:
            return
        self.popen.send_signal(sig)
        try:
            self.popen.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait()

    def tail(self, lines: int = 20) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


class BenchStack:
    """PostgreSQL, Redis, and processes of this project started on demand; all stopped on exit."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.stack = LocalStack(root / "stack", free_port(), free_port(), durable=False)
        self.pinned = can_pin()
        self.processes: list[Process] = []

    @property
    def database_url(self) -> str:
        return self.stack.postgres.url()

    @property
    def redis_url(self) -> str:
        return self.stack.redis.url

    def env(self, **overrides: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("ARGON2_", "WS_"))}
        env.update(
            ENV="test",
            SERVER_HOST="127.0.0.1",
            DATABASE_URL=self.database_url,
            REDIS_URL=self.redis_url,
            JWT_SECRET=JWT_SECRET,
            LOG_LEVEL="warning",
            WORKER_METRICS_PORT="0",
            **UNLIMITED,
        )
        env.update(overrides)
        return env

    def start_server(self, **overrides: str) -> tuple[Process, str]:
        """`python -m gochat_py` on CPU 0; returns it and its base URL once healthy."""
        port = free_port()
        env = self.env(SERVER_PORT=str(port), **overrides)
        process = self._spawn([sys.executable, "-m", "gochat_py"], env, f"api-{port}")
        base_url = f"http://127.0.0.1:{port}"
        asyncio.run(_wait_healthy(base_url, process))
        return process, base_url

    def flush_redis(self) -> None:
        """Empty Redis, so that nothing a stopped server left there (channel-layer queues and
        group members, streams, counters) is worked on by the next one."""
        client = Redis.from_url(self.redis_url)
        try:
            client.flushall()
        finally:
            client.close()

    def start_worker(self, cpu: int = SERVER_CPU, **overrides: str) -> Process:
        argv = [sys.executable, "-m", "worker"]
        return self._spawn(argv, self.env(**overrides), "worker", cpu)

    def _spawn(
        self, argv: list[str], env: Mapping[str, str], name: str, cpu: int = SERVER_CPU
    ) -> Process:
        log = self.root / f"{name}-{len(self.processes)}.log"
        process = Process(argv, env, log, cpu if self.pinned else None)
        self.processes.append(process)
        return process


async def _wait_healthy(base_url: str, process: Process) -> None:
    deadline = time.monotonic() + START_DEADLINE
    async with httpx.AsyncClient(base_url=base_url) as client:
        while time.monotonic() < deadline:
            if process.popen.poll() is not None:
                raise RuntimeError(f"server exited:\n{process.tail()}")
            with contextlib.suppress(httpx.TransportError):
                if (await client.get("/api/v1/health")).status_code == 200:
                    return
            await asyncio.sleep(0.1)
    raise RuntimeError(f"server not healthy within {START_DEADLINE:.0f}s:\n{process.tail()}")


@contextlib.contextmanager
def bench_stack() -> Iterator[BenchStack]:
    """A started stack with migrations applied; this process moves to CPU 1 if it can."""
    # SIGTERM (make, CI) becomes SystemExit so the cleanup below still runs.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    root = Path(tempfile.mkdtemp(prefix="gochat-bench-"))
    root.chmod(0o755)  # PostgreSQL runs as `postgres` when we are root and must traverse it
    bench = BenchStack(root)
    # Given back on exit: `python -m bench` runs every scenario in this one process, and
    # each must find both CPUs to pin its own server and generator.
    affinity = os.sched_getaffinity(0)
    try:
        bench.stack.start()
        asyncio.run(migrate.run(bench.database_url, "up", None))
        if bench.pinned:
            # After the stack started: PostgreSQL and Redis keep both CPUs.
            os.sched_setaffinity(0, {LOAD_CPU})
        yield bench
    finally:
        for process in reversed(bench.processes):
            process.stop()
        bench.stack.stop()
        shutil.rmtree(root, ignore_errors=True)
        os.sched_setaffinity(0, affinity)
