"""`make dev` / `make run` as a user runs them: one command, then Ctrl-C leaves nothing behind."""

from __future__ import annotations

import asyncio
import json
import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest
from redis.asyncio import Redis
from redis.exceptions import RedisError
from websockets.protocol import State

from gochat_py.devstack import cluster_home
from gochat_py.devstack.services import free_port, port_in_use
from tests.harness import (
    PASSWORD,
    ROOT,
    ServerProcess,
    connect,
    create_direct,
    next_frame,
    poll_until,
    register,
    ws_url,
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
        # Restarts after a crash come at once: these tests count restarts, not their waits.
        LOCAL_RESTART_BACKOFF_MAX="100ms",
    )
    env.update(overrides)
    return env


def devstack(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`python -m gochat_py.devstack ARGS` run to its end, its output captured."""
    return subprocess.run(
        [sys.executable, "-m", "gochat_py.devstack", *args], env=env, cwd=cwd,
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


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


async def test_run_starts_the_webhook_deliverer_when_a_webhook_url_is_set(
    data_dir: Path, tmp_path: Path
) -> None:
    metrics_port = free_port()
    env = dev_environment(
        data_dir,
        NOTIFY_WEBHOOK_URL=f"http://127.0.0.1:{free_port()}/hook",
        NOTIFY_WEBHOOK_SECRET="dev-stack-webhook-secret",
        NOTIFY_WEBHOOK_METRICS_PORT=str(metrics_port),
    )
    argv = [sys.executable, "-m", "gochat_py.devstack", "run"]
    stack = ServerProcess(env, tmp_path / "stack.log", argv)
    try:
        await stack.wait_healthy(timeout=90)

        async def deliverer_serves_metrics() -> bool:
            try:
                async with httpx.AsyncClient() as client:
                    response = await client.get(f"http://127.0.0.1:{metrics_port}/metrics")
            except httpx.HTTPError:
                return False
            return "gochat_webhook_pending" in response.text

        await poll_until(deliverer_serves_metrics, timeout=30, what="the webhook deliverer")
        assert processes_mentioning("worker.webhooks")
    finally:
        code = stack.stop(signal.SIGINT, timeout=60)
    assert code == 0, stack.output()
    assert not port_in_use(metrics_port)
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
        return devstack(env, ROOT, *args)

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


def children_of(parent: int, text: str) -> list[int]:
    """Pids of `parent`'s children whose command line contains `text`: this run's only."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            # The command name in (parentheses) may hold spaces; the fields after it do not.
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, IndexError, ValueError):
            continue
        if ppid == parent and text in cmdline:
            found.append(int(entry.name))
    return found


async def one_child(parent: int, text: str, other_than: int | None = None) -> int:
    async def found() -> int | None:
        pids = [pid for pid in children_of(parent, text) if pid != other_than]
        return pids[0] if len(pids) == 1 else None

    what = f"a {'new ' if other_than else ''}child of {parent} running {text!r}"
    return await poll_until(found, timeout=60, what=what)


CHECKOUT_PARTS = ("gochat_py", "worker", "configs", "database")  # what `run` reads


def copy_of_the_project(checkout: Path) -> Path:
    """A checkout of its own: `python -m gochat_py.devstack` run from it runs its code."""
    for part in CHECKOUT_PARTS:
        shutil.copytree(ROOT / part, checkout / part, ignore=shutil.ignore_patterns("__pycache__"))
    return checkout


@pytest.fixture
def private_checkout(tmp_path: Path) -> Iterator[Path]:
    """The project as root clones it into a directory only root may enter."""
    private = tmp_path / "private"
    private.mkdir()
    private.chmod(0o700)
    checkout = copy_of_the_project(private / "gochat")
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
        return devstack(env, private_checkout, *args)

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


def message_frame(conversation_id: str, client_msg_id: str) -> str:
    return json.dumps(
        {
            "conversation_id": conversation_id,
            "content": client_msg_id,
            "client_msg_id": client_msg_id,
        }
    )


