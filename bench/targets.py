"""The servers a fan-out load is pointed at, each started and populated its own way.

A target is a process to measure and a Population in its own ids. gochat-py gets its users
and groups through its public REST API; a server that speaks the bare protocol (see
bench/bare_server.py: `ws://…/ws?user=<n>`, groups from the JSON file in `BENCH_GROUPS_FILE`)
needs only the groups file, so another such server is one more entry in BARE_PROTOCOL_SERVERS,
or `--attach NAME=ws://127.0.0.1:PORT/ws@PID` for one started by hand.
"""

from __future__ import annotations

import asyncio
import json
import socket
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx
from redis.asyncio import Redis

from bench.bare_server import GROUPS_FILE_VARIABLE, STOCK_WEBSOCKET_FLAG
from bench.channels_baseline.launch import VENV_PYTHON as CHANNELS_PYTHON
from bench.loadgen import Group, Population
from bench.stack import LOAD_CPU, SERVER_CPU, BenchStack, Process
from gochat_py.devstack.services import free_port

# Login cost is not what fan-out measures: cheap argon2 lets 1,000 users register in seconds.
CHEAP_ARGON2 = {"ARGON2_TIME_COST": "1", "ARGON2_MEMORY_KIB": "1024", "ARGON2_PARALLELISM": "1"}
# Tokens issued at setup must still open sockets on the fresh server of a later phase.
LONG_TOKENS = {"JWT_ACCESS_EXPIRY": "24h"}
SETUP_CONCURRENCY = 32  # REST calls in flight while creating users and groups
SETUP_TIMEOUT = 60.0
START_DEADLINE = 30.0
PASSWORD = "fanout-password"

# name -> argv of a server speaking the bare protocol; started with the stack's environment
# (REDIS_URL and all), SERVER_HOST, SERVER_PORT and BENCH_GROUPS_FILE.
BARE_PROTOCOL_SERVERS: dict[str, list[str]] = {
    "bare": [sys.executable, "-m", "bench.bare_server"],
    "bare-stock": [sys.executable, "-m", "bench.bare_server", STOCK_WEBSOCKET_FLAG],
    # Django Channels runs from its own venv (bench/channels_baseline/setup.sh), never ours.
    "channels-redis": [str(CHANNELS_PYTHON), "-m", "bench.channels_baseline", "--layer", "redis"],
    "channels-pubsub": [str(CHANNELS_PYTHON), "-m", "bench.channels_baseline", "--layer", "pubsub"],
}


@dataclass(frozen=True)
class Layout:
    """Users numbered 0..users-1 in consecutive groups; the first `senders` of each send."""

    users: int
    group_size: int
    senders: int

    def groups(self) -> list[tuple[int, ...]]:
        size = self.group_size
        return [tuple(range(start, start + size)) for start in range(0, self.users, size)]

    def write(self, path: Path) -> Path:
        """The groups file of the bare protocol: conversation id -> member user numbers."""
        path.write_text(json.dumps({f"g{i}": list(g) for i, g in enumerate(self.groups())}))
        return path

    def bare_population(self, socket_url: str) -> Population:
        groups = [
            Group(f"g{i}", members, members[: self.senders])
            for i, members in enumerate(self.groups())
        ]
        urls = [f"{socket_url}?user={n}" for n in range(self.users)]
        return Population(urls=urls, groups=groups, acks=False)


@dataclass
class Target:
    name: str
    pid: int  # the server process whose CPU and memory are measured
    population: Population
    helpers: dict[str, int] = field(default_factory=dict)  # other processes whose CPU we report
    process: Process | None = None  # ours to stop when done; None for an attached server
    worker: Process | None = None  # drains the stream while the load runs; stopped with it
    redis_url: str | None = None  # where its stream is, for the persist lag


def start_bare_protocol(bench: BenchStack, name: str, layout: Layout) -> Target:
    """Start BARE_PROTOCOL_SERVERS[name] on the server CPU with this layout's groups."""
    port = free_port()
    groups_file = layout.write(bench.root / f"groups-{name}.json")
    env = bench.env(SERVER_PORT=str(port), **{GROUPS_FILE_VARIABLE: str(groups_file)})
    cpu = SERVER_CPU if bench.pinned else None
    process = Process(BARE_PROTOCOL_SERVERS[name], env, bench.root / f"{name}-{port}.log", cpu)
    bench.processes.append(process)  # stopped with the stack whatever happens
    _wait_listening(port, process)
    population = layout.bare_population(f"ws://127.0.0.1:{port}/ws")
    return Target(name, process.pid, population, process=process)


