"""Connections: 10,000 idle authenticated WebSockets on one server process. Resident memory
per connection, connect rate, and whether a message still reaches every member of a group
of 10 among them; beside the bare bound (bench/bare_server.py: Starlette on uvicorn with
gochat-py's options, its WebSocket protocol included, no auth, no Redis) holding as many idle
sockets, so that gochat-py's memory per connection is also given as a multiple of the floor
under any server on this stack; and beside the same bare server on uvicorn's own WebSocket
protocol (`bare-stock`), the stack as it ships.

`python -m bench.connections [--connections 10000] [--idle 5]` from the repo root: starts a
throwaway PostgreSQL and Redis, each server on CPU 0 in turn (this generator on CPU 1),
prints a table and appends one JSON line to bench/results/connections.jsonl.

Memory is the server's VmRSS (/proc/<pid>/status): after a few sockets have opened and
closed (first-use costs such as pool connections and prepared statements are not per
connection), after all of them are open, and after they have been idle for `--idle` seconds;
per connection is (idle - before) / connected. Connect rate is sockets connected over the
time from the first handshake to the last, at most 64 in flight (as fan-out connects).

gochat-py's users are written straight into PostgreSQL, and all but one of their access
tokens signed with the server's own TokenCodec and secret (bench/accounts.py says why and
how); user 0 logs in through `POST /auth/login` and creates the group through
`POST /conversations`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import secrets
import shutil
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import uvloop
from picows import WSError, WSFrame, WSListener, WSMsgType, WSTransport, ws_connect

from bench import accounts, memory
from bench.loadgen import CONNECT_CONCURRENCY, HANDSHAKE_TIMEOUT, Group, Population, close_all
from bench.procstat import cpu_seconds, open_files_limit, rss_kib
from bench.results import latency_summary, record
from bench.stack import BenchStack, bench_stack
from bench.targets import Layout, Target, start_bare_protocol
from bench.traced import TRACE_VARIABLE
from gochat_py.devstack.services import StackError

CONNECTIONS = 10_000
GROUP_SIZE = 10
IDLE_SECONDS = 5.0
TARGET_KIB_PER_CONNECTION = 20.0
TRACED_FILES = 12  # source files listed per server under --tracemalloc
BASELINE = "bare"
STOCK = "bare-stock"  # the same bare server on uvicorn's own WebSocket protocol
USER_PREFIX = "conn"
# Opened and closed before the first reading, so that one-time costs are not counted per
# connection; then this long for the server to finish closing them.
WARMUP_SOCKETS = GROUP_SIZE
WARMUP_QUIET = 1.0
DELIVERY_TIMEOUT = 10.0
CLOSE_TIMEOUT = 60.0  # 10,000 closing handshakes through one busy core
# Descriptors a server holds besides its sockets: listener, PostgreSQL and Redis pools, logs.
FD_HEADROOM = 100
SETUP_TIMEOUT = 60.0  # the login waits for a production-cost argon2 verification


@dataclass
class Crowd:
    """Every socket of one round: which users got the marked message when, and how many
    sockets the server closed while they should have stayed open."""

    marker: bytes
    transports: dict[int, WSTransport] = field(default_factory=dict)
    got: dict[int, int] = field(default_factory=dict)  # user -> perf_counter_ns of receipt
    closed_by_server: int = 0
    closing: bool = False  # our close: the server's answering close frames are expected


class Idle(WSListener):
    """One user's socket: it sends nothing and only watches for the marked message."""

    def __init__(self, crowd: Crowd, user: int) -> None:
        super().__init__()
        self.crowd = crowd
        self.user = user

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.crowd.transports[self.user] = transport

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        crowd = self.crowd
        if frame.msg_type == WSMsgType.TEXT:
            if crowd.marker in frame.get_payload_as_bytes():
                crowd.got.setdefault(self.user, time.perf_counter_ns())
        elif frame.msg_type == WSMsgType.CLOSE:
            if not crowd.closing:
                crowd.closed_by_server += 1
            transport.send_close(frame.get_close_code())
            transport.disconnect()


@dataclass
class Connected:
    handshakes_ms: list[float]
    errors: list[str]
    seconds: float