async def test_a_worker_killed_three_times_under_run_is_restarted_and_every_ack_persists_once(
    data_dir: Path, tmp_path: Path
) -> None:
    # Entries a killed worker held are reclaimed after WORKER_CLAIM_IDLE: keep the test short.
    env = dev_environment(data_dir, WORKER_CLAIM_IDLE="1s", WS_RATE="5000", WS_BURST="5000")
    run = ServerProcess(
        env, tmp_path / "run.log", [sys.executable, "-m", "gochat_py.devstack", "run"]
    )
    database_url = f"postgresql://gochat@127.0.0.1:{env['LOCAL_PG_PORT']}/gochat"
    acked: list[str] = []

    async def persisted(conversation_id: str) -> list[asyncpg.Record]:
        conn = await asyncpg.connect(database_url)
        try:
            return await conn.fetch(
                "SELECT id, client_msg_id FROM messages WHERE conversation_id = $1",
                uuid.UUID(conversation_id),
            )
        finally:
            await conn.close()

    try:
        await run.wait_healthy(timeout=90)
        async with httpx.AsyncClient(base_url=run.base_url) as client:
            alice, bob = await register(client), await register(client)
            conversation = (await create_direct(client, alice["tokens"], bob["user"]["id"]))["id"]
            async with (
                connect(ws_url(client, alice["tokens"]["access_token"])) as alice_ws,
                connect(ws_url(client, bob["tokens"]["access_token"])) as bob_ws,
            ):
                sending = asyncio.Event()
                sending.set()

                async def send_while_asked() -> None:
                    while sending.is_set():
                        batch = [f"m{len(acked) + i}" for i in range(5)]
                        for client_msg_id in batch:
                            await alice_ws.send(message_frame(conversation, client_msg_id))
                        for _ in batch:
                            ack = await next_frame(
                                alice_ws, lambda f: f.get("event") in ("ack", "error"), timeout=30
                            )
                            assert ack["event"] == "ack", ack
                            acked.append(ack["id"])
                        await asyncio.sleep(0.05)  # pace, not wait: traffic through every kill

                delivered: set[str] = set()

                async def read_as_bob() -> None:
                    async for raw in bob_ws:
                        delivered.add(json.loads(raw).get("id", ""))

                sender = asyncio.create_task(send_while_asked())
                reader = asyncio.create_task(read_as_bob())
                worker = await one_child(run.process.pid, "-m worker")
                for _ in range(3):
                    os.kill(worker, signal.SIGKILL)
                    worker = await one_child(run.process.pid, "-m worker", other_than=worker)
                    goal = set(acked)

                    async def caught_up(goal: set[str] = goal) -> bool:
                        return goal <= {str(r["id"]) for r in await persisted(conversation)}

                    await poll_until(caught_up, timeout=60, what="the new worker to persist")
                sending.clear()
                await sender

                async def bob_has_all() -> bool:
                    return set(acked) <= delivered

                await poll_until(bob_has_all, timeout=30, what="every message live at bob's")
                reader.cancel()
                assert alice_ws.state is State.OPEN and bob_ws.state is State.OPEN

            async def all_persisted() -> bool:
                return len(await persisted(conversation)) >= len(acked)

            await poll_until(all_persisted, timeout=60, what="every acked message in PostgreSQL")
            rows = await persisted(conversation)
    finally:
        code = run.stop(signal.SIGINT, timeout=60)
    assert code == 0, run.output()
    assert processes_mentioning(str(data_dir)) == []
    assert len(acked) == len(set(acked)) and len(acked) > 15
    assert Counter(r["client_msg_id"] for r in rows).most_common(1)[0][1] == 1
    assert sorted(str(r["id"]) for r in rows) == sorted(acked)
    assert run.output().count("[gochat dev] worker exited with code -9") == 3, run.output()


