"""`python -m gochat_py`: run the API server with settings from the environment (`make dev`
restarts it on code changes itself, gochat_py/devstack/codewatch.py)."""

from __future__ import annotations

import os
import sys

import uvicorn

from gochat_py.app import uvicorn_options
from gochat_py.logs import configure_logging
from gochat_py.settings import SettingsError, load_settings


def main(argv: list[str]) -> int:
    try:
        settings = load_settings(os.environ)
    except SettingsError as exc:
        sys.stderr.write(f"configuration error: {exc}\n")
        return 2
    configure_logging(settings.log_level, settings.log_format)
    uvicorn.run(
        "gochat_py.app:create_app",
        factory=True,
        host=settings.server_host,
        port=settings.server_port,
        **uvicorn_options(settings),
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
