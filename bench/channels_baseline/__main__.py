"""`python -m bench.channels_baseline [--layer redis|pubsub]`: serve on 127.0.0.1 (see asgi.py)."""

from __future__ import annotations

import argparse
import os
import sys

import uvicorn

from bench.channels_baseline.groups import GroupsFileError, memberships

LAYERS = ("redis", "pubsub")
# The same as gochat_py.app.uvicorn_options, so the comparison is of servers, not settings.
WS_MAX_SIZE = 64 * 1024  # gochat_py.frames.MAX_FRAME_BYTES
WS_PING_INTERVAL = 20.0  # gochat-py's default WS_PING_INTERVAL, also its ping timeout


def _port() -> int | None:
    # BENCH_PORT first; SERVER_PORT is how bench.targets starts bare-protocol servers.
    raw = os.environ.get("BENCH_PORT") or os.environ.get("SERVER_PORT", "")
    return int(raw) if raw.isdigit() else None


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--layer", choices=LAYERS, default=os.environ.get("BENCH_CHANNEL_LAYER"))
    layer = parser.parse_args(argv).layer
    port = _port()
    if layer not in LAYERS or port is None:
        sys.stderr.write("need --layer (or BENCH_CHANNEL_LAYER) and BENCH_PORT (or SERVER_PORT)\n")
        return 2
    try:
        memberships(os.environ.get("BENCH_GROUPS_FILE", ""))  # fail now, not at first connect
    except GroupsFileError as exc:
        sys.stderr.write(f"BENCH_GROUPS_FILE: {exc}\n")
        return 2
    # Read by settings.py when uvicorn imports the app, in this same process.
    os.environ["BENCH_CHANNEL_LAYER"] = layer
    os.environ["DJANGO_SETTINGS_MODULE"] = "bench.channels_baseline.settings"
    uvicorn.run(
        "bench.channels_baseline.asgi:application",
        host="127.0.0.1",
        port=port,
        access_log=False,
        log_level="warning",
        ws_max_size=WS_MAX_SIZE,
        ws_ping_interval=WS_PING_INTERVAL,
        ws_ping_timeout=WS_PING_INTERVAL,
        # Compression off, as in gochat-py: chat frames are small and zlib costs CPU.
        ws_per_message_deflate=False,
        # Channels' ProtocolTypeRouter has no lifespan handler; "auto" would log its absence.
        lifespan="off",
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
