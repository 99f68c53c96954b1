"""Figures and where they go: percentiles, the machine, one JSON line per run."""

from __future__ import annotations

import json
import math
import os
import platform
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q / 100 * len(ordered))) - 1]


def latency_summary(ms: list[float]) -> dict[str, float]:
    return {
        "n": len(ms),
        "p50_ms": round(percentile(ms, 50), 3),
        "p90_ms": round(percentile(ms, 90), 3),
        "p99_ms": round(percentile(ms, 99), 3),
        "max_ms": round(max(ms, default=math.nan), 3),
    }


def machine() -> dict[str, Any]:
    return {
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
    }


def finite(value: Any) -> Any:
    """`value` with every NaN and infinity in it, however deep in dicts and lists, made None:
    JSON has no NaN, and a figure with nothing to divide by (no deliveries, no samples) is
    absent, not a number."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [finite(item) for item in value]
    return value


def record(scenario: str, figures: dict[str, Any]) -> str:
    """Append one JSON line for this run to bench/results/<scenario>.jsonl; return it."""
    line = json.dumps(
        finite(
            {
                "scenario": scenario,
                "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
                "machine": machine(),
                **figures,
            }
        ),
        allow_nan=False,  # a NaN that slipped through fails here, not in whoever reads the file
    )
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    with (RESULTS_DIR / f"{scenario}.jsonl").open("a") as out:
        out.write(line + "\n")
    return line
