"""Does a login storm stall the event loop? Health latency idle vs. under 20 looping logins.

`python -m bench.login_storm [--seconds N]` from the repo root: starts a throwaway PostgreSQL,
Redis and API server, prints a table and appends one JSON line to bench/results/.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time

import httpx

from bench.results import latency_summary, record
from bench.stack import bench_stack
from gochat_py.localstack import StackError
from gochat_py.settings import Settings

USERS = 20
BASELINE_PROBES = 300
PROBE_INTERVAL = 0.010
TARGET_HEALTH_P99_MS = 50.0
# A login waits behind the whole storm in the server's argon2 queue; seconds, not ms.
LOGIN_TIMEOUT = 60.0
PROBE_TIMEOUT = 10.0


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


async def measure(base_url: str, seconds: float) -> dict[str, object]:
    async with (
        httpx.AsyncClient(base_url=base_url, timeout=PROBE_TIMEOUT) as health_client,
        httpx.AsyncClient(base_url=base_url, timeout=LOGIN_TIMEOUT) as login_client,
    ):
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

    idle, storm = latency_summary(baseline), latency_summary(health)
    return {
        "health_idle": idle,
        "health_storm": storm,
        "login": {
            **latency_summary(logins),
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
    try:
        # The stack drops ARGON2_* from the environment: production hashing is measured.
        with bench_stack() as bench:
            _, base_url = bench.start_server()
            pinned = bench.pinned
            result = asyncio.run(measure(base_url, seconds))
    except (StackError, RuntimeError, httpx.HTTPError) as exc:
        sys.stderr.write(f"login_storm: {exc!r}\n")
        return 1
    defaults = Settings()
    line = record(
        "login_storm",
        {
            "users": USERS,
            "seconds": seconds,
            "pinned": pinned,
            "server": {
                "argon2_time_cost": defaults.argon2_time_cost,
                "argon2_memory_kib": defaults.argon2_memory_kib,
                "argon2_parallelism": defaults.argon2_parallelism,
                "password_hash_threads": defaults.password_hash_threads,
            },
            **result,
        },
    )
    sys.stdout.write(table(result, seconds, pinned) + line + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
