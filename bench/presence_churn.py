"""Presence churn: users connecting and disconnecting over and over, each with 1,000
contacts, beside the same churn by users with none (the cost of a connect and a disconnect
without any presence fan-out), in the same run.

Every cycle of a churner opens a WebSocket (asking for presence, as a client showing who is
online does: it gets a `presence_list` on connect), holds it `HOLD` seconds and closes it:
its first socket coming up and its last going are two presence events, each announced to
its watchers. A churner's 1,000 contacts are `WATCHERS` users with a socket open (the
announcement is delivered to a socket) and the rest offline (one PUBLISH that reaches
nobody); one step closes the watchers' sockets first, so all 1,000 are offline, and one has
the churners ask for no presence (no `presence_list`), so that the list's cost is apart.

Each step runs open loop at a target rate of cycles per second for `STEP_SECONDS`, cycling
through the churners in turn (one is reused only after every other had a turn, so its
previous close has long been settled). Per step: cycles achieved per second; server and
Redis CPU seconds per presence event (the server's /proc CPU time, Redis's `INFO cpu`, from
the step's start until every watcher received every announcement, divided by twice the
cycles); and the time from a churner starting its handshake until a watcher receives its
`online` frame, and from its close frame until the `offline` one, read on `TIMED_WATCHERS`
of the watchers (every watcher counts what it receives).

`python -m bench.presence_churn` from the repo root: starts a throwaway PostgreSQL, Redis
and API server (CPU 0; this generator on CPU 1), writes the users and contacts straight into
PostgreSQL (bench/accounts.py), prints a table and appends one JSON line to
bench/results/presence_churn.jsonl.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import itertools
import sys
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import msgspec
from picows import WSCloseCode, WSError, WSFrame, WSListener, WSMsgType, WSTransport, ws_connect
from redis.asyncio import Redis

from bench import accounts
from bench.loadgen import CONNECT_CONCURRENCY, HANDSHAKE_TIMEOUT, close_all
from bench.procstat import cpu_seconds, finish_profile, start_profile
from bench.results import latency_summary, record
from bench.stack import bench_stack
from gochat_py.devstack.services import StackError

CHURNERS = 200
CONTACTS = 1_000  # of each churner
POOL = 2_000  # the users the churners' contacts are drawn from
WATCHERS = 200  # of each churner's contacts, online throughout (the same for every churner)
TIMED_WATCHERS = 20  # watchers that time what they receive; the others only count it
# Target cycles per second. With 1,000 contacts one server core runs out at about 5.
RATES = (2, 5, 20)
# The rate of the steps that take the watchers or the presence list away: one the server
# keeps up with, so that their CPU per event is not that of a backlog.
SPLIT_RATE = 2
STEP_SECONDS = 10.0
# A handshake waiting longer counts as an error: past this the server is only backlog.
CYCLE_HANDSHAKE_TIMEOUT = 10.0
HOLD = 0.1  # seconds a churner's socket stays open each cycle
SETTLE_TIMEOUT = 15.0  # after the last cycle, for announcements still on their way
# Between steps the server must fall quiet (under QUIET_CPU of a core over QUIET_WINDOW s),
# so that one step's stragglers are not the next one's CPU.
QUIET_CPU = 0.1
QUIET_WINDOW = 0.5
QUIET_TIMEOUT = 15.0
CLOSE_TIMEOUT = 10.0
PRESENCE_EVENT = b'"event":"presence"'


class PresenceFrame(msgspec.Struct):
    user_id: str
    status: str


_presence = msgspec.json.Decoder(PresenceFrame)


@dataclass
class Tally:
    """What the watchers saw during one step, and when each churner last opened and closed."""

    opened_at: dict[str, int] = field(default_factory=dict)  # churner id -> perf_counter_ns
    closed_at: dict[str, int] = field(default_factory=dict)
    online_ms: list[float] = field(default_factory=list)
    offline_ms: list[float] = field(default_factory=list)
    received: list[int] = field(default_factory=lambda: [0] * WATCHERS)


class Watcher(WSListener):
    """A contact's socket, open throughout: counts presence frames, and times them when timed."""

    def __init__(self, board: list[Tally], index: int) -> None:
        super().__init__()
        self.board = board  # board[0]: the step under way
        self.index = index
        self.timed = index < TIMED_WATCHERS

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type == WSMsgType.CLOSE:
            transport.send_close(frame.get_close_code())
            transport.disconnect()
            return
        if frame.msg_type != WSMsgType.TEXT:
            return
        payload = frame.get_payload_as_bytes()
        if PRESENCE_EVENT not in payload:
            return
        tally = self.board[0]
        tally.received[self.index] += 1
        if not self.timed:
            return
        now = time.perf_counter_ns()
        event = _presence.decode(payload)
        if event.status == "online":
            started = tally.opened_at.get(event.user_id)
            if started is not None:
                tally.online_ms.append((now - started) / 1e6)
        else:
            started = tally.closed_at.get(event.user_id)
            if started is not None:
                tally.offline_ms.append((now - started) / 1e6)


