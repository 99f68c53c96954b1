"""PostgreSQL and Redis as child processes on loopback: the embedded default for dev and tests."""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from gochat_py.devstack import cluster_home
from gochat_py.devstack.account import Account, service_account

DB_USER = "gochat"
DB_NAME = "gochat"
START_TIMEOUT = 60.0  # a cold initdb plus first start on a loaded 2-core machine stays well under
STOP_TIMEOUT = 20.0
_PR_SET_PDEATHSIG = 1


class StackError(RuntimeError):
    """Something the developer must fix; the message is one line that says what to do."""


def die_with_parent() -> None:
    # If the runner is killed outright (SIGKILL), the kernel stops its children too:
    # no orphaned postgres or redis-server holding ports and data directories.
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def _require_port(port: int, what: str, variable: str) -> None:
    if port_in_use(port):
        raise StackError(
            f"port {port} for {what} is in use: stop whatever holds it "
            f"(another `make dev`?) or set {variable} to a free port"
        )


def postgres_bindir() -> Path:
    """The directory with initdb and postgres: PATH, pg_config, then Debian's layout."""
    candidates: list[Path] = []
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(Path(on_path).resolve().parent)
    pg_config = shutil.which("pg_config")
    if pg_config:
        with contextlib.suppress(OSError, subprocess.CalledProcessError):
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, check=True, text=True
            )
            candidates.append(Path(out.stdout.strip()))
    debian = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
        reverse=True,
    )
    candidates.extend(debian)
    for bindir in candidates:
        if (bindir / "initdb").exists() and (bindir / "postgres").exists():
            return bindir
    raise StackError(
        "PostgreSQL server binaries (initdb, postgres) not found: install them "
        "(Debian/Ubuntu: apt-get install postgresql; macOS: brew install postgresql) "
        "or set DATABASE_URL to a server you run"
    )


def redis_server_binary() -> str:
    found = shutil.which("redis-server")
    if not found:
        raise StackError(
            "redis-server not found: install it (Debian/Ubuntu: apt-get install redis-server; "
            "macOS: brew install redis) or set REDIS_URL to a server you run"
        )
    return found


def _tail(path: Path, lines: int = 5) -> str:
    try:
        return " | ".join(path.read_text(errors="replace").strip().splitlines()[-lines:])
    except OSError:
        return "(no log)"


class ChildProcess:
    """One long-running child in its own session, stopped with a chosen signal."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log: Path,
        stop_signal: signal.Signals,
        account: Account | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.name = name
        self.log = log
        self._stop_signal = stop_signal
        with log.open("ab") as out:
            self.process = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=die_with_parent,
                env=env,
                **as_account(account),
            )

    def exit_code(self) -> int | None:
        return self.process.poll()

    def check_alive(self) -> None:
        code = self.process.poll()
        if code is not None:
            raise StackError(f"{self.name} exited with code {code}: {_tail(self.log)}")

    def stop(self) -> None:
        if self.process.poll() is not None:
            return
        self.process.send_signal(self._stop_signal)
        try:
            self.process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def kill(self) -> None:
        """Stop without a chance to clean up, as a crash would."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def as_account(account: Account | None) -> dict[str, Any]:
    """Popen arguments that run a child as `account` (None: as ourselves).

    Its working directory is /, entered before the switch: PostgreSQL 15 changes back to
    the directory it started in, which the account may not be allowed to enter."""
    if account is None:
        return {}
    return {
        "user": account.uid,
        "group": account.gid,
        "extra_groups": list(account.groups),
        "cwd": "/",
    }


