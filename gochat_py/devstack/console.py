"""The runner's voice: one `[gochat dev] ...` line on stderr per event."""

from __future__ import annotations

import sys


def say(line: str) -> None:
    sys.stderr.write(f"[gochat dev] {line}\n")
    sys.stderr.flush()
