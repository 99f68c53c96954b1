"""Media (issue 13): how fast uploads are stored beside a plain copy of the same bytes on the
same disk, and whether uploads stall the event loop for messages.

Throughput: one 100 MiB upload, then 200 uploads of 1 MiB (4 in flight), each a raw body
(`POST /api/v1/media?name=…`) streamed from the generator, every file of distinct bytes (the
store keeps one blob per sha256: repeated bytes would skip its write). The server stages
each upload (fsync), hashes it, then the local store moves it into place (fsync of the file
and of its directory). The baseline, in the same run and on the same disk: `shutil.copyfile`
of the same bytes from a file to a file, then fsync, as the store makes an upload durable.

Round trip: a sender and a receiver (two users, one direct conversation, two sockets) while
the sender sends a small message every 20 ms (50/s, open loop); a message's round trip is
from the send to its arrival on the receiver's socket. First with nothing else on the
server, then while 20 clients (another process, so that their sending does not delay this
loop's reading) upload 4 MiB files back to back. Target: p99 under 50 ms with the uploads.

`python -m bench.media [--seconds 10]` from the repo root: a throwaway PostgreSQL, Redis,
API server (CPU 0) and worker; this generator on CPU 1. Prints a table and appends one JSON
line to bench/results/media.jsonl. Everything listens on 127.0.0.1 and stops by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import shutil
import sys
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
from websockets.asyncio.client import connect

from bench import accounts
from bench.procstat import finish_profile, start_profile
from bench.results import latency_summary, record
from bench.stack import LOAD_CPU, BenchStack, bench_stack
from bench.targets import LONG_TOKENS

MIB = 1024 * 1024
BIG_FILE = 100 * MIB
SMALL_FILE = MIB
SMALL_FILES = 200
SMALL_IN_FLIGHT = 4
UPLOADERS = 20
UPLOADER_FILE = 4 * MIB
CHUNK = 256 * 1024  # what the generator hands httpx at a time
RATE = 50.0  # messages per second, sender to receiver
TARGET_P99_MS = 50.0
# A PDF's first bytes: the server takes the type from them (random bytes are refused, 415).
PDF_HEAD = b"%PDF-1.4\n%"
UPLOAD_TIMEOUT = 120.0
PROFILER_EXIT = 30.0  # py-spy writes its output after sampling
UPLOADS_AROUND = 3.0  # seconds of uploading around the measured window, before and after
SERVER_SETTINGS = {
    "MEDIA_MAX_BYTES": str(2 * BIG_FILE),
    "MEDIA_QUOTA_BYTES": str(1 << 40),
    "MEDIA_UPLOAD_RATE": "1000000/1s",
}


def _body(seed: bytes, size: int) -> bytes:
    """`size` bytes of a PDF's head, a tag that makes them distinct, then random bytes."""
    head = PDF_HEAD + seed + b"\n"
    return head + os.urandom(size - len(head))


def _disk_copy_mb_s(folder: Path, bodies: list[bytes]) -> float:
    """MB/s of copying these files (written first, not timed) file to file, each fsynced."""
    sources = []
    for n, body in enumerate(bodies):
        path = folder / f"source-{n}"
        path.write_bytes(body)
        sources.append(path)
    started = time.perf_counter()
    for path in sources:
        target = path.with_name(path.name.replace("source", "copy"))
        shutil.copyfile(path, target)
        with target.open("rb+") as copied:
            os.fsync(copied.fileno())
        directory = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
    elapsed = time.perf_counter() - started
    for path in folder.iterdir():
        path.unlink()
    return sum(map(len, bodies)) / MIB / elapsed


async def _chunks(body: bytes) -> AsyncIterator[bytes]:
    view = memoryview(body)
    for start in range(0, len(body), CHUNK):
        yield bytes(view[start : start + CHUNK])


async def _upload(client: httpx.AsyncClient, token: str, body: bytes, name: str) -> None:
    response = await client.post(
        "/api/v1/media",
        params={"name": name},
        content=_chunks(body),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/pdf"},
        timeout=UPLOAD_TIMEOUT,
    )
    if response.status_code != 201:
        raise RuntimeError(f"upload: {response.status_code} {response.text[:200]}")