def _wait_until(ready: Callable[[], bool], child: ChildProcess, what: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        child.check_alive()
        if ready():
            return
        time.sleep(0.05)
    raise StackError(f"{what} did not become ready in {START_TIMEOUT:.0f}s: {_tail(child.log)}")


class _Service:
    """A server the stack runs as one child process, logging to `root/<log_name>`."""

    log_name = ""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._child: ChildProcess | None = None

    def exit_code(self) -> int | None:
        return self._child.exit_code() if self._child else None

    def log_tail(self) -> str:
        return _tail(self.root / self.log_name)

    def stop(self) -> None:
        if self._child:
            self._child.stop()

    def kill(self) -> None:
        """Stop without a chance to clean up, as a crash would."""
        if self._child:
            self._child.kill()


class Postgres(_Service):
    """A PostgreSQL cluster under `root/postgres`, created on first start and reused afterwards.

    As root the server runs as a service account; when that account cannot reach `root`
    the cluster lives outside the tree and `root/postgres` links to it (`cluster_home.py`)."""

    name = "postgres"
    log_name = "postgres.log"

    def __init__(self, root: Path, port: int, durable: bool = True) -> None:
        super().__init__(root)
        self.link = root / "postgres"
        self.data_dir = self.link
        self.port = port
        self.durable = durable
        self.bindir = postgres_bindir()
        self._account = service_account()

    def url(self, database: str = DB_NAME) -> str:
        return f"postgresql://{DB_USER}@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        _require_port(self.port, "PostgreSQL", "LOCAL_PG_PORT")
        self.root.mkdir(parents=True, exist_ok=True)
        self.data_dir = cluster_home.cluster_dir(self.link, self._account)
        if not (self.data_dir / "PG_VERSION").exists():
            self._initdb()
        self.launch()
        assert self._child is not None
        _wait_until(self._accepts_connections, self._child, "PostgreSQL")
        self.create_database(DB_NAME)

    def launch(self) -> None:
        """Start the server on the existing cluster without waiting for it."""
        settings = [
            "-c", "listen_addresses=127.0.0.1",
            "-c", "unix_socket_directories=",
            "-c", "max_connections=200",
        ]  # fmt: skip
        if not self.durable:
            # Throwaway test clusters: a crash loses nothing anyone keeps.
            for option in ("fsync=off", "synchronous_commit=off", "full_page_writes=off"):
                settings += ["-c", option]
        self._child = ChildProcess(
            "postgres",
            [
                str(self.bindir / "postgres"),
                "-D",
                str(self.data_dir),
                "-p",
                str(self.port),
                *settings,
            ],
            self.root / self.log_name,
            signal.SIGINT,  # "fast shutdown": roll back open transactions, checkpoint, exit
            self._account,
        )

    def psql(self, sql: str, database: str = "postgres") -> str:
        out = subprocess.run(
            [str(self.bindir / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-tA",
             "-h", "127.0.0.1", "-p", str(self.port), "-U", DB_USER, "-d", database, "-c", sql],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if out.returncode != 0:
            raise StackError(f"psql failed: {out.stderr.strip()}")
        return out.stdout.strip()

    def create_database(self, name: str, template: str | None = None) -> None:
        if self.psql(f"SELECT 1 FROM pg_database WHERE datname = '{name}'") == "1":
            return
        suffix = f" TEMPLATE {template}" if template else ""
        self.psql(f'CREATE DATABASE "{name}"{suffix}')

    def _initdb(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self._account:
            os.chown(self.data_dir, self._account.uid, self._account.gid)
        argv = [str(self.bindir / "initdb"), "-D", str(self.data_dir), "-U", DB_USER,
                "--auth=trust", "-E", "UTF8", "--no-locale"]  # fmt: skip
        if not self.durable:
            argv.append("--no-sync")
        out = subprocess.run(
            argv, capture_output=True, text=True, check=False, **as_account(self._account)
        )
        if out.returncode != 0:
            detail = " | ".join(out.stderr.strip().splitlines()[-3:])
            raise StackError(f"initdb failed in {self.data_dir}: {detail}")

    def _accepts_connections(self) -> bool:
        out = subprocess.run(
            [str(self.bindir / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(self.port),
             "-U", DB_USER, "-t", "1"],
            check=False,
        )  # fmt: skip
        return out.returncode == 0


class RedisServer(_Service):
    """redis-server on loopback with its data (AOF) under `root/redis`."""

    name = "redis"
    log_name = "redis.log"

    def __init__(self, root: Path, port: int) -> None:
        super().__init__(root)
        self.data_dir = root / "redis"
        self.port = port
        self.binary = redis_server_binary()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        _require_port(self.port, "Redis", "LOCAL_REDIS_PORT")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.launch()
        assert self._child is not None
        _wait_until(self._answers_ping, self._child, "Redis")

    def launch(self) -> None:
        """Start the server on its existing data without waiting for it."""
        argv = [
            self.binary,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.data_dir),
            "--daemonize", "no",
            # AOF so a restart keeps the stream: acknowledged messages not yet in
            # PostgreSQL survive a Redis restart (fsync once a second).
            "--appendonly", "yes",
            "--appendfsync", "everysec",
            "--save", "",
        ]  # fmt: skip
        self._child = ChildProcess("redis-server", argv, self.root / self.log_name, signal.SIGTERM)

    def _answers_ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False


class LocalStack:
    """PostgreSQL and Redis together; stop() is safe to call at any point."""

    def __init__(self, root: Path, pg_port: int, redis_port: int, durable: bool = True) -> None:
        self.postgres = Postgres(root, pg_port, durable)
        self.redis = RedisServer(root, redis_port)

    def start(self) -> None:
        try:
            self.postgres.start()
            self.redis.start()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        self.redis.stop()
        self.postgres.stop()
