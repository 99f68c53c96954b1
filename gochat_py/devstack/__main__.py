"""`make dev` / `make run` / `make migrate` / `make seed` on one machine.

With DATABASE_URL and REDIS_URL (or REDIS_ADDR) unset, PostgreSQL and Redis start as child
processes with their data under `.data/`; everything started here stops on Ctrl-C.

    python -m gochat_py.devstack run [--reload]
    python -m gochat_py.devstack migrate up|down|status [VERSION]
    python -m gochat_py.devstack seed
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from dotenv import dotenv_values

from gochat_py.devstack import seed
from gochat_py.devstack.account import AccountError
from gochat_py.devstack.cluster_home import ClusterHomeError
from gochat_py.devstack.services import LocalStack, StackError, die_with_parent, port_in_use
from gochat_py.postgres import migrate
from gochat_py.settings import Settings, SettingsError, load_settings

PROJECT_ROOT = Path(__file__).resolve().parents[2]
LOCAL_ENV_FILE = PROJECT_ROOT / "configs" / "local.env"
DEFAULT_PG_PORT = 54329
DEFAULT_REDIS_PORT = 63799
CHILD_STOP_TIMEOUT = 15.0


class DevError(RuntimeError):
    pass


def _environment() -> dict[str, str]:
    """The process environment over `configs/local.env` (real variables win)."""
    env = {k: v for k, v in dotenv_values(LOCAL_ENV_FILE).items() if v is not None}
    env.update(os.environ)
    return env


def _int_var(env: dict[str, str], name: str, default: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= 65535:
        raise SettingsError(name, f"{raw!r} is not a TCP port (1-65535)")
    return int(raw)


@contextlib.contextmanager
def local_services(env: dict[str, str]) -> Iterator[dict[str, str]]:
    """Start whatever of PostgreSQL and Redis the environment does not point at."""
    need_pg = not env.get("DATABASE_URL", "").strip()
    need_redis = not (env.get("REDIS_URL", "").strip() or env.get("REDIS_ADDR", "").strip())
    if not (need_pg or need_redis):
        yield env
        return
    root = Path(env.get("LOCAL_DATA_DIR", "").strip() or PROJECT_ROOT / ".data").resolve()
    stack = LocalStack(
        root,
        _int_var(env, "LOCAL_PG_PORT", DEFAULT_PG_PORT),
        _int_var(env, "LOCAL_REDIS_PORT", DEFAULT_REDIS_PORT),
    )
    env = dict(env)
    try:
        if need_pg:
            stack.postgres.start()
            env["DATABASE_URL"] = stack.postgres.url()
            _say(f"postgres  {env['DATABASE_URL']}  (data: {stack.postgres.data_dir})")
        if need_redis:
            stack.redis.start()
            env["REDIS_URL"] = stack.redis.url
            _say(f"redis     {env['REDIS_URL']}  (data: {stack.redis.data_dir})")
        yield env
    finally:
        stack.stop()
        _say("local stack stopped")


def _say(line: str) -> None:
    sys.stderr.write(f"[gochat dev] {line}\n")
    sys.stderr.flush()


def _spawn(argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        argv,
        env=env,
        cwd=PROJECT_ROOT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,  # Ctrl-C reaches only this runner, which stops children in order
        preexec_fn=die_with_parent,
    )


def _stop_group(child: subprocess.Popen[bytes]) -> None:
    """SIGTERM the child's whole process group (uvicorn's reloader and its server)."""
    if child.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(child.pid, signal.SIGTERM)
    try:
        child.wait(CHILD_STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, signal.SIGKILL)
        child.wait()


def run(reload: bool) -> int:
    stopping = False

    def request_stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    env = _environment()
    settings = load_settings(env)
    if port_in_use(settings.server_port, settings.server_host):
        raise StackError(
            f"port {settings.server_port} for the API server is in use: stop whatever holds it "
            "or set SERVER_PORT to a free port"
        )
    with local_services(env) as env:
        settings = load_settings(env)
        _migrate_up(settings)
        server = [sys.executable, "-m", "gochat_py", *(["--reload"] if reload else [])]
        worker = [sys.executable, "-m", "worker"]
        if reload:
            # watchfiles restarts the worker on a code change; SIGTERM lets it finish its batch.
            worker = [
                sys.executable, "-m", "watchfiles", "--filter", "python",
                "--sigint-timeout", "10", " ".join(worker), "worker", "gochat_py",
            ]  # fmt: skip
        children = {"server": _spawn(server, env), "worker": _spawn(worker, env)}
        _say(f"api       http://127.0.0.1:{settings.server_port}  (Ctrl-C stops everything)")
        exit_code = 0
        try:
            while not stopping:
                for name, child in children.items():
                    if child.poll() is not None:
                        _say(f"{name} exited with code {child.returncode}; stopping")
                        exit_code = 1
                        stopping = True
                time.sleep(0.2)
        finally:
            for child in reversed(children.values()):
                _stop_group(child)
    return exit_code


def _migrate_up(settings: Settings) -> None:
    for line in asyncio.run(migrate.run(settings.database_url, "up", None)):
        _say(f"migrated  {line}")


def main(argv: list[str]) -> int:
    command = argv[0] if argv else ""
    try:
        if command == "run":
            return run(reload="--reload" in argv)
        if command == "migrate":
            if len(argv) < 2 or argv[1] not in ("up", "down", "status"):
                raise DevError("usage: migrate up|down|status [VERSION]")
            target = int(argv[2]) if len(argv) > 2 and argv[2].strip() else None
            with local_services(_environment()) as env:
                lines = asyncio.run(migrate.run(load_settings(env).database_url, argv[1], target))
            _say("\n".join(lines) or "nothing to do")
            return 0
        if command == "seed":
            with local_services(_environment()) as env:
                settings = load_settings(env)
                _migrate_up(settings)
                for line in asyncio.run(seed.run(settings)):
                    _say(line)
            return 0
        raise DevError(__doc__ or "")
    except (
        SettingsError,
        StackError,
        AccountError,
        ClusterHomeError,
        DevError,
        migrate.MigrationError,
        ValueError,
    ) as exc:
        _say(f"error: {exc}")
        return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
