"""Does a login storm stall the event loop? Health latency idle vs. under 20 looping logins.

`python -m bench.login_storm [--seconds N]` from the repo root: starts a throwaway PostgreSQL,
Redis and API server, prints a table and appends one JSON line to bench/results/.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

from gochat_py import migrate
from gochat_py.localstack import LocalStack, StackError, die_with_parent, free_port
from gochat_py.settings import load_settings

REPO_ROOT = Path(__file__).resolve().parent.parent
RESULTS = REPO_ROOT / "bench" / "results" / "login_storm.jsonl"
USERS = 20
BASELINE_PROBES = 300
PROBE_INTERVAL = 0.010
START_DEADLINE = 30.0
STOP_TIMEOUT = 10.0
TARGET_HEALTH_P99_MS = 50.0
# A login waits behind the whole storm in the server's argon2 queue; seconds, not ms.
LOGIN_TIMEOUT = 60.0
PROBE_TIMEOUT = 10.0


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q / 100 * len(ordered))) - 1]


def summary(latencies_ms: list[float]) -> dict[str, float]:
    return {
        "n": len(latencies_ms),
        "p50_ms": round(percentile(latencies_ms, 50), 2),
        "p99_ms": round(percentile(latencies_ms, 99), 2),
        "max_ms": round(max(latencies_ms, default=math.nan), 2),
    }


def server_env(database_url: str, redis_url: str, port: int) -> dict[str, str]:
    # Argon2 settings are dropped on purpose: the production defaults are what is measured.
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARGON2_")}
    env.update(
        ENV="test",
        SERVER_HOST="127.0.0.1",
        SERVER_PORT=str(port),
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        JWT_SECRET="bench-login-storm-secret-0123456789abcdef",
        LOG_LEVEL="warning",
        LOGIN_LIMIT_PER_ACCOUNT="100000",
        LOGIN_LIMIT_PER_ADDRESS="100000",
        REGISTER_LIMIT_PER_ADDRESS="100000",
    )
    return env


def start_server(env: dict[str, str], log: Path, pinned: bool) -> subprocess.Popen[bytes]:
    argv = [sys.executable, "-m", "gochat_py"]
    use_taskset = pinned and shutil.which("taskset") is not None
    if use_taskset:
        argv = ["taskset", "-c", "0", *argv]  # taskset execs, so the pid stays the server's

    def preexec() -> None:
        die_with_parent()
        if pinned and not use_taskset:
            os.sched_setaffinity(0, {0})

    with log.open("ab") as out:
        return subprocess.Popen(
            argv,
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=preexec,
        )


def stop_server(server: subprocess.Popen[bytes]) -> None:
    if server.poll() is not None:
        return
    server.send_signal(signal.SIGTERM)
    try:
        server.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


async def wait_healthy(client: httpx.AsyncClient, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + START_DEADLINE
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"server exited with code {server.returncode}")
        with contextlib.suppress(httpx.TransportError):
            if (await client.get("/api/v1/health")).status_code == 200:
                return
        await asyncio.sleep(0.1)
    raise RuntimeError(f"server not healthy within {START_DEADLINE:.0f}s")


async def probe(client: httpx.AsyncClient) -> float:
    started = time.perf_counter()
    response = await client.get("/api/v1/health")
    response.raise_for_status()
    return (time.perf_counter() - started) * 1000


async def prober(client: httpx.AsyncClient, deadline: float, out: list[float]) -> None:
    # Ticks missed during a slow probe are skipped, not made up in a burst: a burst would
    # add fast samples right after each stall and pull the p99 down.
    tick = time.monotonic()
    while time.monotonic() < deadline:
        out.append(await probe(client))
        tick = max(tick + PROBE_INTERVAL, time.monotonic())
        await asyncio.sleep(tick - time.monotonic())


def credentials(i: int) -> dict[str, str]:
    return {"email": f"storm{i}@bench.test", "password": f"storm-password-{i}"}


async def register_users(client: httpx.AsyncClient) -> None:
    responses = await asyncio.gather(
        *(
            client.post("/api/v1/auth/register", json={**credentials(i), "username": f"storm{i}"})
            for i in range(USERS)
        )
    )
    refused = [r.status_code for r in responses if r.status_code != 201]
    if refused:
        raise RuntimeError(f"registration failed with statuses {refused}")


async def login_loop(
    client: httpx.AsyncClient, i: int, deadline: float, out: list[float], errors: list[int]
) -> None:
    body = credentials(i)
    while time.monotonic() < deadline:
        started = time.perf_counter()
        response = await client.post("/api/v1/auth/login", json=body)
        if response.status_code == 200:
            out.append((time.perf_counter() - started) * 1000)
        else:
            errors.append(response.status_code)


async def measure(
    base_url: str, server: subprocess.Popen[bytes], seconds: float
) -> dict[str, object]:
    async with (
        httpx.AsyncClient(base_url=base_url, timeout=PROBE_TIMEOUT) as health_client,
        httpx.AsyncClient(base_url=base_url, timeout=LOGIN_TIMEOUT) as login_client,
    ):
        await wait_healthy(health_client, server)
        await register_users(login_client)
        baseline = [await probe(health_client) for _ in range(BASELINE_PROBES)]

        health: list[float] = []
        logins: list[float] = []
        errors: list[int] = []
        started = time.monotonic()
        deadline = started + seconds
        await asyncio.gather(
            prober(health_client, deadline, health),
            *(login_loop(login_client, i, deadline, logins, errors) for i in range(USERS)),
        )
        elapsed = time.monotonic() - started

    idle, storm = summary(baseline), summary(health)
    return {
        "health_idle": idle,
        "health_storm": storm,
        "login": {
            **summary(logins),
            "completed": len(logins),
            "per_second": round(len(logins) / elapsed, 2),
            "errors": len(errors),
            "elapsed_s": round(elapsed, 2),
        },
        "health_p99_ratio_vs_idle": round(storm["p99_ms"] / idle["p99_ms"], 2),
        "target_health_p99_ms": TARGET_HEALTH_P99_MS,
        "target_met": storm["p99_ms"] < TARGET_HEALTH_P99_MS,
    }


def table(result: dict[str, object], seconds: float, pinned: bool) -> str:
    where = "server on CPU 0, load on CPU 1" if pinned else "unpinned (CPUs 0 and 1 not both ours)"
    lines = [
        f"login storm: {USERS} users, {seconds:g} s, {where}",
        f"{'':22}{'n':>7}{'p50 ms':>10}{'p99 ms':>10}{'max ms':>10}",
    ]
    for label, key in (("health, idle", "health_idle"), ("health, storm", "health_storm"),
                       ("login, storm", "login")):  # fmt: skip
        row = result[key]
        assert isinstance(row, dict)
        lines.append(
            f"{label:22}{row['n']:>7}{row['p50_ms']:>10.2f}{row['p99_ms']:>10.2f}"
            f"{row['max_ms']:>10.2f}"
        )
    login = result["login"]
    assert isinstance(login, dict)
    verdict = "met" if result["target_met"] else "MISSED"
    lines += [
        f"logins: {login['completed']} ({login['per_second']}/s), errors: {login['errors']}",
        f"health p99 vs idle: {result['health_p99_ratio_vs_idle']}x; "
        f"target p99 < {TARGET_HEALTH_P99_MS:g} ms: {verdict}",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.login_storm", description=__doc__)
    parser.add_argument("--seconds", type=float, default=10.0, help="storm duration (10)")
    seconds: float = parser.parse_args(argv).seconds
    pinned = {0, 1} <= os.sched_getaffinity(0)
    # Turn SIGTERM (make, CI) into SystemExit so the finally below still cleans up.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    root = Path(tempfile.mkdtemp(prefix="gochat-bench-"))
    root.chmod(0o755)  # PostgreSQL runs as `postgres` when we are root and must traverse it
    stack = LocalStack(root / "stack", free_port(), free_port(), durable=False)
    server: subprocess.Popen[bytes] | None = None
    log = root / "server.log"
    try:
        stack.start()
        asyncio.run(migrate.run(stack.postgres.url(), "up", None))
        port = free_port()
        env = server_env(stack.postgres.url(), stack.redis.url, port)
        settings = load_settings(env)
        server = start_server(env, log, pinned)
        if pinned:
            # After the stack started: PostgreSQL and Redis inherit no pin and use both CPUs.
            os.sched_setaffinity(0, {1})
        result = asyncio.run(measure(f"http://127.0.0.1:{port}", server, seconds))
    except (StackError, RuntimeError, httpx.HTTPError) as exc:
        tail = log.read_text(errors="replace").splitlines()[-20:] if log.exists() else []
        sys.stderr.write(f"login_storm: {exc!r}\n" + "".join(f"  | {t}\n" for t in tail))
        return 1
    finally:
        if server is not None:
            stop_server(server)
        stack.stop()
        shutil.rmtree(root, ignore_errors=True)

    record = {
        "scenario": "login_storm",
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
        "users": USERS,
        "seconds": seconds,
        "pinned": pinned,
        "server": {
            "argon2_time_cost": settings.argon2_time_cost,
            "argon2_memory_kib": settings.argon2_memory_kib,
            "argon2_parallelism": settings.argon2_parallelism,
            "password_hash_threads": settings.password_hash_threads,
        },
        **result,
    }
    line = json.dumps(record)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    with RESULTS.open("a") as out:
        out.write(line + "\n")
    sys.stdout.write(table(result, seconds, pinned) + line + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
