"""Does the Channels baseline speak the protocol? And roughly how fast is it, per layer?

`python -m bench.channels_baseline.smoke [--layer redis|pubsub] [--probe-groups G]
[--probe-messages N]` from the repo root, with the project's venv: creates the baseline's venv
if missing, starts a throwaway redis-server, and for each layer starts the server, checks that
every socket of every member gets each frame exactly once (and that what the bare server
refuses or drops is refused or dropped), then runs a closed-loop probe (by default 100 users
in 10 groups of 10, each sending its next frame when its previous one comes back). The probe
is a sanity figure, not the benchmark: that is bench.fanout.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import redis
import uvloop
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus

from bench.channels_baseline import launch
from bench.results import latency_summary
from bench.stack import LOAD_CPU, SERVER_CPU, Process, can_pin
from gochat_py.devstack.services import RedisServer, free_port

START_DEADLINE = 30.0
CHECK_DEADLINE = 15.0  # a handful of frames; anything slower than this is a hang, not load
PROBE_DEADLINE = 180.0  # 50,000 deliveries at the Redis layer's ~3,500/s take ~15 s
ECHO_TIMEOUT = 5.0  # a sender whose own frame never comes back moves on and counts it lost
QUIET = 5.0  # after the last send, this long without any delivery ends the probe
FRAME_MAX = 64 * 1024  # the server's ws_max_size

# The check: two groups of three, and user 1 on a second device (every socket, not every user).
CHECK_GROUPS = {"alpha": [1, 2, 3], "beta": [4, 5, 6]}
CHECK_SOCKETS = [(1, 0), (1, 1), (2, 0), (3, 0), (4, 0), (5, 0), (6, 0)]
CHECK_FRAMES_PER_USER = 3
BARRIER = "barrier"
# User 1 (in alpha only) sends these; the bare server drops each and keeps the socket open.
DROPPED_FRAMES = [
    "not json",
    json.dumps({"conversation_id": "beta", "content": "not a member"}),
    json.dumps({"conversation_id": "nope", "content": "no such group"}),
    json.dumps({"conversation_id": "alpha"}),
]
# Socket URLs without a usable user number: the handshake is refused with 403.
REFUSED_QUERIES = ["", "?user=", "?user=-1", "?user=abc"]

PROBE_GROUP_SIZE = 10

# The bare server's outbound frame (bench/bare_server.py `Outbound`), keys in its order.
OUTBOUND_KEYS = ["id", "conversation_id", "sender_id", "content", "type", "sent_at"]

Delivery = tuple[str, int, str]  # conversation id, sender, content
Receipt = tuple[int, Delivery]  # receiving user, what it got
MessageIds = dict[Delivery, set[int]]  # every id each message was delivered with


class SmokeFailure(AssertionError):
    """The server broke the protocol; the message says how."""


def write_groups(path: Path, groups: dict[str, list[int]]) -> Path:
    """The bare protocol's groups file: conversation id -> member user numbers."""
    path.write_text(json.dumps(groups))
    return path


def group_of(groups: dict[str, list[int]]) -> dict[int, str]:
    """User -> its one group (the smoke's groups do not overlap)."""
    return {user: group for group, members in groups.items() for user in members}


async def open_socket(port: int, user: int) -> ClientConnection:
    return await connect(
        f"ws://127.0.0.1:{port}/ws?user={user}", compression=None, max_size=FRAME_MAX
    )


def decode(raw: str | bytes, ids: MessageIds | None = None) -> Delivery:
    """What a frame delivers; with `ids`, also checks its layout and notes its message id."""
    frame = json.loads(raw)
    delivery = frame["conversation_id"], frame["sender_id"], frame["content"]
    if ids is not None:
        if list(frame) != OUTBOUND_KEYS or frame["type"] != "text":
            raise SmokeFailure(f"frame is not the bare server's layout: {raw!r}")
        ids.setdefault(delivery, set()).add(frame["id"])
    return delivery


async def receive_count(
    socket: ClientConnection, done: Counter[Delivery], count: int, ids: MessageIds, deadline: float
) -> None:
    """Count frames into `done` until it holds `count` of them."""
    while done.total() < count:
        try:
            raw = await asyncio.wait_for(socket.recv(), deadline - time.monotonic())
        except TimeoutError:
            raise SmokeFailure(f"{done.total()} of {count} frames arrived: {dict(done)}") from None
        done[decode(raw, ids)] += 1


async def receive_until(
    socket: ClientConnection,
    done: Counter[Delivery],
    stop: Delivery,
    ids: MessageIds,
    deadline: float,
) -> None:
    """Count frames into `done` until `stop` arrives."""
    while True:
        try:
            raw = await asyncio.wait_for(socket.recv(), deadline - time.monotonic())
        except TimeoutError:
            raise SmokeFailure(f"{stop} did not arrive; got {dict(done)}") from None
        delivery = decode(raw, ids)
        if delivery == stop:
            return
        done[delivery] += 1