class Churner(WSListener):
    """A churner's socket: reads nothing, answers the server's closing handshake."""

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type == WSMsgType.CLOSE:
            transport.disconnect()


@dataclass(frozen=True)
class User:
    id: str
    url: str


@dataclass
class Cycles:
    completed: int = 0
    skipped: int = 0  # ticks that found every churner still busy: the server fell behind
    errors: list[str] = field(default_factory=list)
    handshake_ms: list[float] = field(default_factory=list)


async def cycle(user: User, tally: Tally, cycles: Cycles) -> None:
    started = time.perf_counter_ns()
    tally.opened_at[user.id] = started
    try:
        transport, _ = await ws_connect(
            Churner, user.url, websocket_handshake_timeout=CYCLE_HANDSHAKE_TIMEOUT
        )
    except (WSError, OSError, TimeoutError) as exc:
        cycles.errors.append(f"{type(exc).__name__}: {exc}"[:200])
        return
    cycles.handshake_ms.append((time.perf_counter_ns() - started) / 1e6)
    await asyncio.sleep(HOLD)
    tally.closed_at[user.id] = time.perf_counter_ns()
    transport.send_close(WSCloseCode.OK)
    try:
        await asyncio.wait_for(transport.wait_disconnected(), CLOSE_TIMEOUT)
    except TimeoutError:
        transport.disconnect(graceful=False)
    cycles.completed += 1


async def churn(users: list[User], rate: float, tally: Tally) -> Cycles:
    """Open loop: a cycle every 1/rate s for STEP_SECONDS, by the next churner not busy."""
    cycles = Cycles()
    free = deque(users)
    running: set[asyncio.Task[None]] = set()
    started = time.perf_counter()
    for n in itertools.count():
        due = started + n / rate
        if due - started >= STEP_SECONDS:
            break
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        if not free:
            cycles.skipped += 1
            continue
        user = free.popleft()
        task = asyncio.create_task(cycle(user, tally, cycles))
        running.add(task)
        task.add_done_callback(running.discard)
        task.add_done_callback(functools.partial(_release, free, user))
    if running:
        await asyncio.wait(set(running), timeout=CYCLE_HANDSHAKE_TIMEOUT + CLOSE_TIMEOUT)
    return cycles


def _release(free: deque[User], user: User, _: asyncio.Task[None]) -> None:
    free.append(user)


async def until_quiet(pid: int) -> None:
    deadline = time.monotonic() + QUIET_TIMEOUT
    while time.monotonic() < deadline:
        before = cpu_seconds(pid)
        await asyncio.sleep(QUIET_WINDOW)
        if cpu_seconds(pid) - before < QUIET_CPU * QUIET_WINDOW:
            return


async def redis_cpu(redis: Redis) -> float:
    info = await redis.info("cpu")
    return float(info["used_cpu_sys"]) + float(info["used_cpu_user"])


@dataclass
class Step:
    label: str
    users: list[User]
    rate: float
    watched: bool  # whether the live watchers are contacts of these churners and online


