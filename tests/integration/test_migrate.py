from __future__ import annotations

import asyncio
import subprocess
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from gochat_py.devstack.services import LocalStack
from gochat_py.postgres import migrate

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
async def empty_database(stack: LocalStack) -> AsyncIterator[str]:
    name = f"empty_{uuid.uuid4().hex[:12]}"
    stack.postgres.create_database(name)
    yield stack.postgres.url(name)
    stack.postgres.psql(f'DROP DATABASE "{name}" WITH (FORCE)')


def schema_dump(stack: LocalStack, url: str) -> str:
    database = url.rsplit("/", 1)[1]
    out = subprocess.run(
        [str(stack.postgres.bindir / "pg_dump"), "--schema-only", "--no-owner",
         "--exclude-table=schema_migrations", "-h", "127.0.0.1", "-p", str(stack.postgres.port),
         "-U", "gochat", database],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    # \restrict lines carry a random key per dump (pg_dump ≥ 15.14); they are not schema.
    lines = [
        line
        for line in out.stdout.splitlines()
        if line and not line.startswith(("--", "\\restrict", "\\unrestrict"))
    ]
    return "\n".join(lines)


async def tables(url: str) -> set[str]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    finally:
        await conn.close()
    return {row["tablename"] for row in rows}


async def test_all_migrations_give_the_schema_in_schema_sql(
    stack: LocalStack, empty_database: str, database_url: str
) -> None:
    # database_url is a copy of the template built from schema.sql.
    await migrate.run(empty_database, "up", None)
    assert schema_dump(stack, empty_database) == schema_dump(stack, database_url)


SHIPPED = [f"{m.version:04d}_{m.name}" for m in migrate.discover()]


async def test_up_down_up_round_trips(stack: LocalStack, empty_database: str) -> None:
    assert await migrate.run(empty_database, "up", None) == [f"up {m}" for m in SHIPPED]
    after_up = schema_dump(stack, empty_database)
    assert {"users", "conversations", "conversation_members", "messages"} <= await tables(
        empty_database
    )
    downs = await migrate.run(empty_database, "down", 0)
    assert downs == [f"down {m}" for m in reversed(SHIPPED)]
    assert await tables(empty_database) == {"schema_migrations"}
    assert await migrate.run(empty_database, "up", None) == [f"up {m}" for m in SHIPPED]
    assert schema_dump(stack, empty_database) == after_up


async def test_each_migration_goes_down_to_the_one_before(
    stack: LocalStack, empty_database: str
) -> None:
    # By the versions shipped, not 1..n: a version may be missing on a branch (its number
    # is taken by work that has not landed here yet).
    versions = [m.version for m in migrate.discover()]
    dumps = []
    for version in versions:
        await migrate.run(empty_database, "up", version)
        dumps.append(schema_dump(stack, empty_database))
    for index in range(len(versions) - 2, -1, -1):
        await migrate.run(empty_database, "down", versions[index])
        assert schema_dump(stack, empty_database) == dumps[index], SHIPPED[index + 1]


async def test_a_second_run_has_nothing_to_do(empty_database: str) -> None:
    await migrate.run(empty_database, "up", None)
    assert await migrate.run(empty_database, "up", None) == []
    assert await migrate.run(empty_database, "status", None) == [f"applied {m}" for m in SHIPPED]


async def test_concurrent_runners_apply_each_migration_once(empty_database: str) -> None:
    results = await asyncio.gather(*(migrate.run(empty_database, "up", None) for _ in range(4)))
    assert sorted(len(r) for r in results) == [0, 0, 0, len(SHIPPED)]
    conn = await asyncpg.connect(empty_database)
    try:
        assert await conn.fetchval("SELECT count(*) FROM schema_migrations") == len(SHIPPED)
    finally:
        await conn.close()


async def test_down_without_a_target_is_refused(empty_database: str) -> None:
    with pytest.raises(migrate.MigrationError, match="target"):
        await migrate.run(empty_database, "down", None)


async def test_an_unknown_target_version_is_refused(empty_database: str) -> None:
    with pytest.raises(migrate.MigrationError, match="no migration"):
        await migrate.run(empty_database, "up", 99)


def test_a_migration_without_its_down_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "0001_a.up.sql").write_text("SELECT 1")
    (tmp_path / "0001_a.down.sql").write_text("SELECT 1")
    (tmp_path / "0002_b.up.sql").write_text("SELECT 1")
    with pytest.raises(migrate.MigrationError, match="0002_b"):
        migrate.discover(tmp_path)


def test_migrations_are_discovered_in_version_order_and_other_files_ignored(
    tmp_path: Path,
) -> None:
    for name in ["0010_c", "0002_b", "0001_a"]:  # written newest first
        (tmp_path / f"{name}.down.sql").write_text(f"-- down {name}")
        (tmp_path / f"{name}.up.sql").write_text(f"-- up {name}")
    for stray in ["README.md", "3_short.up.sql", "0004_Upper.up.sql", "0005_d.sideways.sql"]:
        (tmp_path / stray).write_text("SELECT 1")
    found = [(m.version, m.name, m.up, m.down) for m in migrate.discover(tmp_path)]
    assert found == [
        (1, "a", "-- up 0001_a", "-- down 0001_a"),
        (2, "b", "-- up 0002_b", "-- down 0002_b"),
        (10, "c", "-- up 0010_c", "-- down 0010_c"),
    ]


def test_the_shipped_migrations_start_at_0001_init() -> None:
    assert [(m.version, m.name) for m in migrate.discover()][:1] == [(1, "init")]
