"""Logging: loguru configured once, stdlib loggers routed into it, secrets scrubbed."""

from __future__ import annotations

import logging
import re
import sys
from typing import TYPE_CHECKING

from loguru import logger

if TYPE_CHECKING:
    from loguru import Record

# A token can reach a log line through a query string (`/ws?token=…`), a header echoed
# in an error, or a library message; scrub both shapes wherever they occur.
_TOKEN_PARAM = re.compile(r"((?:access_|refresh_)?token=)[^&\s\"']+", re.IGNORECASE)
_JWT = re.compile(r"eyJ[\w-]{4,}\.[\w-]{4,}\.[\w-]+")
_BEARER = re.compile(r"(Bearer\s+)\S+", re.IGNORECASE)
REDACTED = "[redacted]"

_TEXT_FORMAT = (
    "<green>{time:YYYY-MM-DD HH:mm:ss.SSS}</green> <level>{level: <7}</level> "
    "<cyan>{extra[request_id]}</cyan> {message} {extra[fields]}"
)


def scrub(text: str) -> str:
    text = _TOKEN_PARAM.sub(rf"\1{REDACTED}", text)
    text = _BEARER.sub(rf"\1{REDACTED}", text)
    return _JWT.sub(REDACTED, text)


def _patch(record: Record) -> None:
    record["message"] = scrub(record["message"])
    extra = record["extra"]
    for key, value in extra.items():
        if isinstance(value, str):
            extra[key] = scrub(value)
    fields = {k: v for k, v in extra.items() if k not in ("request_id", "fields")}
    extra["fields"] = " ".join(f"{k}={v}" for k, v in fields.items())


class _InterceptHandler(logging.Handler):
    """Hands stdlib records (uvicorn, asyncpg) to loguru so they share format and scrubbing."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            level: str | int = logger.level(record.levelname).name
        except ValueError:
            level = record.levelno
        logger.opt(depth=6, exception=record.exc_info).log(level, record.getMessage())


def configure_logging(level: str, fmt: str) -> None:
    """Send every log line to stderr, as text for people or JSON for collectors."""
    logger.remove()
    logger.configure(extra={"request_id": "-"}, patcher=_patch)
    if fmt == "json":
        logger.add(sys.stderr, level=level, serialize=True, backtrace=False, diagnose=False)
    else:
        logger.add(sys.stderr, level=level, format=_TEXT_FORMAT, backtrace=False, diagnose=False)
    # The stdlib levels must match: below them, uvicorn traces every ASGI message and
    # websockets every frame, only for loguru to drop the records (a quarter of the CPU
    # of a busy server, measured).
    std_level = logging.getLevelName("DEBUG" if level == "TRACE" else level)
    logging.basicConfig(handlers=[_InterceptHandler()], level=std_level, force=True)
    for name in ("uvicorn", "uvicorn.error", "asyncio", "websockets"):
        std = logging.getLogger(name)
        std.handlers = [_InterceptHandler()]
        std.propagate = False
        std.setLevel(std_level)
    # The app's AccessMiddleware writes the access line, without query strings.
    access = logging.getLogger("uvicorn.access")
    access.handlers = []
    access.propagate = False
    access.disabled = True
