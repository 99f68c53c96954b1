"""One statement's plan as the search benchmarks report it: EXPLAIN ANALYZE run several
times, the fastest execution (the cost without the shared machine's noise), the rows, the
buffers read and the indexes used (a sequential scan named as such)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

import asyncpg

PLAN_RUNS = 10  # EXPLAIN ANALYZE runs per statement; the fastest is the cost without the noise


def _indexes(node: dict[str, Any]) -> Iterator[str]:
    if "Index Name" in node:
        yield node["Index Name"]
    if node.get("Node Type") == "Seq Scan":
        yield f"SEQ SCAN {node.get('Relation Name')}"
    for child in node.get("Plans", []):
        yield from _indexes(child)


async def explain_analyze(
    conn: asyncpg.Connection, sql: str, args: Sequence[object]
) -> dict[str, Any]:
    runs = [
        json.loads(await conn.fetchval(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {sql}", *args))[0]
        for _ in range(PLAN_RUNS)
    ]
    return {
        "execution_ms": round(min(run["Execution Time"] for run in runs), 3),
        "rows": runs[-1]["Plan"]["Actual Rows"],
        "buffers": runs[-1]["Plan"]["Shared Hit Blocks"] + runs[-1]["Plan"]["Shared Read Blocks"],
        "indexes": sorted(set(_indexes(runs[-1]["Plan"]))),
    }