async def check_protocol(port: int) -> int:
    """Every socket of every member gets each frame once, and nothing else; returns deliveries."""
    membership = group_of(CHECK_GROUPS)
    expected = {
        key: Counter(
            (membership[key[0]], member, f"{member}-{i}")
            for member in CHECK_GROUPS[membership[key[0]]]
            for i in range(CHECK_FRAMES_PER_USER)
        )
        for key in CHECK_SOCKETS
    }
    received = {key: Counter[Delivery]() for key in CHECK_SOCKETS}
    ids: MessageIds = {}
    await check_refused(port)
    sockets = {key: await open_socket(port, key[0]) for key in CHECK_SOCKETS}
    try:
        senders = {user: socket for (user, device), socket in sockets.items() if device == 0}
        for i in range(CHECK_FRAMES_PER_USER):
            for user, socket in senders.items():
                frame = {"conversation_id": membership[user], "content": f"{user}-{i}"}
                await socket.send(json.dumps(frame))
        deadline = time.monotonic() + CHECK_DEADLINE
        await asyncio.gather(
            *(
                receive_count(socket, received[key], expected[key].total(), ids, deadline)
                for key, socket in sockets.items()
            )
        )
        # Frames the bare server drops; user 1 then sends alpha's barrier on the same socket,
        # which shows the socket stayed open.
        for junk in DROPPED_FRAMES:
            await senders[1].send(junk)
        # One more frame per group, sent once every expected frame arrived: a duplicate or a
        # stray would be queued ahead of it, so reading up to it needs no sleep.
        barriers = {group: (group, members[0], BARRIER) for group, members in CHECK_GROUPS.items()}
        for group, (_, sender, content) in barriers.items():
            await senders[sender].send(json.dumps({"conversation_id": group, "content": content}))
        await asyncio.gather(
            *(
                receive_until(socket, received[key], barriers[membership[key[0]]], ids, deadline)
                for key, socket in sockets.items()
            )
        )
    finally:
        await asyncio.gather(*(socket.close() for socket in sockets.values()))
    for (user, device), got in received.items():
        if got != expected[(user, device)]:
            missing, extra = expected[(user, device)] - got, got - expected[(user, device)]
            raise SmokeFailure(
                f"user {user} device {device}: missing {dict(missing)}, extra {dict(extra)}"
            )
    reused = {message: seen for message, seen in ids.items() if len(seen) != 1}
    if reused or len(set().union(*ids.values())) != len(ids):
        raise SmokeFailure(f"message ids are not one per message: {ids}")
    return sum(got.total() for got in received.values()) + len(sockets)


async def check_refused(port: int) -> None:
    for query in REFUSED_QUERIES:
        try:
            socket = await connect(f"ws://127.0.0.1:{port}/ws{query}")
        except InvalidStatus as exc:
            if exc.response.status_code != 403:
                raise SmokeFailure(f"/ws{query}: {exc.response.status_code}, not 403") from exc
        else:
            await socket.close()
            raise SmokeFailure(f"/ws{query} was accepted")


@dataclass
class ProbeTally:
    received: Counter[Receipt] = field(default_factory=Counter)
    latencies_ms: list[float] = field(default_factory=list)
    last_delivery: float = 0.0
    echoes_lost: int = 0


async def probe_socket(
    socket: ClientConnection,
    user: int,
    group: str,
    messages: int,
    expected: int,
    tally: ProbeTally,
    deadline: float,
) -> None:
    """Send `messages` frames closed-loop, then read until `expected` frames or a quiet spell."""
    got = 0
    sent_all = 0.0
    for seq in range(messages + 1):
        if seq < messages:
            content = f"{seq}:{time.perf_counter_ns()}"
            await socket.send(json.dumps({"conversation_id": group, "content": content}))
            own: Delivery | None = (group, user, content)
            wait_until = min(deadline, time.monotonic() + ECHO_TIMEOUT)
        else:
            own, wait_until, sent_all = None, deadline, time.monotonic()
        while got < expected:
            if own is None:
                # Sending is over: what has not come within QUIET of the last delivery is lost.
                wait_until = min(deadline, max(tally.last_delivery, sent_all) + QUIET)
            remaining = wait_until - time.monotonic()
            if remaining <= 0:
                if own is not None:
                    tally.echoes_lost += 1
                break
            try:
                raw = await asyncio.wait_for(socket.recv(), remaining)
            except TimeoutError:
                continue
            now = time.perf_counter_ns()
            delivery = decode(raw)
            got += 1
            tally.received[(user, delivery)] += 1
            tally.latencies_ms.append((now - int(delivery[2].split(":")[1])) / 1e6)
            tally.last_delivery = time.monotonic()
            if delivery == own:
                break


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def probe(
    port: int, server_pid: int, groups: dict[str, list[int]], messages_per_user: int
) -> dict[str, object]:
    membership = group_of(groups)
    sockets = {user: await open_socket(port, user) for user in membership}
    tally = ProbeTally()
    try:
        cpu_before, client_cpu_before = cpu_seconds(server_pid), time.process_time()
        start = time.monotonic()
        deadline = start + PROBE_DEADLINE
        await asyncio.gather(
            *(
                probe_socket(
                    socket,
                    user,
                    membership[user],
                    messages_per_user,
                    messages_per_user * len(groups[membership[user]]),
                    tally,
                    deadline,
                )
                for user, socket in sockets.items()
            )
        )
        cpu = cpu_seconds(server_pid) - cpu_before
        client_cpu = time.process_time() - client_cpu_before
    finally:
        await asyncio.gather(*(socket.close() for socket in sockets.values()))
    expected = messages_per_user * sum(len(members) ** 2 for members in groups.values())
    unique = len(tally.received)
    elapsed = max(tally.last_delivery - start, 1e-9)
    return {
        "messages": messages_per_user * len(membership),
        "deliveries": unique,
        "deliveries_per_s": round(unique / elapsed),
        "seconds": round(elapsed, 2),
        "loss": expected - unique,
        "duplicates": tally.received.total() - unique,
        "echoes_timed_out": tally.echoes_lost,
        "server_cpu_us_per_delivery": round(cpu * 1e6 / max(unique, 1), 1),
        "server_cpu_s": round(cpu, 2),
        "client_cpu_s": round(client_cpu, 2),
        "latency": latency_summary(tally.latencies_ms),
    }