async def _upload_mb_s(base_url: str, token: str, bodies: list[bytes], in_flight: int) -> float:
    queue = list(enumerate(bodies))
    async with httpx.AsyncClient(base_url=base_url) as client:

        async def one_lane() -> None:
            while queue:
                n, body = queue.pop(0)
                await _upload(client, token, body, f"file-{n}.pdf")

        started = time.perf_counter()
        await asyncio.gather(*(one_lane() for _ in range(in_flight)))
        elapsed = time.perf_counter() - started
    return sum(map(len, bodies)) / MIB / elapsed


def _uploaders(base_url: str, tokens: list[str], seconds: float, out: Any) -> None:
    """In its own process: each token uploads 4 MiB files back to back for `seconds`;
    sends "started" as they begin, then how many files and bytes went through."""

    async def run() -> tuple[int, int]:
        block = os.urandom(UPLOADER_FILE)
        done = [0]
        deadline = time.monotonic() + seconds
        out.send("started")

        async def loop(client: httpx.AsyncClient, token: str) -> None:
            while time.monotonic() < deadline:
                # Distinct bytes each time, cheaply: a fresh head before the same block.
                tag = uuid.uuid4().hex.encode()
                body = PDF_HEAD + tag + b"\n" + block[len(PDF_HEAD) + len(tag) + 1 :]
                await _upload(client, token, body, "upload.pdf")
                done[0] += 1

        limits = httpx.Limits(max_connections=len(tokens))
        async with httpx.AsyncClient(base_url=base_url, limits=limits) as client:
            await asyncio.gather(*(loop(client, token) for token in tokens))
        return done[0], done[0] * UPLOADER_FILE

    out.send(asyncio.run(run()))


async def _round_trips(
    ws_base: str, sender: str, receiver: str, conversation_id: str, seconds: float
) -> tuple[list[float], int]:
    """Round trips (ms) of messages sent at RATE for `seconds`, and how many never came."""
    sent_at: dict[str, float] = {}
    rtts: list[float] = []
    async with (
        connect(f"{ws_base}/ws?token={sender}") as out,
        connect(f"{ws_base}/ws?token={receiver}") as inbox,
    ):

        async def read() -> None:
            async for raw in inbox:
                frame = json.loads(raw)
                started = sent_at.pop(frame.get("content", ""), None)
                if started is not None:
                    rtts.append((time.perf_counter() - started) * 1000)

        async def drain_acks() -> None:
            async for _ in out:
                pass

        readers = [asyncio.create_task(read()), asyncio.create_task(drain_acks())]
        tick = time.perf_counter()
        deadline = tick + seconds
        n = 0
        while tick < deadline:
            n += 1
            content = f"rt-{n}"
            sent_at[content] = time.perf_counter()
            frame = {"conversation_id": conversation_id, "content": content}
            await out.send(json.dumps(frame))
            tick += 1 / RATE
            await asyncio.sleep(max(0.0, tick - time.perf_counter()))
        await asyncio.sleep(1.0)  # the last ones' way back
        for task in readers:
            task.cancel()
    return rtts, len(sent_at)


async def _setup(base_url: str, database_url: str) -> tuple[list[str], str]:
    ids = await accounts.insert_users(database_url, "media", 2 + UPLOADERS + 1)
    tokens = accounts.access_tokens(ids)
    async with httpx.AsyncClient(base_url=base_url) as client:
        response = await client.post(
            "/api/v1/conversations",
            json={"participant_id": str(ids[1])},
            headers={"Authorization": f"Bearer {tokens[0]}"},
        )
    if response.status_code != 201:
        raise RuntimeError(f"POST /conversations: {response.status_code} {response.text[:200]}")
    return tokens, response.json()["conversation"]["id"]


