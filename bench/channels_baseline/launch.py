"""How to start the Channels baseline: argv and environment for a child process.

Stdlib only: the load generator imports this from the project's venv, while the server
itself runs with bench/.channels-venv's python.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent.parent
VENV_PYTHON = REPO_ROOT / "bench" / ".channels-venv" / "bin" / "python"
SETUP = HERE / "setup.sh"
LAYERS = ("redis", "pubsub")
# The project's venv must not leak into the child: its imports come from the baseline's venv.
_NOT_INHERITED = ("VIRTUAL_ENV", "PYTHONHOME", "DJANGO_SETTINGS_MODULE")


def install() -> Path:
    """Create the baseline's venv if it is missing (idempotent); return its python."""
    subprocess.run(["bash", str(SETUP)], check=True, env={**os.environ, "PYTHON": sys.executable})
    return VENV_PYTHON


def server_argv(layer: str) -> list[str]:
    """argv of the server alone, for a caller that provides the environment itself.

    With cwd at the repo root and bench.stack's environment plus SERVER_PORT and
    BENCH_GROUPS_FILE (as bench.targets starts bare-protocol servers), this is all it needs.
    """
    if layer not in LAYERS:
        raise ValueError(f"layer must be one of {', '.join(LAYERS)}, got {layer!r}")
    if not VENV_PYTHON.exists():
        raise FileNotFoundError(f"{VENV_PYTHON} is missing: run {SETUP} (or launch.install())")
    return [str(VENV_PYTHON), "-m", "bench.channels_baseline", "--layer", layer]


def command(
    port: int, groups_file: Path, redis_url: str, layer: str
) -> tuple[list[str], dict[str, str]]:
    """argv and environment that serve the baseline on 127.0.0.1:`port` (after install())."""
    argv = server_argv(layer)
    env = {k: v for k, v in os.environ.items() if k not in _NOT_INHERITED}
    env.update(
        PYTHONPATH=str(REPO_ROOT),  # `bench.channels_baseline` importable from any cwd
        BENCH_PORT=str(port),
        BENCH_GROUPS_FILE=str(Path(groups_file).resolve()),
        BENCH_REDIS_URL=redis_url,
        BENCH_CHANNEL_LAYER=layer,
    )
    return argv, env