async def run_step(
    step: Step, board: list[Tally], server_pid: int, redis: Redis, profile: Path | None
) -> dict[str, Any]:
    tally = Tally()
    board[0] = tally
    cpu_before, redis_before = cpu_seconds(server_pid), await redis_cpu(redis)
    profiler = None
    if profile is not None:
        name = f"server-{step.label.replace(' ', '-').replace(',', '')}-{step.rate:g}.txt"
        profiler = start_profile(server_pid, STEP_SECONDS, profile / name)
    started = time.perf_counter()
    cycles = await churn(step.users, step.rate, tally)
    churned = time.perf_counter() - started
    if profiler is not None:
        finish_profile(profiler, SETTLE_TIMEOUT)
    events = 2 * cycles.completed
    # Every watcher must hear both events of every cycle; the CPU counts until they have.
    deadline = time.monotonic() + SETTLE_TIMEOUT
    while step.watched and min(tally.received) < events and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    settled = time.perf_counter() - started
    cpu = cpu_seconds(server_pid) - cpu_before
    redis_used = await redis_cpu(redis) - redis_before
    return {
        "step": step.label,
        "target_cycles_per_s": step.rate,
        "cycles": cycles.completed,
        "presence_events": events,
        "cycles_per_s": round(cycles.completed / churned, 1),
        "events_per_s": round(events / churned, 1),
        "skipped_ticks": cycles.skipped,
        "errors": len(cycles.errors),
        "first_error": cycles.errors[0] if cycles.errors else None,
        "seconds": round(settled, 2),
        "server_cpu_s": round(cpu, 3),
        "server_cpu_percent": round(100 * cpu / settled, 1),
        "server_cpu_ms_per_event": round(1000 * cpu / events, 3) if events else None,
        "redis_cpu_ms_per_event": round(1000 * redis_used / events, 3) if events else None,
        "watchers_online": WATCHERS if step.watched else 0,
        "frames_per_watcher_min": min(tally.received) if step.watched else None,
        "frames_expected_per_watcher": events if step.watched else None,
        "handshake": latency_summary(cycles.handshake_ms),
        "online_latency": latency_summary(tally.online_ms),
        "offline_latency": latency_summary(tally.offline_ms),
    }


async def insert_contacts(
    database_url: str, churners: list[uuid.UUID], pool: list[uuid.UUID]
) -> None:
    """Each churner befriends the first WATCHERS of the pool and CONTACTS - WATCHERS others,
    a window of the rest that moves with the churner; both directions, as an accept writes."""
    rest = pool[WATCHERS:]
    rows: list[tuple[uuid.UUID, uuid.UUID]] = []
    for i, churner in enumerate(churners):
        start = i * 9 % len(rest)
        window = (rest + rest)[start : start + CONTACTS - WATCHERS]
        for contact in pool[:WATCHERS] + window:
            rows += [(churner, contact), (contact, churner)]
    connection = await asyncpg.connect(database_url)
    try:
        await connection.copy_records_to_table(
            "contacts", records=rows, columns=["user_id", "contact_id"]
        )
        await connection.execute("ANALYZE contacts")
    finally:
        await connection.close()


def users(ids: list[uuid.UUID], ws_url: str, events: str) -> list[User]:
    tokens = accounts.access_tokens(ids)
    return [
        User(str(uid), f"{ws_url}/ws?token={token}&events={events}")
        for uid, token in zip(ids, tokens, strict=True)
    ]


async def open_watchers(watchers: list[User], board: list[Tally]) -> list[WSTransport]:
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)

    async def open_one(index: int) -> WSTransport:
        async with gate:
            transport, _ = await ws_connect(
                lambda: Watcher(board, index),
                watchers[index].url,
                websocket_handshake_timeout=HANDSHAKE_TIMEOUT,
            )
            return transport

    return list(await asyncio.gather(*(open_one(i) for i in range(len(watchers)))))


async def measure(
    base_url: str, database_url: str, redis_url: str, server_pid: int, profile: Path | None
) -> dict[str, Any]:
    setup_started = time.perf_counter()
    churner_ids = await accounts.insert_users(database_url, "churner", CHURNERS)
    lone_ids = await accounts.insert_users(database_url, "lone", CHURNERS)
    pool_ids = await accounts.insert_users(database_url, "contact", POOL)
    await insert_contacts(database_url, churner_ids, pool_ids)
    setup_s = time.perf_counter() - setup_started

    ws_url = base_url.replace("http://", "ws://", 1)
    churners = users(churner_ids, ws_url, "presence")
    listless = users(churner_ids, ws_url, "ack")  # the same churners, asking for no presence
    lone = users(lone_ids, ws_url, "presence")
    watchers = users(pool_ids[:WATCHERS], ws_url, "presence")

    board = [Tally()]
    redis = Redis.from_url(redis_url)
    steps: list[dict[str, Any]] = []
    try:
        transports = await open_watchers(watchers, board)
        plan = [Step("no contacts", lone, rate, watched=False) for rate in RATES]
        plan += [Step("1,000 contacts", churners, rate, watched=True) for rate in RATES]
        plan.append(Step("1,000 contacts, no presence list", listless, SPLIT_RATE, watched=True))
        for step in plan:
            await until_quiet(server_pid)
            steps.append(await run_step(step, board, server_pid, redis, profile))
            sys.stdout.write(_row(steps[-1]) + "\n")
            sys.stdout.flush()
        await close_all(transports, CLOSE_TIMEOUT)
        await until_quiet(server_pid)  # the watchers' own offline announcements
        offline = Step("1,000 contacts, all offline", churners, SPLIT_RATE, watched=False)
        steps.append(await run_step(offline, board, server_pid, redis, profile))
        sys.stdout.write(_row(steps[-1]) + "\n")
    finally:
        await redis.aclose()
    return {"setup_s": round(setup_s, 1), "steps": steps, "ratios": ratios(steps)}


