"""Fan-out (issue 4, scenario 1): 1,000 users in 100 groups of 10, 2 senders per group, one
socket each; open loop at 1,000 and 3,000 messages/s, then closed loop for saturation.

`python -m bench.fanout [--seconds 10] [--targets bare,gochat] [--attach NAME=URL@PID]`
from the repo root: starts a throwaway PostgreSQL and Redis, each server on CPU 0 in turn
(this generator on CPU 1), prints a table, appends one JSON line per (target, phase) to
bench/results/fanout.jsonl. Deliveries count every member's copy, the sender's own included;
latency is send-to-receipt on one clock (both ends are this process). Each phase runs on a
server process started for it, with Redis flushed and the sockets connected anew, so that
the backlog of an overloaded phase cannot spill into the next. A server to attach is
started by hand with BENCH_GROUPS_FILE naming the file that `--write-groups PATH` writes;
it is kept across phases, each starting once it has sent nothing for a while.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import resource
import sys
from collections.abc import Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvloop

from bench.channels_baseline.launch import install as install_channels
from bench.loadgen import Load, Tally
from bench.persist_lag import PersistLag
from bench.procstat import CpuMeter, CpuSpan, finish_profile, peak_rss_mib, start_profile
from bench.results import latency_summary, record
from bench.stack import BenchStack, bench_stack
from bench.targets import (
    BARE_PROTOCOL_SERVERS,
    Layout,
    Target,
    attach,
    start_bare_protocol,
    start_gochat,
)

LAYOUT = Layout(users=1000, group_size=10, senders=2)
BASELINE = "bare"
# (name, offered messages/s or None for closed loop)
PHASES: list[tuple[str, float | None]] = [("open-1k", 1e3), ("open-3k", 3e3), ("closed", None)]
SATURATED_PCT = 90.0  # generator CPU past this: figures may be the generator's, not the server's
COUNTED = "every member's socket, the sender's own copy included"
# What keeps one phase's backlog out of the next; said in every JSON line and the table.
ISOLATION = "fresh server process, Redis flushed, sockets reconnected"
ATTACHED_ISOLATION = "same server (attached), sockets reconnected once it went quiet"
SETTLE_QUIET = 0.5  # no frame for this long: an attached server has worked off the last phase
SETTLE_TIMEOUT = 10.0  # bounded, so that a collapsed server cannot stretch the run
PROFILER_EXIT = 30.0  # py-spy writes its output after sampling; a big profile takes a while


@dataclass
class Options:
    seconds: float
    warmup: float
    drain: float
    profile: Path | None  # a folder for py-spy profiles of the closed-loop window


def phase_figures(
    target: Target, tally: Tally, cpu: dict[str, CpuSpan], offered: float | None, disconnects: int
) -> dict[str, Any]:
    window = cpu["generator"].wall_s
    server = cpu["server"]
    # None, not NaN, for a phase without deliveries: it is written to JSON as null.
    per_delivery = {
        f"{name}_cpu_us_per_delivery": round(span.cpu_s * 1e6 / tally.in_window, 2)
        if tally.in_window
        else None
        for name, span in cpu.items()
    }
    population = target.population
    return {
        "target": target.name,
        "users": len(population.urls),
        "groups": len(population.groups),
        "senders": sum(len(g.senders) for g in population.groups),
        "offered_per_s": offered,
        "seconds": round(window, 3),
        "sent": tally.sent,
        "sent_per_s": round(tally.sent / window, 1),
        "acked": tally.acked if population.acks else None,
        "errors": tally.errors,
        "first_error": tally.first_error.decode(errors="replace")[:200] or None,
        "expected_deliveries": tally.expected,
        "delivered": tally.received,
        "deliveries_per_s": round(tally.in_window / window, 1),
        "deliveries_counted": COUNTED,
        "latency": latency_summary([ns / 1e6 for ns in tally.latencies_ns]),
        "loss": tally.expected - tally.received,
        "duplicates": tally.duplicates,
        "closed_by_server": disconnects,
        **per_delivery,
        "server_cpu_pct": round(server.percent, 1),
        "server_peak_rss_mib": round(peak_rss_mib(target.pid), 1),
        "generator_cpu_pct": round(cpu["generator"].percent, 1),
        "generator_saturated": cpu["generator"].percent >= SATURATED_PCT,
        "generator_max_tick_gap_ms": round(tally.max_tick_gap_ms, 2) if offered else None,
    }


async def run_phase(
    target: Target, phase: str, rate: float | None, options: Options
) -> dict[str, Any]:
    """One phase on sockets connected for it alone."""
    load = Load(target.population)
    await load.connect()
    meter = CpuMeter({"server": target.pid, **target.helpers})
    lag = PersistLag(target.redis_url) if target.redis_url else None
    try:
        load.start(rate)
        await asyncio.sleep(options.warmup)
        tally = load.measure()
        closed_before = load.closed_by_server
        meter.start()
        if lag is not None:
            lag.start()
        profiler = None
        if options.profile is not None and rate is None:
            out = options.profile / f"fanout-{target.name}-{phase}.txt"
            profiler = start_profile(target.pid, options.seconds, out)
        await asyncio.sleep(options.seconds)
        await load.stop()
        cpu = meter.stop()
        if lag is not None:
            lag.load_stopped()
        await load.drain(options.drain)
        figures = phase_figures(target, tally, cpu, rate, load.closed_by_server - closed_before)
        if lag is not None:
            figures.update(await lag.stop())
        if profiler is not None:
            await asyncio.to_thread(finish_profile, profiler, PROFILER_EXIT)
        if target.process is None:
            # A server started by hand cannot be restarted: what it still sends is let in
            # here, outside every figure, before the next phase's sockets connect.
            figures["settle_s"] = round(await load.settle(SETTLE_QUIET, SETTLE_TIMEOUT), 2)
        figures["isolation"] = ISOLATION if target.process is not None else ATTACHED_ISOLATION
    finally:
        await load.close()
    _progress(f"  {target.name} {phase}: {figures['deliveries_per_s']:,.0f}/s")
    return figures


def run_started(bench: BenchStack, name: str, options: Options) -> dict[str, dict[str, Any]]:
    """Each phase on a server process started for it, Redis emptied first: the backlog an
    overloaded phase leaves, in the server or in Redis, dies with it and cannot swamp the
    next phase."""
    results: dict[str, dict[str, Any]] = {}
    target: Target | None = None
    for phase, rate in PHASES:
        bench.flush_redis()
        target = _start(bench, name, target)
        try:
            results[phase] = _run(run_phase(target, phase, rate, options))
        finally:
            assert target.process is not None
            target.process.stop()  # frees the server CPU for the next phase or target
            if target.worker is not None:
                target.worker.stop()
    return results


def run_attached(target: Target, options: Options) -> dict[str, dict[str, Any]]:
    return {phase: _run(run_phase(target, phase, rate, options)) for phase, rate in PHASES}


def _run(phase: Coroutine[Any, Any, dict[str, Any]]) -> dict[str, Any]:
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(phase)


# (column, width, format, where it is in a phase's figures); the ratio row reuses the paths.
COLUMNS: list[tuple[str, int, str, tuple[str, ...]]] = [
    ("sent", 8, "d", ("sent",)),
    ("refused", 8, "d", ("errors",)),
    ("deliv/s", 10, ",.0f", ("deliveries_per_s",)),
    ("p50", 9, ".2f", ("latency", "p50_ms")),
    ("p90", 9, ".2f", ("latency", "p90_ms")),
    ("p99", 9, ".2f", ("latency", "p99_ms")),
    ("max", 10, ".2f", ("latency", "max_ms")),
    ("loss", 9, "d", ("loss",)),
    ("dups", 6, "d", ("duplicates",)),
    ("µs/dlv", 9, ".2f", ("server_cpu_us_per_delivery",)),
    ("RSS MiB", 9, ".1f", ("server_peak_rss_mib",)),
    ("gen %", 7, ".0f", ("generator_cpu_pct",)),
    ("backlog", 9, "d", ("persist_backlog_max",)),
    ("catch-up", 10, ".2f", ("persist_catch_up_s",)),
]
RATIOS = ["deliv/s", "p50", "p90", "p99", "max", "loss", "dups", "µs/dlv", "RSS MiB"]


def _get(figures: dict[str, Any], path: tuple[str, ...]) -> Any:
    """The figure at `path`; None where this target has none (a server without a worker)."""
    value: Any = figures
    for key in path:
        value = value.get(key)
        if value is None:
            return None
    return value


def with_ratios(results: dict[str, dict[str, dict[str, Any]]]) -> None:
    """Each target's figures as a multiple of the bare bound's, phase by phase (None where
    the bound's figure is 0, as loss and duplicates should be)."""
    bare = results.get(BASELINE)
    if bare is None:
        return
    for name, phases in results.items():
        for phase, figures in phases.items():
            if name == BASELINE or phase not in bare:
                continue
            figures["vs_bare"] = {
                "_".join(path): _ratio(_get(figures, path), _get(bare[phase], path))
                for column, _, _, path in COLUMNS
                if column in RATIOS
            }


def _ratio(value: float | None, base: float | None) -> float | None:
    if value is None or not base or math.isnan(base) or math.isnan(value):
        return None
    return round(value / base, 3)


def table(
    results: dict[str, dict[str, dict[str, Any]]], pinned: bool, title: str | None = None
) -> str:
    """`title`: what the population was; by default this scenario's."""
    where = "server on CPU 0, generator on CPU 1" if pinned else "unpinned"
    title = title or f"fan-out: {LAYOUT.users} users, groups of {LAYOUT.group_size}"
    isolations = sorted({f["isolation"] for phases in results.values() for f in phases.values()})
    n = max([10, *(len(name) + 1 for name in results)])  # "channels-pubsub" and its gap
    lines = [
        f"{title}, {where}",
        f"each phase: {'; '.join(isolations)}",
        f"{'target':<{n}}{'phase':<9}" + "".join(f"{c:>{w}}" for c, w, _, _ in COLUMNS),
    ]
    for name, phases in results.items():
        for phase, figures in phases.items():
            cells = (_cell(_get(figures, path), w, fmt) for _, w, fmt, path in COLUMNS)
            lines.append(f"{name:<{n}}{phase:<9}" + "".join(cells))
            if ratios := figures.get("vs_bare"):
                cells = (
                    f"{_ratio_cell(ratios['_'.join(path)]):>{w}}" if c in RATIOS else " " * w
                    for c, w, _, path in COLUMNS
                )
                lines.append((f"{'':<{n}}{'× bare':<9}" + "".join(cells)).rstrip())
    lines.append(
        "ms: end-to-end latency; refused: error frames; µs/dlv: server CPU per delivery; "
        "gen %: generator CPU; backlog: most messages sent and not yet persisted by the "
        "worker; catch-up: seconds it took to persist the rest after the load stopped; "
        "× bare: this figure over the bare bound's"
    )
    return "\n".join(lines) + "\n"


def _cell(value: float | None, width: int, fmt: str) -> str:
    """A figure in its column; "-" where there is none (no deliveries, no samples)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return f"{'-':>{width}}"
    return f"{value:>{width}{fmt}}"


def _ratio_cell(ratio: float | None) -> str:
    return "-" if ratio is None else f"{ratio:.2f}"


def _progress(text: str) -> None:
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


def _start(bench: BenchStack, name: str, previous: Target | None) -> Target:
    _progress(f"starting {name}")
    return (
        start_gochat(bench, LAYOUT, previous)
        if name == "gochat"
        else start_bare_protocol(bench, name, LAYOUT)
    )


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.fanout", description=__doc__)
    parser.add_argument("--seconds", type=float, default=10.0, help="measured window per phase")
    parser.add_argument("--warmup", type=float, default=2.0, help="load before each window")
    parser.add_argument("--drain", type=float, default=2.0, help="wait for late deliveries")
    known = ", ".join(["gochat", *BARE_PROTOCOL_SERVERS])
    parser.add_argument("--targets", default="bare,gochat", help=f"comma-separated: {known}")
    parser.add_argument("--attach", action="append", default=[], help="NAME=ws://…/ws@PID")
    parser.add_argument("--write-groups", metavar="PATH", help="write the groups file and exit")
    parser.add_argument(
        "--profile", metavar="DIR", type=Path, help="py-spy each server in the closed loop"
    )
    args = parser.parse_args(argv)
    if args.write_groups:
        LAYOUT.write(Path(args.write_groups))  # for a server to be --attach'ed
        return 0
    options = Options(args.seconds, args.warmup, args.drain, args.profile)
    if options.profile is not None:
        options.profile.mkdir(parents=True, exist_ok=True)
    names = [n for n in args.targets.split(",") if n]
    if unknown := [n for n in names if n != "gochat" and n not in BARE_PROTOCOL_SERVERS]:
        parser.error(f"unknown targets {unknown}; known: {known}")
    if any(n.startswith("channels-") for n in names):
        install_channels()  # its own venv, created on first use
    # 1,000 sockets on each side; children (the servers) inherit the raised limit.
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    results: dict[str, dict[str, dict[str, Any]]] = {}
    with bench_stack() as bench:
        pinned = bench.pinned
        for spec in args.attach:
            target = attach(spec, LAYOUT)
            results[target.name] = run_attached(target, options)
        for name in names:
            results[name] = run_started(bench, name, options)
    with_ratios(results)
    for phases in results.values():
        for phase, figures in phases.items():
            record("fanout", {"phase": phase, "pinned": pinned, **figures})
    sys.stdout.write(table(results, pinned))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