async def connect(urls: list[str], crowd: Crowd, count: int) -> Connected:
    """Open sockets for users 0..count-1; a refused or timed-out handshake is counted."""
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)
    handshakes: list[float] = []
    errors: list[str] = []

    async def open_one(user: int) -> None:
        async with gate:
            started = time.perf_counter()
            try:
                await ws_connect(
                    lambda: Idle(crowd, user),
                    urls[user],
                    websocket_handshake_timeout=HANDSHAKE_TIMEOUT,
                )
            except (WSError, OSError, TimeoutError) as exc:
                errors.append(f"{type(exc).__name__}: {exc}"[:200])
                return
            handshakes.append((time.perf_counter() - started) * 1000)

    started = time.perf_counter()
    await asyncio.gather(*(open_one(user) for user in range(count)))
    return Connected(handshakes, errors, time.perf_counter() - started)


async def close(crowd: Crowd) -> None:
    crowd.closing = True
    await close_all(list(crowd.transports.values()), CLOSE_TIMEOUT)


async def check_group(crowd: Crowd, group: Group) -> dict[str, Any]:
    """The group's first member sends one message; every member's socket, its own included,
    must receive it, and no other socket."""
    members = set(group.members)
    sender = crowd.transports.get(group.senders[0])
    if sender is None:
        return {"group_size": len(members), "reached": 0, "ok": False, "error": "sender offline"}
    conversation = group.conversation_id.encode()
    frame = b'{"conversation_id":"%s","content":"%s"}' % (conversation, crowd.marker)
    started = time.perf_counter_ns()
    sender.send(WSMsgType.TEXT, frame)
    deadline = time.monotonic() + DELIVERY_TIMEOUT
    while not members <= crowd.got.keys() and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    reached = members & crowd.got.keys()
    outsiders = len(crowd.got.keys() - members)
    slowest = max((crowd.got[user] - started for user in reached), default=None)
    return {
        "group_size": len(members),
        "reached": len(reached),
        "missing": sorted(members - reached),
        "non_members_reached": outsiders,
        "slowest_ms": None if slowest is None else round(slowest / 1e6, 2),
        "ok": reached == members and outsiders == 0,
    }


async def measure(
    target: Target, connections: int, idle: float, traces: Path | None
) -> dict[str, Any]:
    urls = target.population.urls
    pid = target.pid
    marker = b"connections-check:" + secrets.token_hex(8).encode()

    warmup = Crowd(marker)
    warmed = await connect(urls, warmup, WARMUP_SOCKETS)
    if warmed.errors:
        raise RuntimeError(f"{target.name}: warm-up socket refused: {warmed.errors[0]}")
    await close(warmup)
    await asyncio.sleep(WARMUP_QUIET)

    crowd = Crowd(marker)
    before = rss_kib(pid)
    traced_before = memory.snapshot(pid, traces) if traces else None
    cpu_before = cpu_seconds(pid)
    opened = await connect(urls, crowd, connections)
    cpu_connect = cpu_seconds(pid) - cpu_before
    at_connect = rss_kib(pid)
    await asyncio.sleep(idle)
    cpu_idle = cpu_seconds(pid) - cpu_before - cpu_connect
    at_idle = rss_kib(pid)
    traced_idle = memory.snapshot(pid, traces) if traces else None
    closed_while_idle = crowd.closed_by_server
    group = await check_group(crowd, target.population.groups[0])
    await close(crowd)

    connected = len(opened.handshakes_ms)
    per_connection = (at_idle - before) / connected if connected else None
    traced = None
    if traced_before and traced_idle and connected:
        traced = memory.per_connection(traced_before, traced_idle, connected, TRACED_FILES)
    return {
        "connections": connections,
        "connected": connected,
        "refused": len(opened.errors),
        "first_error": opened.errors[0] if opened.errors else None,
        "connect_s": round(opened.seconds, 3),
        "connects_per_s": round(connected / opened.seconds, 1),
        "handshake": latency_summary(opened.handshakes_ms),
        "server_cpu_us_per_connect": round(cpu_connect * 1e6 / connected, 1) if connected else None,
        "rss_before_mib": round(before / 1024, 1),
        "rss_connected_mib": round(at_connect / 1024, 1),
        "rss_idle_mib": round(at_idle / 1024, 1),
        "rss_per_connection_kib": None if per_connection is None else round(per_connection, 2),
        "idle_s": idle,
        "server_cpu_pct_idle": round(100 * cpu_idle / idle, 2),
        "closed_by_server_while_idle": closed_while_idle,
        "server_open_files_limit": open_files_limit(pid),
        "group": group,
        "tracemalloc_per_connection": traced,
    }