async def test_postgres_and_redis_killed_under_run_are_restarted_on_their_data(
    data_dir: Path, tmp_path: Path
) -> None:
    env = dev_environment(data_dir)
    run = ServerProcess(
        env, tmp_path / "run.log", [sys.executable, "-m", "gochat_py.devstack", "run"]
    )
    redis = Redis(port=int(env["LOCAL_REDIS_PORT"]))
    try:
        await run.wait_healthy(timeout=90)
        async with httpx.AsyncClient(base_url=run.base_url) as client:
            email = (await register(client))["user"]["email"]
            await redis.set("devstack:kept", "across a crash")

            redis_pid = await one_child(run.process.pid, "redis-server")
            postgres_pid = await one_child(run.process.pid, "-D ")
            os.kill(redis_pid, signal.SIGKILL)
            os.kill(postgres_pid, signal.SIGKILL)
            await one_child(run.process.pid, "redis-server", other_than=redis_pid)
            await one_child(run.process.pid, "-D ", other_than=postgres_pid)

            async def kept() -> bool:
                try:
                    return await redis.get("devstack:kept") == b"across a crash"
                except RedisError:
                    return False

            async def ready() -> bool:
                return (await client.get("/api/v1/health/ready")).status_code == 200

            await poll_until(kept, timeout=60, what="Redis back with its data")
            await poll_until(ready, timeout=60, what="the server to reach both again")
            # A pooled PostgreSQL connection from before the restart fails the one request
            # that meets it (503, "try again shortly"): a client tries again. A few times
            # only: repeated logins would meet the login rate limit.
            for _ in range(3):
                login = await client.post(
                    "/api/v1/auth/login", json={"email": email, "password": PASSWORD}
                )
                if login.status_code != 503:
                    break
                await asyncio.sleep(0.5)
            assert login.status_code == 200, login.text
    finally:
        await redis.aclose()
        code = run.stop(signal.SIGINT, timeout=60)
    assert code == 0, run.output()
    assert processes_mentioning(str(data_dir)) == []
    for name in ("redis", "postgres"):
        assert f"[gochat dev] {name} exited with code -9" in run.output()


def test_a_worker_that_cannot_start_stops_the_stack_in_one_line(
    data_dir: Path, tmp_path: Path
) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        env = dev_environment(data_dir, WORKER_METRICS_PORT=str(holder.getsockname()[1]))
        out = subprocess.run(
            [sys.executable, "-m", "gochat_py.devstack", "run"], env=env, cwd=ROOT,
            capture_output=True, text=True, timeout=180,
        )  # fmt: skip
    assert out.returncode == 1, out.stderr
    [verdict] = [line for line in out.stderr.splitlines() if "times in a row" in line]
    assert verdict.startswith("[gochat dev] worker exited with code 1 5 times in a row")
    assert out.stderr.count("[gochat dev] worker exited with code 1 after") == 4
    assert processes_mentioning(str(data_dir)) == []
    assert not port_in_use(int(env["SERVER_PORT"])), out.stderr


async def test_reload_restarts_what_changed_and_a_killed_server_comes_back(
    data_dir: Path, tmp_path: Path
) -> None:
    checkout = copy_of_the_project(tmp_path / "gochat")
    env = dev_environment(data_dir)
    argv = [sys.executable, "-m", "gochat_py.devstack", "run", "--reload"]
    run = ServerProcess(env, tmp_path / "run.log", argv, cwd=checkout)
    try:
        await run.wait_healthy(timeout=90)
        server = await one_child(run.process.pid, "-m gochat_py")
        worker = await one_child(run.process.pid, "-m worker")
        (checkout / "worker" / "reload_probe.py").write_text("PROBE = 1\n")
        await one_child(run.process.pid, "-m worker", other_than=worker)
        assert children_of(run.process.pid, "-m gochat_py") == [server]

        os.kill(server, signal.SIGKILL)
        await one_child(run.process.pid, "-m gochat_py", other_than=server)
        await run.wait_healthy(timeout=60)
    finally:
        code = run.stop(signal.SIGINT, timeout=60)
    assert code == 0, run.output()
    assert processes_mentioning(str(data_dir)) == []
    assert "[gochat dev] worker code changed; restarting" in run.output()
    assert "[gochat dev] server exited with code -9" in run.output()
    assert not port_in_use(int(env["SERVER_PORT"])), run.output()
