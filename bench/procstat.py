"""What a process costs, read from /proc: CPU seconds used, resident memory now and at its
peak, and how many files it may open."""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")  # /proc/<pid>/stat counts CPU time in these


def cpu_seconds(pid: int) -> float:
    """utime + stime of `pid` (all its threads) so far."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    # The command name may contain spaces and parentheses: fields are counted after the last ")".
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # fields 14 and 15 of proc(5)


def peak_rss_mib(pid: int) -> float:
    """VmHWM: the highest resident set size `pid` has had since it started."""
    kib = _status_kib(pid, "VmHWM:")
    return float("nan") if kib is None else kib / 1024


def rss_kib(pid: int) -> int:
    """VmRSS: the resident set size of `pid` now."""
    kib = _status_kib(pid, "VmRSS:")
    if kib is None:
        raise RuntimeError(f"no VmRSS for pid {pid}: has it exited?")
    return kib


def _status_kib(pid: int, field: str) -> int | None:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(field):
                return int(line.split()[1])  # "VmRSS:     12345 kB"
    return None


def open_files_limit(pid: int) -> int:
    """The soft RLIMIT_NOFILE of `pid`: how many descriptors (sockets included) it may hold."""
    with open(f"/proc/{pid}/limits") as limits:
        for line in limits:
            if line.startswith("Max open files"):
                soft = line.split()[3]  # "Max open files  <soft>  <hard>  files"
                return resource.RLIM_INFINITY if soft == "unlimited" else int(soft)
    raise RuntimeError(f"no open-files limit for pid {pid}")


def own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@dataclass(frozen=True)
class CpuSpan:
    """CPU seconds a process used over a stretch of wall-clock time."""

    cpu_s: float
    wall_s: float

    @property
    def percent(self) -> float:
        return 100 * self.cpu_s / self.wall_s if self.wall_s > 0 else float("nan")


class CpuMeter:
    """Brackets a stretch of time: `start()`, then `stop()` gives each named process's CpuSpan,
    and this process's (the load generator) under "generator"."""

    def __init__(self, pids: dict[str, int]) -> None:
        self._pids = pids
        self._wall = 0.0
        self._before: dict[str, float] = {}

    def _read(self) -> dict[str, float]:
        now = {name: cpu_seconds(pid) for name, pid in self._pids.items()}
        now["generator"] = own_cpu_seconds()
        return now

    def start(self) -> None:
        self._before = self._read()
        self._wall = time.perf_counter()

    def stop(self) -> dict[str, CpuSpan]:
        wall = time.perf_counter() - self._wall
        after = self._read()
        return {name: CpuSpan(after[name] - self._before[name], wall) for name in after}


def start_profile(pid: int, seconds: float, out: Path) -> subprocess.Popen[bytes] | None:
    """py-spy sampling `pid` for `seconds` into collapsed stacks (flamegraph/speedscope read
    them); None when py-spy is not installed (it is a tool, not a dependency)."""
    beside_python = Path(sys.executable).parent / "py-spy"
    binary = str(beside_python) if beside_python.exists() else shutil.which("py-spy")
    if binary is None:
        return None
    argv = [binary, "record", "-p", str(pid), "-d", str(max(1, round(seconds)))]
    # --gil: only samples where a thread holds the GIL, i.e. where the server spends CPU, not
    # where it waits; --nonblocking: do not pause the server 200 times a second to read it.
    argv += ["-r", "200", "--gil", "--nonblocking", "-f", "raw", "-o", str(out)]
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def finish_profile(profiler: subprocess.Popen[bytes], timeout: float) -> None:
    """Let py-spy write its output; one that hangs past `timeout` is killed."""
    try:
        profiler.wait(timeout)
    except subprocess.TimeoutExpired:
        profiler.kill()
        profiler.wait()