def ratios(steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each step with contacts against the no-contacts step at the same target rate."""
    baseline = {s["target_cycles_per_s"]: s for s in steps if s["step"] == "no contacts"}
    out = []
    for step in steps:
        base = baseline.get(step["target_cycles_per_s"])
        if step["step"] == "no contacts" or base is None:
            continue
        out.append(
            {
                "step": step["step"],
                "target_cycles_per_s": step["target_cycles_per_s"],
                "server_cpu_per_event_vs_no_contacts": _ratio(
                    step["server_cpu_ms_per_event"], base["server_cpu_ms_per_event"]
                ),
                "redis_cpu_per_event_vs_no_contacts": _ratio(
                    step["redis_cpu_ms_per_event"], base["redis_cpu_ms_per_event"]
                ),
                "cycles_per_s_vs_no_contacts": _ratio(step["cycles_per_s"], base["cycles_per_s"]),
                "handshake_p50_vs_no_contacts": _ratio(
                    step["handshake"]["p50_ms"], base["handshake"]["p50_ms"]
                ),
            }
        )
    return out


def _ratio(value: float | None, base: float | None) -> float | None:
    return round(value / base, 2) if value is not None and base else None


def _row(step: dict[str, Any]) -> str:
    return (
        f"{step['step']:34}{step['target_cycles_per_s']:>6g}{step['cycles_per_s']:>8}"
        f"{step['server_cpu_percent']:>7}{_ms(step['server_cpu_ms_per_event']):>9}"
        f"{_ms(step['redis_cpu_ms_per_event']):>9}{step['handshake']['p50_ms']:>9.1f}"
        f"{step['online_latency']['p50_ms']:>9.1f}{step['online_latency']['p99_ms']:>9.1f}"
        f"{step['offline_latency']['p99_ms']:>9.1f}{step['errors']:>5}"
    )


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


HEADER = (
    f"{'step':34}{'target':>6}{'cyc/s':>8}{'cpu%':>7}{'srv ms/ev':>9}{'rds ms/ev':>9}"
    f"{'hs p50':>9}{'on p50':>9}{'on p99':>9}{'off p99':>9}{'err':>5}"
)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.presence_churn", description=__doc__)
    parser.add_argument(
        "--profile", metavar="DIR", type=Path, help="py-spy the server during every step into DIR"
    )
    profile: Path | None = parser.parse_args(argv).profile
    if profile is not None:
        profile.mkdir(parents=True, exist_ok=True)
    sys.stdout.write(
        f"presence churn: {CHURNERS} churners, {CONTACTS} contacts each ({WATCHERS} online), "
        f"{STEP_SECONDS:g} s a step, {HOLD * 1000:g} ms a socket\n{HEADER}\n"
    )
    try:
        with bench_stack() as bench:
            server, base_url = bench.start_server()
            pinned = bench.pinned
            result = asyncio.run(
                measure(base_url, bench.database_url, bench.redis_url, server.pid, profile)
            )
    except (StackError, RuntimeError, WSError, OSError, TimeoutError, asyncpg.PostgresError) as exc:
        sys.stderr.write(f"presence_churn: {exc!r}\n")
        return 1
    line = record(
        "presence_churn",
        {
            "churners": CHURNERS,
            "contacts_each": CONTACTS,
            "contact_pool": POOL,
            "watchers_online": WATCHERS,
            "timed_watchers": TIMED_WATCHERS,
            "step_seconds": STEP_SECONDS,
            "hold_s": HOLD,
            "pinned": pinned,
            **result,
        },
    )
    for ratio in result["ratios"]:
        sys.stdout.write(
            f"{ratio['step']} at {ratio['target_cycles_per_s']:g}/s vs no contacts: server CPU "
            f"per event {ratio['server_cpu_per_event_vs_no_contacts']}x, Redis CPU per event "
            f"{ratio['redis_cpu_per_event_vs_no_contacts']}x, cycles/s "
            f"{ratio['cycles_per_s_vs_no_contacts']}x\n"
        )
    sys.stdout.write(line + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
