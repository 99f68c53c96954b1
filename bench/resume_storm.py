"""Resume storm (issue 12): 1,000 clients reconnecting at once, each having missed 100
messages, while the conversations keep getting new ones; beside the same 1,000 reconnecting
without a resume (the handshakes alone), in the same run.

1,000 users in 100 groups of 10. Each group holds `BEFORE` messages the clients have seen
and `MISSED` they have not. In the storm, every client opens its socket with `?resume=1`
(all at once, `CONNECT_CONCURRENCY` handshakes in flight, as the fan-out opens its sockets)
and sends `{"event": "resume", "positions": {group: BEFORE}}` as its first frame, while
`LIVE_RATE` new messages a second go to the groups in turn over REST. A client is caught up
when its `resumed` frame arrives. Once all are and the live sends have stopped, every
client must hold each of its group's seqs after `BEFORE` exactly once, in order: holes and
duplicates are counted, not assumed. The baseline opens the same 1,000 sockets without
resuming, and counts them open.

Figures: seconds until every client is caught up (until every socket is open, for the
baseline), per-client time from its handshake's start to `resumed` (p50/p99), the server's
CPU seconds over the phase, holes, duplicates and out-of-order frames.

`python -m bench.resume_storm` from the repo root: a throwaway PostgreSQL and Redis, the API
server on CPU 0 and the worker and this generator on CPU 1; prints a table and appends one
JSON line to bench/results/resume_storm.jsonl.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import resource
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect

from bench import accounts
from bench.loadgen import CONNECT_CONCURRENCY, HANDSHAKE_TIMEOUT
from bench.procstat import cpu_seconds
from bench.results import latency_summary, record
from bench.stack import LOAD_CPU, BenchStack, bench_stack
from bench.targets import SETUP_CONCURRENCY, SETUP_TIMEOUT

CLIENTS = 1_000
GROUP_SIZE = 10
BEFORE = 10  # messages of each group every client holds already
MISSED = 100  # messages of each group sent while the clients were away
LIVE_RATE = 200.0  # new messages a second during the storm, all groups in turn
CATCH_UP_TIMEOUT = 120.0  # past this the storm has failed, not slowed
SETTLE_TIMEOUT = 30.0  # after the live sends stop, for their last frames to arrive


@dataclass
class Client:
    """One device: the seqs it received of its group, in arrival order, and its timings."""

    user: int
    group: str
    token: str
    seqs: list[int] = field(default_factory=list)
    started: float = 0.0
    caught_up: float | None = None


async def setup(bench: BenchStack, base_url: str) -> list[Client]:
    ids = await accounts.insert_users(bench.database_url, "storm", CLIENTS)
    tokens = accounts.access_tokens(ids)
    gate = asyncio.Semaphore(SETUP_CONCURRENCY)
    async with httpx.AsyncClient(base_url=base_url, timeout=SETUP_TIMEOUT) as http:

        async def group_of(first: int) -> str:
            members = [str(ids[n]) for n in range(first + 1, first + GROUP_SIZE)]
            async with gate:
                response = await http.post(
                    "/api/v1/conversations",
                    json={"name": f"storm {first}", "participant_ids": members},
                    headers={"Authorization": f"Bearer {tokens[first]}"},
                )
            response.raise_for_status()
            return str(response.json()["conversation"]["id"])

        firsts = range(0, CLIENTS, GROUP_SIZE)
        groups = await asyncio.gather(*(group_of(first) for first in firsts))
        owners = {group: tokens[first] for group, first in zip(groups, firsts, strict=True)}
        for _ in range(BEFORE + MISSED):
            await asyncio.gather(*(post(http, gate, owners[g], g) for g in groups))
    return [Client(n, groups[n // GROUP_SIZE], tokens[n]) for n in range(CLIENTS)]


async def post(http: httpx.AsyncClient, gate: asyncio.Semaphore, token: str, group: str) -> int:
    async with gate:
        response = await http.post(
            f"/api/v1/conversations/{group}/messages",
            json={"content": "storm"},
            headers={"Authorization": f"Bearer {token}"},
        )
    response.raise_for_status()
    return int(response.json()["seq"])


async def live(base_url: str, owners: dict[str, str], stop: asyncio.Event) -> dict[str, int]:
    """New messages at LIVE_RATE until `stop`; each group's last seq."""
    gate = asyncio.Semaphore(SETUP_CONCURRENCY)
    sends: list[tuple[str, asyncio.Task[int]]] = []
    async with httpx.AsyncClient(base_url=base_url, timeout=SETUP_TIMEOUT) as http:
        started = time.monotonic()
        for n, group in enumerate(itertools.cycle(owners)):
            if stop.is_set():
                break
            await asyncio.sleep(max(0.0, started + n / LIVE_RATE - time.monotonic()))
            sends.append((group, asyncio.create_task(post(http, gate, owners[group], group))))
        await asyncio.gather(*(task for _, task in sends))
    last: dict[str, int] = {}
    for group, task in sends:
        last[group] = max(last.get(group, 0), task.result())
    return last


async def reconnect(
    client: Client, url: str, gate: asyncio.Semaphore, resume: bool, open_until: asyncio.Event
) -> None:
    async with gate:
        client.started = time.monotonic()
        socket = await connect(url, open_timeout=HANDSHAKE_TIMEOUT, max_queue=None)
    try:
        if not resume:
            client.caught_up = time.monotonic()
            await open_until.wait()
            return
        await socket.send(json.dumps({"event": "resume", "positions": {client.group: BEFORE}}))
        await read(client, socket, open_until)
    finally:
        await socket.close()


