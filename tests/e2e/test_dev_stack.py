"""`make dev` / `make run` as a user runs them: one command, then Ctrl-C leaves nothing behind."""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from gochat_py.devstack import cluster_home
from gochat_py.devstack.services import free_port, port_in_use
from tests.harness import (
    PASSWORD,
    ROOT,
    ServerProcess,
    poll_until,
    register,
)

pytestmark = pytest.mark.slow


def dev_environment(data_dir: Path, **overrides: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "REDIS_URL", "REDIS_ADDR", "SERVER_PORT")
    }
    env.update(
        LOCAL_DATA_DIR=str(data_dir),
        LOCAL_PG_PORT=str(free_port()),
        LOCAL_REDIS_PORT=str(free_port()),
        SERVER_PORT=str(free_port()),
        WORKER_METRICS_PORT=str(free_port()),
        ARGON2_MEMORY_KIB="1024",
        ARGON2_TIME_COST="1",
    )
    env.update(overrides)
    return env


def processes_mentioning(text: str) -> list[str]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if text in cmdline:
            found.append(f"{entry.name}: {cmdline}")
    return found


@pytest.fixture
def data_dir(workdir: Path) -> Iterator[Path]:
    path = workdir / f"dev-{free_port()}"
    yield path
    for line in processes_mentioning(str(path)):
        os.kill(int(line.split(":")[0]), signal.SIGKILL)


async def test_run_serves_and_ctrl_c_stops_every_process_and_data_survives(
    data_dir: Path, tmp_path: Path
) -> None:
    env = dev_environment(data_dir)
    ports = [
        int(env[k])
        for k in ("LOCAL_PG_PORT", "LOCAL_REDIS_PORT", "SERVER_PORT", "WORKER_METRICS_PORT")
    ]
    argv = [sys.executable, "-m", "gochat_py.devstack", "run"]

    first = ServerProcess(env, tmp_path / "first.log", argv)
    try:
        await first.wait_healthy(timeout=90)
        async with httpx.AsyncClient(base_url=first.base_url) as client:
            assert (await client.get("/api/v1/health/ready")).status_code == 200
            email = (await register(client))["user"]["email"]

            async def worker_serves_metrics() -> bool:
                try:
                    response = await client.get(
                        f"http://127.0.0.1:{env['WORKER_METRICS_PORT']}/metrics"
                    )
                except httpx.HTTPError:
                    return False
                return "gochat_worker" in response.text

            await poll_until(worker_serves_metrics, timeout=30, what="the worker beside the server")
    finally:
        code = first.stop(signal.SIGINT, timeout=60)
    assert code == 0, first.output()
    assert processes_mentioning(str(data_dir)) == []
    assert not any(port_in_use(port) for port in ports), first.output()
    assert (data_dir / "postgres" / "PG_VERSION").exists()

    second = ServerProcess(env, tmp_path / "second.log", argv)
    try:
        await second.wait_healthy(timeout=90)
        async with httpx.AsyncClient(base_url=second.base_url) as client:
            login = await client.post(
                "/api/v1/auth/login", json={"email": email, "password": PASSWORD}
            )
            assert login.status_code == 200
    finally:
        assert second.stop(signal.SIGINT, timeout=60) == 0
    assert processes_mentioning(str(data_dir)) == []


