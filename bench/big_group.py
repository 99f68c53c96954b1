"""Big group (issue 12): one group of 5,000 members, 1,000 of them online (one socket each),
2 senders; open loop at 10 and 20 messages/s (10,000 and 20,000 deliveries/s offered), then
closed loop for saturation. Beside the bare bound (bench/bare_server.py) delivering to the
same 1,000 sockets: it knows no offline members, which is the point, since a message's
cost should not grow with them. `gochat-named` is gochat-py with ENVELOPE_NAMED_MAX above
the group's size: every frame names all its members, as before big groups.

`python -m bench.big_group [--seconds 10] [--online 1000] [--members 5000]` from the repo
root: starts a throwaway PostgreSQL and Redis, each server on CPU 0 in turn (this generator
on CPU 1), prints a table, appends one JSON line per (target, phase) to
bench/results/big_group.jsonl. The measuring is bench/fanout.py's (deliveries count every
online member's copy, the sender's own included; a fresh server process per phase, Redis
flushed). The members are written into PostgreSQL (bench/accounts.py), the group is created
with one `POST /conversations` naming all of them; only the online members get tokens.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import sys
from dataclasses import replace
from typing import Any

import httpx
import uvloop
from redis.asyncio import Redis

from bench import accounts
from bench.fanout import Options, run_phase, table, with_ratios
from bench.loadgen import Group, Population
from bench.results import record
from bench.stack import LOAD_CPU, BenchStack, bench_stack
from bench.targets import CHEAP_ARGON2, LONG_TOKENS, Layout, Target, start_bare_protocol

MEMBERS = 5000
ONLINE = 1000
SENDERS = 2
# (name, offered messages/s or None for closed loop): each message is ONLINE deliveries.
PHASES: list[tuple[str, float | None]] = [("open-10", 10.0), ("open-20", 20.0), ("closed", None)]
# gochat-py as it runs (the routed envelope), and with the threshold raised past the group
# so that every frame names all 5,000 members: what the routed form saves.
GOCHAT = {"gochat": {}, "gochat-named": {"ENVELOPE_NAMED_MAX": "1000000"}}
SETUP_TIMEOUT = 120.0  # one request inserting 5,000 members, and its notifications


async def _populate(
    base_url: str, database_url: str, prefix: str, members: int, online: int
) -> Population:
    ids = await accounts.insert_users(database_url, prefix, members)
    tokens = accounts.access_tokens(ids[:online])
    async with httpx.AsyncClient(base_url=base_url, timeout=SETUP_TIMEOUT) as http:
        response = await http.post(
            "/api/v1/conversations",
            json={"name": "big group", "participant_ids": [str(u) for u in ids[1:]]},
            headers={"Authorization": f"Bearer {tokens[0]}"},
        )
    if response.status_code != 201:
        raise RuntimeError(f"POST /conversations: {response.status_code} {response.text[:200]}")
    conversation_id = response.json()["conversation"]["id"]
    ws_base = base_url.replace("http://", "ws://", 1)
    urls = [f"{ws_base}/ws?token={token}&events=ack,echo" for token in tokens]
    group = Group(conversation_id, tuple(range(online)), tuple(range(SENDERS)))
    return Population(urls=urls, groups=[group], acks=True)


def _start_gochat(
    bench: BenchStack, name: str, members: int, online: int, previous: Target | None
) -> Target:
    process, base_url = bench.start_server(**CHEAP_ARGON2, **LONG_TOKENS, **GOCHAT[name])
    worker = bench.start_worker(cpu=LOAD_CPU)
    if previous is None:
        # Each target its own accounts: the database outlives a target.
        prefix = name.replace("-", "_")
        population = asyncio.run(_populate(base_url, bench.database_url, prefix, members, online))
        redis_pid = asyncio.run(_redis_pid(bench.redis_url))
    else:
        ws_base = base_url.replace("http://", "ws://", 1)
        urls = [ws_base + url[url.index("/ws?") :] for url in previous.population.urls]
        population = replace(previous.population, urls=urls)
        redis_pid = previous.helpers["redis"]
    helpers = {"redis": redis_pid, "worker": worker.pid}
    return Target(name, process.pid, population, helpers, process, worker, bench.redis_url)


async def _redis_pid(redis_url: str) -> int:
    redis = Redis.from_url(redis_url)
    try:
        return int((await redis.info("server"))["process_id"])
    finally:
        await redis.aclose()


def _run_target(
    bench: BenchStack, name: str, members: int, online: int, options: Options
) -> dict[str, dict[str, Any]]:
    results: dict[str, dict[str, Any]] = {}
    target: Target | None = None
    for phase, rate in PHASES:
        bench.flush_redis()
        if name in GOCHAT:
            target = _start_gochat(bench, name, members, online, target)
        else:
            target = start_bare_protocol(bench, name, Layout(online, online, SENDERS))
        try:
            with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
                results[phase] = runner.run(run_phase(target, phase, rate, options))
            results[phase]["members"] = members if name in GOCHAT else online
        finally:
            assert target.process is not None
            target.process.stop()
            if target.worker is not None:
                target.worker.stop()
    return results


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.big_group", description=__doc__)
    parser.add_argument("--seconds", type=float, default=10.0, help="measured window per phase")
    parser.add_argument("--warmup", type=float, default=2.0, help="load before each window")
    parser.add_argument("--drain", type=float, default=3.0, help="wait for late deliveries")
    parser.add_argument("--members", type=int, default=MEMBERS, help="the group's members")
    parser.add_argument("--online", type=int, default=ONLINE, help="members with a socket")
    parser.add_argument(
        "--targets",
        default="bare,gochat,gochat-named",
        help="comma-separated: bare, gochat, gochat-named",
    )
    args = parser.parse_args(argv)
    options = Options(args.seconds, args.warmup, args.drain, None)
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    results: dict[str, dict[str, dict[str, Any]]] = {}
    with bench_stack() as bench:
        pinned = bench.pinned
        for name in (n for n in args.targets.split(",") if n):
            results[name] = _run_target(bench, name, args.members, args.online, options)
    with_ratios(results)
    for phases in results.values():
        for phase, figures in phases.items():
            record("big_group", {"phase": phase, "pinned": pinned, **figures})
    title = f"big group: {args.members} members, {args.online} online, {SENDERS} senders"
    sys.stdout.write(table(results, pinned, title))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