def attach(spec: str, layout: Layout) -> Target:
    """`NAME=ws://127.0.0.1:PORT/ws@PID`: a bare-protocol server started by hand."""
    name, _, rest = spec.partition("=")
    url, _, pid = rest.rpartition("@")
    if not (name and url.startswith("ws://127.0.0.1:") and pid.isdigit()):
        raise ValueError(f"--attach wants NAME=ws://127.0.0.1:PORT/ws@PID, got {spec!r}")
    return Target(name, int(pid), layout.bare_population(url))


def start_gochat(bench: BenchStack, layout: Layout, previous: Target | None = None) -> Target:
    """gochat-py on the server CPU, its users and groups created through the REST API; or,
    after a `previous` gochat target, a fresh server process for the same accounts (they are
    in PostgreSQL, and their tokens are signed with the same secret)."""
    process, base_url = bench.start_server(**CHEAP_ARGON2, **LONG_TOKENS)
    # On the generator's CPU: the server's is what the fan-out measures.
    worker = bench.start_worker(cpu=LOAD_CPU)
    if previous is None:
        population, redis_pid = asyncio.run(_populate_gochat(base_url, bench.redis_url, layout))
    else:
        population = _moved(previous.population, base_url)
        redis_pid = previous.helpers["redis"]
    helpers = {"redis": redis_pid, "worker": worker.pid}
    return Target("gochat", process.pid, population, helpers, process, worker, bench.redis_url)


def _moved(population: Population, base_url: str) -> Population:
    """The same users and groups, their socket URLs pointing at the server at `base_url`."""
    ws_base = base_url.replace("http://", "ws://", 1)
    urls = [ws_base + url[url.index("/ws?") :] for url in population.urls]
    return replace(population, urls=urls)


async def _populate_gochat(base_url: str, redis_url: str, layout: Layout) -> tuple[Population, int]:
    gate = asyncio.Semaphore(SETUP_CONCURRENCY)
    limits = httpx.Limits(max_connections=SETUP_CONCURRENCY)
    async with httpx.AsyncClient(base_url=base_url, timeout=SETUP_TIMEOUT, limits=limits) as http:

        async def call(path: str, body: dict[str, Any], token: str | None = None) -> Any:
            headers = {"Authorization": f"Bearer {token}"} if token else None
            async with gate:
                response = await http.post(f"/api/v1{path}", json=body, headers=headers)
            if response.status_code != 201:
                raise RuntimeError(f"POST {path}: {response.status_code} {response.text[:200]}")
            return response.json()

        accounts = await asyncio.gather(
            *(
                call(
                    "/auth/register",
                    {"email": f"fan{n}@bench.test", "username": f"fan{n}", "password": PASSWORD},
                )
                for n in range(layout.users)
            )
        )
        ids = [a["user"]["id"] for a in accounts]
        tokens = [a["tokens"]["access_token"] for a in accounts]
        members_of = layout.groups()
        created = await asyncio.gather(
            *(
                call(
                    "/conversations",
                    {"name": f"fanout {i}", "participant_ids": [ids[n] for n in members[1:]]},
                    tokens[members[0]],
                )
                for i, members in enumerate(members_of)
            )
        )
    groups = [
        Group(item["conversation"]["id"], members, members[: layout.senders])
        for item, members in zip(created, members_of, strict=True)
    ]
    ws_base = base_url.replace("http://", "ws://", 1)
    urls = [f"{ws_base}/ws?token={token}&events=ack,echo" for token in tokens]
    redis = Redis.from_url(redis_url)
    try:
        redis_pid = int((await redis.info("server"))["process_id"])
    finally:
        await redis.aclose()
    return Population(urls=urls, groups=groups, acks=True), redis_pid


def _wait_listening(port: int, process: Process) -> None:
    # uvicorn listens only once the lifespan has started: accepting means ready. A TCP probe
    # rather than an HTTP route keeps the bare protocol down to the one socket endpoint.
    deadline = time.monotonic() + START_DEADLINE
    while time.monotonic() < deadline:
        if process.popen.poll() is not None:
            raise RuntimeError(f"server exited:\n{process.tail()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"server not listening within {START_DEADLINE:.0f}s:\n{process.tail()}")