def run_target(
    target: Target, connections: int, idle: float, traces: Path | None
) -> dict[str, Any]:
    limit = open_files_limit(target.pid)
    if limit < connections + FD_HEADROOM:
        raise RuntimeError(
            f"{target.name} may open {limit} files, too few for {connections} sockets"
        )
    try:
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            return runner.run(measure(target, connections, idle, traces))
    finally:
        if target.process is not None:
            target.process.stop()  # frees the server CPU for the next target


def start_bare(bench: BenchStack, connections: int) -> Target:
    # Users 0..connections-1 in groups of 10; the first group is the one checked.
    return start_bare_protocol(bench, BASELINE, Layout(connections, GROUP_SIZE, senders=1))


def start_stock(bench: BenchStack, connections: int) -> Target:
    return start_bare_protocol(bench, STOCK, Layout(connections, GROUP_SIZE, senders=1))


def start_gochat(bench: BenchStack, connections: int) -> Target:
    ids = asyncio.run(accounts.insert_users(bench.database_url, USER_PREFIX, connections))
    process, base_url = bench.start_server()
    first_token, conversation_id = asyncio.run(_create_group(base_url, ids[1:GROUP_SIZE]))
    tokens = [first_token, *accounts.access_tokens(ids[1:])]
    ws_base = base_url.replace("http://", "ws://", 1)
    members = tuple(range(GROUP_SIZE))
    population = Population(
        urls=[f"{ws_base}/ws?token={token}&events=ack,echo" for token in tokens],
        groups=[Group(conversation_id, members, members[:1])],
        acks=True,
    )
    return Target("gochat", process.pid, population, process=process)


async def _create_group(base_url: str, others: list[uuid.UUID]) -> tuple[str, str]:
    """User 0 logs in and creates a group with `others`: its access token and the group's id."""
    async with httpx.AsyncClient(base_url=base_url, timeout=SETUP_TIMEOUT) as http:
        login = await http.post(
            "/api/v1/auth/login",
            json={"email": accounts.email(USER_PREFIX, 0), "password": accounts.PASSWORD},
        )
        if login.status_code != 200:
            raise RuntimeError(f"POST /auth/login: {login.status_code} {login.text[:200]}")
        token = login.json()["tokens"]["access_token"]
        created = await http.post(
            "/api/v1/conversations",
            json={"name": "connections", "participant_ids": [str(uid) for uid in others]},
            headers={"Authorization": f"Bearer {token}"},
        )
        if created.status_code != 201:
            raise RuntimeError(f"POST /conversations: {created.status_code} {created.text[:200]}")
        return str(token), str(created.json()["conversation"]["id"])


def summary(results: dict[str, dict[str, Any]]) -> dict[str, Any]:
    gochat, bare, stock = results.get("gochat"), results.get(BASELINE), results.get(STOCK)
    kib = gochat["rss_per_connection_kib"] if gochat else None
    bare_kib = bare["rss_per_connection_kib"] if bare else None
    stock_kib = stock["rss_per_connection_kib"] if stock else None
    return {
        "rss_per_connection_vs_bare": round(kib / bare_kib, 2) if kib and bare_kib else None,
        "rss_per_connection_vs_stock": round(kib / stock_kib, 2) if kib and stock_kib else None,
        "target_kib_per_connection": TARGET_KIB_PER_CONNECTION,
        "target_met": kib is not None and kib <= TARGET_KIB_PER_CONNECTION,
        "delivery_ok": all(r["group"]["ok"] for r in results.values()),
    }