def wait_healthy(port: int, server: Process) -> None:
    deadline = time.monotonic() + START_DEADLINE
    while time.monotonic() < deadline:
        if server.popen.poll() is not None:
            raise SmokeFailure(f"server exited:\n{server.tail()}")
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"http://127.0.0.1:{port}/health").status_code == 200:
                return
        time.sleep(0.1)
    raise SmokeFailure(f"server not healthy within {START_DEADLINE:.0f}s:\n{server.tail()}")


@contextlib.contextmanager
def serving(
    root: Path, groups_file: Path, redis_url: str, layer: str, cpu: int | None
) -> Iterator[tuple[int, int]]:
    """The baseline on a free port, on a flushed Redis, as (port, pid); stopped on exit."""
    with redis.Redis.from_url(redis_url) as client:
        client.flushall()  # nothing of the previous target leaks in
    argv, env = launch.command(free_port(), groups_file, redis_url, layer)
    port = int(env["BENCH_PORT"])
    server = Process(argv, env, root / f"channels-{layer}-{port}.log", cpu)
    try:
        wait_healthy(port, server)
        yield port, server.pid
    except BaseException:
        sys.stderr.write(f"{layer} server log:\n{server.tail()}\n")
        raise
    finally:
        server.stop()


def out(line: str = "") -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def run(layers: list[str], probe_groups_count: int, probe_messages: int) -> int:
    launch.install()
    root = Path(tempfile.mkdtemp(prefix="channels-smoke-"))
    redis_server = RedisServer(root, free_port())
    probe_groups = {
        f"g{g}": [g * PROBE_GROUP_SIZE + i + 1 for i in range(PROBE_GROUP_SIZE)]
        for g in range(probe_groups_count)
    }
    per_user = max(1, probe_messages // (probe_groups_count * PROBE_GROUP_SIZE))
    failed = False
    try:
        redis_server.start()
        cpu = None
        if can_pin():
            # After Redis started, which keeps both CPUs: server on one, clients on the other.
            cpu = SERVER_CPU
            os.sched_setaffinity(0, {LOAD_CPU})
        check_file = write_groups(root / "check.json", CHECK_GROUPS)
        probe_file = write_groups(root / "probe.json", probe_groups)
        frames = per_user * len(group_of(probe_groups)) if probe_messages > 0 else 0
        out(f"pinned: {cpu is not None}; probe: {frames} frames")
        for layer in layers:
            with serving(root, check_file, redis_server.url, layer, cpu) as (port, _):
                try:
                    deliveries = uvloop.run(check_protocol(port))
                except SmokeFailure as exc:
                    failed = True
                    out(f"{layer:7} protocol check FAILED: {exc}")
                    continue
                out(f"{layer:7} protocol check ok ({deliveries} deliveries, each exactly once)")
            if probe_messages <= 0:
                continue
            with serving(root, probe_file, redis_server.url, layer, cpu) as (port, pid):
                figures = uvloop.run(probe(port, pid, probe_groups, per_user))
            out(f"{layer:7} probe {json.dumps(figures)}")
    finally:
        redis_server.stop()
        shutil.rmtree(root, ignore_errors=True)
    return 1 if failed else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layer", choices=launch.LAYERS, action="append")
    parser.add_argument(
        "--probe-groups", type=int, default=10, help=f"groups of {PROBE_GROUP_SIZE} in the probe"
    )
    parser.add_argument(
        "--probe-messages", type=int, default=5000, help="frames in the probe; 0 skips it"
    )
    args = parser.parse_args()
    # SIGTERM becomes SystemExit so the servers and Redis are still stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    return run(args.layer or list(launch.LAYERS), args.probe_groups, args.probe_messages)


if __name__ == "__main__":
    raise SystemExit(main())
