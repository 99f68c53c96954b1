"""`python -m bench.traced MODULE [ARGS...]`: MODULE run as `python -m MODULE` would run it,
with tracemalloc recording where every live allocation came from. Each SIGUSR1 writes a
snapshot to the directory named by BENCH_TRACEMALLOC_DIR as `<pid>-<n>.snap` (written under
another name and renamed, so a reader never sees half a file).

bench.stack starts servers this way when BENCH_TRACEMALLOC_DIR is set, and bench.memory
compares two snapshots: what a server holds per connection, by source file.
"""

from __future__ import annotations

import itertools
import os
import runpy
import signal
import sys
import tracemalloc
from pathlib import Path
from types import FrameType

TRACE_VARIABLE = "BENCH_TRACEMALLOC_DIR"


def main(argv: list[str]) -> None:
    directory = Path(os.environ[TRACE_VARIABLE])
    numbers = itertools.count(1)

    def snapshot(signum: int, frame: FrameType | None) -> None:
        path = directory / f"{os.getpid()}-{next(numbers)}.snap"
        partial = path.with_suffix(".part")
        tracemalloc.take_snapshot().dump(str(partial))
        partial.replace(path)

    signal.signal(signal.SIGUSR1, snapshot)
    tracemalloc.start()
    sys.argv = argv
    runpy.run_module(argv[0], run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main(sys.argv[1:])