def _measure(bench: BenchStack, seconds: float, profile: Path | None) -> dict[str, Any]:
    media_dir = bench.root / "media"
    server, base_url = bench.start_server(
        MEDIA_DIR=str(media_dir), **SERVER_SETTINGS, **LONG_TOKENS
    )
    bench.start_worker(cpu=LOAD_CPU)
    tokens, conversation_id = asyncio.run(_setup(base_url, bench.database_url))
    sender, receiver, uploaders, thrower = tokens[0], tokens[1], tokens[2:-1], tokens[-1]
    copies = bench.root / "copies"
    copies.mkdir()
    figures: dict[str, Any] = {}

    big = [_body(b"big", BIG_FILE)]
    small = [_body(b"small-%d" % n, SMALL_FILE) for n in range(SMALL_FILES)]
    for label, bodies, in_flight in (("100MiB", big, 1), ("1MiB", small, SMALL_IN_FLIGHT)):
        copy = _disk_copy_mb_s(copies, bodies)
        upload = asyncio.run(_upload_mb_s(base_url, thrower, bodies, in_flight))
        figures[f"upload_{label}"] = {
            "upload_mb_s": round(upload, 1),
            "copy_mb_s": round(copy, 1),
            "vs_copy": round(upload / copy, 3),
        }
    del big, small

    ws_base = base_url.replace("http://", "ws://", 1)
    idle, idle_lost = asyncio.run(_round_trips(ws_base, sender, receiver, conversation_id, seconds))
    reading, writing = multiprocessing.get_context("spawn").Pipe(duplex=False)
    # The uploads start a moment before the window and last past it.
    uploading = multiprocessing.get_context("spawn").Process(
        target=_uploaders, args=(base_url, uploaders, seconds + UPLOADS_AROUND, writing)
    )
    uploading.start()
    if reading.recv() != "started":
        raise RuntimeError("the uploaders did not start")
    time.sleep(UPLOADS_AROUND / 2)
    profiler = None
    if profile is not None:
        profile.mkdir(parents=True, exist_ok=True)
        profiler = start_profile(server.pid, seconds, profile / "media-uploading.txt")
    loaded, loaded_lost = asyncio.run(
        _round_trips(ws_base, sender, receiver, conversation_id, seconds)
    )
    if profiler is not None:
        finish_profile(profiler, PROFILER_EXIT)
    files, uploaded = reading.recv()
    uploading.join()
    figures["rtt_idle"] = {**latency_summary(idle), "lost": idle_lost}
    figures["rtt_uploading"] = {
        **latency_summary(loaded),
        "lost": loaded_lost,
        "uploads": files,
        "upload_mb_s": round(uploaded / MIB / (seconds + UPLOADS_AROUND), 1),
    }
    figures["rtt_p99_vs_idle"] = round(
        figures["rtt_uploading"]["p99_ms"] / figures["rtt_idle"]["p99_ms"], 2
    )
    figures["target_met"] = figures["rtt_uploading"]["p99_ms"] < TARGET_P99_MS
    return figures


def _table(figures: dict[str, Any], pinned: bool) -> str:
    where = "server on CPU 0, generator on CPU 1" if pinned else "unpinned"
    lines = [f"media, {where}", f"{'upload':<22}{'MB/s':>10}{'copy MB/s':>12}{'× copy':>9}"]
    for label in ("100MiB", "1MiB"):
        f = figures[f"upload_{label}"]
        name = (
            "1 × 100 MiB"
            if label == "100MiB"
            else f"{SMALL_FILES} × 1 MiB ({SMALL_IN_FLIGHT} at once)"
        )
        lines.append(f"{name:<22}{f['upload_mb_s']:>10}{f['copy_mb_s']:>12}{f['vs_copy']:>9}")
    lines.append(f"{'ws round trip, 50/s':<22}{'p50 ms':>10}{'p99 ms':>12}{'max ms':>9}{'lost':>6}")
    for key, name in (("rtt_idle", "no uploads"), ("rtt_uploading", f"{UPLOADERS} uploading")):
        f = figures[key]
        lines.append(f"{name:<22}{f['p50_ms']:>10}{f['p99_ms']:>12}{f['max_ms']:>9}{f['lost']:>6}")
    loaded = figures["rtt_uploading"]
    lines.append(
        f"p99 with uploads / idle: {figures['rtt_p99_vs_idle']}×; the uploaders stored "
        f"{loaded['uploads']} files, {loaded['upload_mb_s']} MB/s; target p99 < "
        f"{TARGET_P99_MS:.0f} ms: {'met' if figures['target_met'] else 'MISSED'}"
    )
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.media", description=__doc__)
    parser.add_argument("--seconds", type=float, default=10.0, help="each round-trip window")
    parser.add_argument(
        "--profile", metavar="DIR", type=Path, help="py-spy the server while uploads run"
    )
    args = parser.parse_args(argv)
    with bench_stack() as bench:
        figures = _measure(bench, args.seconds, args.profile)
        pinned = bench.pinned
    record("media", {"pinned": pinned, **figures})
    sys.stdout.write(_table(figures, pinned))
    return 0 if figures["target_met"] else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