def table(results: dict[str, dict[str, Any]], overall: dict[str, Any], pinned: bool) -> str:
    where = "server on CPU 0, generator on CPU 1" if pinned else "unpinned"
    some = next(iter(results.values()))
    lines = [
        f"connections: {some['connections']} idle sockets per server, "
        f"{some['idle_s']:g} s idle, {where}",
        f"{'target':<11}{'connected':>10}{'refused':>8}{'conn/s':>8}{'hs p99':>8}{'µs/conn':>9}"
        f"{'RSS pre':>9}{'RSS open':>10}{'RSS idle':>10}{'KiB/conn':>9}{'idle CPU%':>10}"
        f"{'group':>8}",
    ]
    for name, r in results.items():
        group = r["group"]
        lines.append(
            f"{name:<11}{r['connected']:>10}{r['refused']:>8}{r['connects_per_s']:>8,.0f}"
            f"{_figure(r['handshake']['p99_ms'], '.1f'):>8}"
            f"{_figure(r['server_cpu_us_per_connect'], '.0f'):>9}"
            f"{r['rss_before_mib']:>9.1f}{r['rss_connected_mib']:>10.1f}{r['rss_idle_mib']:>10.1f}"
            f"{_figure(r['rss_per_connection_kib'], '.2f'):>9}{r['server_cpu_pct_idle']:>10.2f}"
            f"{group['reached']:>5}/{group['group_size']:<2}"
        )
    ratio = overall["rss_per_connection_vs_bare"]
    stock_ratio = overall["rss_per_connection_vs_stock"]
    verdict = {True: "met", False: "MISSED", None: "not judged under --tracemalloc"}[
        overall["target_met"]
    ]
    lines += [
        "hs p99: handshake ms; µs/conn: server CPU per connect; RSS (MiB): the server's before "
        "connecting, with every socket open, after idling; KiB/conn: (idle - pre) / connected; "
        "group: members whose socket got one message sent in a group, the sender's included; "
        f"{STOCK}: {BASELINE} on uvicorn's own WebSocket protocol",
        f"gochat KiB/conn vs bare: {_figure(ratio, '.2f')}x, "
        f"vs {STOCK}: {_figure(stock_ratio, '.2f')}x; "
        f"target <= {TARGET_KIB_PER_CONNECTION:g} KiB/conn: {verdict}; "
        f"group delivery: {'ok' if overall['delivery_ok'] else 'FAILED'}",
    ]
    for name, r in results.items():
        traced = r["tracemalloc_per_connection"]
        if traced:
            lines.append(
                f"{name}: {traced['total_bytes'] / 1024:.2f} KiB per connection allocated by "
                "Python code (tracemalloc), by file: "
                + ", ".join(f"{t['file']} {t['bytes']}" for t in traced["top"])
            )
    return "\n".join(lines) + "\n"


def _figure(value: float | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def _progress(text: str) -> None:
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.connections", description=__doc__)
    parser.add_argument("--connections", type=int, default=CONNECTIONS, help="sockets per server")
    parser.add_argument("--idle", type=float, default=IDLE_SECONDS, help="seconds held idle")
    parser.add_argument(
        "--tracemalloc",
        action="store_true",
        help="run the servers under tracemalloc and print what each holds per connection, by "
        "source file (RSS then includes tracemalloc's own records: not comparable)",
    )
    args = parser.parse_args(argv)
    connections: int = args.connections
    if connections < GROUP_SIZE:
        parser.error(f"--connections must be at least the group size, {GROUP_SIZE}")
    # Children (the servers) inherit the raised limit; each is checked once started.
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < connections + FD_HEADROOM:
        parser.error(f"the hard open-files limit ({hard}) is below {connections} sockets")
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    results: dict[str, dict[str, Any]] = {}
    traces = Path(tempfile.mkdtemp(prefix="gochat-traces-")) if args.tracemalloc else None
    if traces:
        os.environ[TRACE_VARIABLE] = str(traces)  # the servers' environment comes from ours
    try:
        with bench_stack() as bench:
            pinned = bench.pinned
            for name, start in (
                (STOCK, start_stock),
                (BASELINE, start_bare),
                ("gochat", start_gochat),
            ):
                _progress(f"starting {name}")
                target = start(bench, connections)
                results[name] = run_target(target, connections, args.idle, traces)
                r = results[name]
                _progress(f"  {name}: {r['connected']} sockets, {r['connects_per_s']:,.0f}/s")
    except (StackError, RuntimeError, httpx.HTTPError, OSError) as exc:
        sys.stderr.write(f"connections: {exc!r}\n")
        return 1
    finally:
        if traces:
            shutil.rmtree(traces, ignore_errors=True)
    overall = summary(results)
    if traces:
        overall["target_met"] = None  # tracemalloc's own records inflate RSS: no verdict
    figures = {
        "connections": connections,
        "idle_s": args.idle,
        "pinned": pinned,
        "tracemalloc": bool(traces),
        **overall,
    }
    line = record("connections", {**figures, "targets": results})
    sys.stdout.write(table(results, overall, pinned) + line + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
