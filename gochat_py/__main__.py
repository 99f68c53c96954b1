"""`python -m gochat_py [--reload]`: run the API server with settings from the environment."""

from __future__ import annotations

import os
import sys

import uvicorn

from gochat_py.logs import configure_logging
from gochat_py.settings import SettingsError, load_settings

# The uvicorn access log would print raw paths with their query strings (`?token=`);
# the app writes its own scrubbed access line instead.
UVICORN_OPTIONS = {"access_log": False, "log_config": None, "proxy_headers": True}


def main(argv: list[str]) -> int:
    try:
        settings = load_settings(os.environ)
    except SettingsError as exc:
        sys.stderr.write(f"configuration error: {exc}\n")
        return 2
    configure_logging(settings.log_level, settings.log_format)
    reload = "--reload" in argv
    uvicorn.run(
        "gochat_py.app:create_app",
        factory=True,
        host=settings.server_host,
        port=settings.server_port,
        reload=reload,
        reload_dirs=["gochat_py"] if reload else None,
        **UVICORN_OPTIONS,  # type: ignore[arg-type]
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