def test_a_busy_server_port_is_a_one_line_error_naming_the_variable(data_dir: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        env = dev_environment(data_dir, SERVER_PORT=str(port), SERVER_HOST="127.0.0.1")
        out = subprocess.run(
            [sys.executable, "-m", "gochat_py.devstack", "run"], env=env, cwd=ROOT,
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    assert out.returncode == 2
    assert f"port {port}" in out.stderr and "SERVER_PORT" in out.stderr
    assert processes_mentioning(str(data_dir)) == []


def test_a_busy_postgres_port_is_a_one_line_error_naming_the_variable(data_dir: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        env = dev_environment(data_dir, LOCAL_PG_PORT=str(port))
        out = subprocess.run(
            [sys.executable, "-m", "gochat_py.devstack", "run"], env=env, cwd=ROOT,
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    assert out.returncode == 2
    assert "LOCAL_PG_PORT" in out.stderr
    assert processes_mentioning(str(data_dir)) == []


def test_migrate_and_seed_work_against_the_local_stack(data_dir: Path) -> None:
    env = dev_environment(data_dir)

    def dev(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "gochat_py.devstack", *args], env=env, cwd=ROOT,
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip

    up = dev("migrate", "up")
    assert up.returncode == 0, up.stderr
    assert "up 0001_init" in up.stderr
    seeded = dev("seed")
    assert seeded.returncode == 0, seeded.stderr
    assert "alice@example.com" in seeded.stderr
    again = dev("seed")
    assert again.returncode == 0, again.stderr
    down = dev("migrate", "down", "0")
    assert down.returncode == 0 and "down 0001_init" in down.stderr, down.stderr
    assert processes_mentioning(str(data_dir)) == []


PRIVATE_CHECKOUT_PARTS = ("gochat_py", "worker", "configs", "database")


@pytest.fixture
def private_checkout(tmp_path: Path) -> Iterator[Path]:
    """The project as root clones it into a directory only root may enter."""
    private = tmp_path / "private"
    private.mkdir()
    private.chmod(0o700)
    checkout = private / "gochat"
    for part in PRIVATE_CHECKOUT_PARTS:
        shutil.copytree(ROOT / part, checkout / part, ignore=shutil.ignore_patterns("__pycache__"))
    yield checkout
    link = checkout / ".data" / "postgres"
    for line in processes_mentioning(str(checkout)) + processes_mentioning(
        str(link.resolve()) if link.is_symlink() else str(link)
    ):
        os.kill(int(line.split(":")[0]), signal.SIGKILL)
    if link.is_symlink() and link.resolve().parent.parent == cluster_home.STATE_ROOT:
        shutil.rmtree(link.resolve().parent, ignore_errors=True)


@pytest.mark.skipif(
    os.geteuid() != 0,
    reason="needs root: only then does PostgreSQL run as a service account that cannot "
    "enter a 0700 directory",
)
async def test_run_as_root_in_a_private_directory_serves_keeps_its_data_and_leaks_none(
    private_checkout: Path, tmp_path: Path
) -> None:
    env = {k: v for k, v in dev_environment(Path()).items() if k != "LOCAL_DATA_DIR"}
    ports = [
        int(env[k])
        for k in ("LOCAL_PG_PORT", "LOCAL_REDIS_PORT", "SERVER_PORT", "WORKER_METRICS_PORT")
    ]
    link = private_checkout / ".data" / "postgres"

    def dev(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "gochat_py.devstack", *args], env=env, cwd=private_checkout,
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip

    up = dev("migrate", "up")
    assert up.returncode == 0, up.stderr
    assert "up 0001_init" in up.stderr
    seeded = dev("seed")
    assert seeded.returncode == 0, seeded.stderr
    assert link.is_symlink() and (link / "PG_VERSION").exists()
    cluster = link.resolve()
    assert cluster.parent.parent == cluster_home.STATE_ROOT
    assert cluster.stat().st_uid == pwd.getpwnam("postgres").pw_uid
    assert stat.S_IMODE(cluster.stat().st_mode) == 0o700
    assert stat.S_IMODE(private_checkout.parent.stat().st_mode) == 0o700

    argv = [sys.executable, "-m", "gochat_py.devstack", "run"]
    for attempt in ("first", "second"):
        run = ServerProcess(env, tmp_path / f"{attempt}.log", argv, cwd=private_checkout)
        try:
            await run.wait_healthy(timeout=90)
            async with httpx.AsyncClient(base_url=run.base_url) as client:
                assert (await client.get("/api/v1/health/ready")).status_code == 200
                if attempt == "first":
                    email = (await register(client))["user"]["email"]
                for who, password in ((email, PASSWORD), ("alice@example.com", "password123")):
                    login = await client.post(
                        "/api/v1/auth/login", json={"email": who, "password": password}
                    )
                    assert login.status_code == 200, (who, login.text)
        finally:
            code = run.stop(signal.SIGINT, timeout=60)
        assert code == 0, run.output()
        assert processes_mentioning(str(private_checkout)) == []
        assert processes_mentioning(str(cluster)) == []
        assert not any(port_in_use(port) for port in ports), run.output()
        assert link.resolve() == cluster

    shutil.rmtree(private_checkout / ".data")
    status = dev("migrate", "status")
    assert status.returncode == 0, status.stderr
    assert not cluster.parent.exists(), "a cluster nobody links to any more was left on disk"
    assert link.resolve() != cluster