async def read(client: Client, socket: ClientConnection, open_until: asyncio.Event) -> None:
    reading = asyncio.create_task(_frames(client, socket))
    await open_until.wait()
    reading.cancel()


async def _frames(client: Client, socket: ClientConnection) -> None:
    async for data in socket:
        frame = json.loads(data)
        if "event" not in frame:
            client.seqs.append(frame["seq"])
        elif frame["event"] == "resumed":
            client.caught_up = time.monotonic()


def faults(clients: list[Client], last: dict[str, int]) -> dict[str, int]:
    holes = duplicates = disorder = 0
    for client in clients:
        expected = range(BEFORE + 1, last[client.group] + 1)
        seen = set(client.seqs)
        holes += sum(1 for seq in expected if seq not in seen)
        duplicates += len(client.seqs) - len(seen)
        disorder += sum(1 for a, b in itertools.pairwise(client.seqs) if b <= a)
    return {"holes": holes, "duplicates": duplicates, "out_of_order": disorder}


async def phase(
    base_url: str, server_pid: int, clients: list[Client], resume: bool
) -> dict[str, Any]:
    ws_base = base_url.replace("http://", "ws://", 1)
    query = "&resume=1&events=resume" if resume else "&events=resume"
    owners = {c.group: c.token for c in clients[::GROUP_SIZE]}
    open_until, stop = asyncio.Event(), asyncio.Event()
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)
    for client in clients:
        client.seqs, client.caught_up = [], None
    cpu_before = cpu_seconds(server_pid)
    started = time.monotonic()
    sending = asyncio.create_task(live(base_url, owners, stop)) if resume else None
    sockets = [
        asyncio.create_task(
            reconnect(c, f"{ws_base}/ws?token={c.token}{query}", gate, resume, open_until)
        )
        for c in clients
    ]
    deadline = started + CATCH_UP_TIMEOUT
    while any(c.caught_up is None for c in clients) and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    finished = max((c.caught_up or deadline) for c in clients)
    cpu = cpu_seconds(server_pid) - cpu_before
    figures: dict[str, Any] = {
        "resume": resume,
        "clients": len(clients),
        "caught_up": sum(c.caught_up is not None for c in clients),
        "seconds": round(finished - started, 3),
        "server_cpu_s": round(cpu, 3),
        "per_client": latency_summary(
            [(c.caught_up - c.started) * 1000 for c in clients if c.caught_up is not None]
        ),
    }
    if sending is not None:
        stop.set()
        last = await sending
        settle = time.monotonic() + SETTLE_TIMEOUT
        while time.monotonic() < settle and any(
            (c.seqs[-1] if c.seqs else 0) < last.get(c.group, BEFORE + MISSED) for c in clients
        ):
            await asyncio.sleep(0.05)
        for client in clients:
            last.setdefault(client.group, BEFORE + MISSED)
        figures.update(
            faults(clients, last), live_messages=sum(last.values()) - len(last) * (BEFORE + MISSED)
        )
    open_until.set()
    await asyncio.gather(*sockets, return_exceptions=True)
    return figures


def table(baseline: dict[str, Any], storm: dict[str, Any]) -> str:
    rows = [
        f"resume storm: {CLIENTS} clients in groups of {GROUP_SIZE}, {MISSED} missed each, "
        f"{LIVE_RATE:.0f} live messages/s during the storm",
        f"{'':10} {'caught up':>10} {'seconds':>8} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'CPU s':>7} {'holes':>6} {'dups':>5} {'disorder':>8}",
    ]
    for name, f in (("reconnect", baseline), ("resume", storm)):
        rows.append(
            f"{name:10} {f['caught_up']:>10} {f['seconds']:>8.2f} "
            f"{f['per_client']['p50_ms']:>8.1f} {f['per_client']['p99_ms']:>8.1f} "
            f"{f['server_cpu_s']:>7.2f} {f.get('holes', '-'):>6} {f.get('duplicates', '-'):>5} "
            f"{f.get('out_of_order', '-'):>8}"
        )
    ratio = storm["seconds"] / baseline["seconds"] if baseline["seconds"] else float("nan")
    rows.append(
        f"× reconnect: {ratio:.2f} in time, "
        f"{storm['server_cpu_s'] / max(baseline['server_cpu_s'], 1e-9):.2f} in server CPU"
    )
    return "\n".join(rows) + "\n"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.resume_storm", description=__doc__)
    parser.parse_args(argv)
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    with bench_stack() as bench:
        server, base_url = bench.start_server()
        bench.start_worker(cpu=LOAD_CPU)
        clients = asyncio.run(setup(bench, base_url))
        baseline = asyncio.run(phase(base_url, server.pid, clients, resume=False))
        storm = asyncio.run(phase(base_url, server.pid, clients, resume=True))
        pinned = bench.pinned
    record("resume_storm", {"pinned": pinned, "reconnect": baseline, "resume": storm})
    sys.stdout.write(table(baseline, storm))
    failed = storm["caught_up"] < CLIENTS or storm["holes"] or storm["duplicates"]
    return 1 if failed or storm["out_of_order"] else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
