"""What a dev command runs against: the environment, and PostgreSQL and Redis started for
whatever of them it does not point at."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from dotenv import dotenv_values

from gochat_py.devstack.console import say
from gochat_py.devstack.services import LocalStack, Postgres, RedisServer
from gochat_py.devstack.supervisor import BACKOFF_MAX
from gochat_py.postgres import migrate
from gochat_py.settings import Settings, SettingsError, parse_duration

PROJECT_ROOT = Path(__file__).resolve().parents[2]
LOCAL_ENV_FILE = PROJECT_ROOT / "configs" / "local.env"
DEFAULT_PG_PORT = 54329  # beside, not on, a system PostgreSQL's 5432
DEFAULT_REDIS_PORT = 63799  # beside, not on, a system Redis's 6379


def environment() -> dict[str, str]:
    """The process environment over `configs/local.env` (real variables win)."""
    env = {k: v for k, v in dotenv_values(LOCAL_ENV_FILE).items() if v is not None}
    env.update(os.environ)
    return env


def _int_var(env: dict[str, str], name: str, default: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= 65535:
        raise SettingsError(name, f"{raw!r} is not a TCP port (1-65535)")
    return int(raw)


def restart_backoff_max(env: dict[str, str]) -> float:
    """LOCAL_RESTART_BACKOFF_MAX: the longest wait before a crashed child is started again."""
    raw = env.get("LOCAL_RESTART_BACKOFF_MAX", "").strip()
    if not raw:
        return BACKOFF_MAX
    try:
        return parse_duration(raw)
    except ValueError as exc:
        raise SettingsError("LOCAL_RESTART_BACKOFF_MAX", str(exc)) from None


@contextlib.contextmanager
def local_services(
    env: dict[str, str],
) -> Iterator[tuple[dict[str, str], list[Postgres | RedisServer]]]:
    """Start whatever of PostgreSQL and Redis the environment does not point at; yield the
    environment that points at them and the servers started."""
    need_pg = not env.get("DATABASE_URL", "").strip()
    need_redis = not (env.get("REDIS_URL", "").strip() or env.get("REDIS_ADDR", "").strip())
    if not (need_pg or need_redis):
        yield env, []
        return
    root = Path(env.get("LOCAL_DATA_DIR", "").strip() or PROJECT_ROOT / ".data").resolve()
    stack = LocalStack(
        root,
        _int_var(env, "LOCAL_PG_PORT", DEFAULT_PG_PORT),
        _int_var(env, "LOCAL_REDIS_PORT", DEFAULT_REDIS_PORT),
    )
    env = dict(env)
    # Uploads live beside the stack's data, wherever the stack's data lives.
    env.setdefault("MEDIA_DIR", str(root / "media"))
    started: list[Postgres | RedisServer] = []
    try:
        if need_pg:
            pg = stack.postgres
            pg.start()
            started.append(pg)
            env["DATABASE_URL"] = pg.url()
            where = pg.link if pg.data_dir == pg.link else f"{pg.link} -> {pg.data_dir}"
            say(f"postgres  {env['DATABASE_URL']}  (data: {where})")
        if need_redis:
            stack.redis.start()
            started.append(stack.redis)
            env["REDIS_URL"] = stack.redis.url
            say(f"redis     {env['REDIS_URL']}  (data: {stack.redis.data_dir})")
        yield env, started
    finally:
        stack.stop()
        say("local stack stopped")


def migrate_up(settings: Settings) -> None:
    for line in asyncio.run(migrate.run(settings.database_url, "up", None)):
        say(f"migrated  {line}")
