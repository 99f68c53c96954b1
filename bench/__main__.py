"""`python -m bench` (`make bench`): every scenario of docs/BENCHMARKS.md, one after another,
each against its baselines in the same run. Results: bench/results/<scenario>.jsonl."""

from __future__ import annotations

import sys
from collections.abc import Callable

from bench import (
    big_group,
    connections,
    fanout,
    history,
    login_storm,
    media,
    message_search,
    persistence,
    presence_churn,
    resume_storm,
    user_search,
)

SCENARIOS: list[tuple[str, Callable[[list[str]], int], list[str]]] = [
    ("login storm", login_storm.main, ["--seconds", "10"]),
    ("connections", connections.main, ["--connections", "10000"]),
    (
        "fan-out",
        fanout.main,
        ["--targets", "bare-stock,bare,gochat,channels-redis,channels-pubsub"],
    ),
    ("big group", big_group.main, []),
    ("persistence", persistence.main, []),
    ("history", history.main, []),
    ("user search", user_search.main, []),
    ("message search", message_search.main, []),
    ("presence churn", presence_churn.main, []),
    ("resume storm", resume_storm.main, []),
    ("media", media.main, []),
]


def main(argv: list[str]) -> int:
    wanted = set(argv)
    failed = []
    for name, run, args in SCENARIOS:
        if wanted and name.replace(" ", "-") not in wanted:
            continue
        sys.stdout.write(f"\n=== {name} ===\n")
        sys.stdout.flush()
        if run(args) != 0:
            failed.append(name)
    if failed:
        sys.stderr.write(f"failed: {', '.join(failed)}\n")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
