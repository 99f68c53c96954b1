"""Versioned SQL migrations: `NNNN_name.up.sql` / `NNNN_name.down.sql`, applied in order.

`python -m gochat_py.postgres.migrate up [VERSION]` | `down VERSION` | `status`,
against DATABASE_URL.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
from pathlib import Path

import asyncpg
import msgspec

MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "database" / "migrations"
# Any constant works; it only has to be the same in every process that migrates.
ADVISORY_LOCK_KEY = 0x6C_6F_63_68_61_74  # "lochat"
_FILE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.(up|down)\.sql$")


class Migration(msgspec.Struct, frozen=True):
    version: int
    name: str
    up: str
    down: str


class MigrationError(RuntimeError):
    pass


def discover(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """Every migration in `directory`; each version needs an up and a down file."""
    found: dict[int, dict[str, str]] = {}
    for path in sorted(directory.iterdir()):
        match = _FILE.match(path.name)
        if not match:
            continue
        version, name, direction = int(match.group(1)), match.group(2), match.group(3)
        entry = found.setdefault(version, {"name": name})
        if entry["name"] != name:
            raise MigrationError(f"version {version} has two names: {entry['name']}, {name}")
        entry[direction] = path.read_text()
    migrations = []
    for version in sorted(found):
        entry = found[version]
        if "up" not in entry or "down" not in entry:
            raise MigrationError(
                f"migration {version:04d}_{entry['name']} needs .up.sql and .down.sql"
            )
        migrations.append(Migration(version, entry["name"], entry["up"], entry["down"]))
    return migrations


async def applied_versions(conn: asyncpg.Connection) -> list[int]:
    await conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version integer PRIMARY KEY, name text NOT NULL,"
        " applied_at timestamptz NOT NULL DEFAULT now())"
    )
    rows = await conn.fetch("SELECT version FROM schema_migrations ORDER BY version")
    return [row["version"] for row in rows]


async def migrate(
    conn: asyncpg.Connection,
    direction: str,
    target: int | None = None,
    migrations: list[Migration] | None = None,
) -> list[str]:
    """Bring the database up to `target` (default: latest) or down to it; return what ran.

    A session advisory lock serialises concurrent runners: the second waits, then finds
    nothing left to do.
    """
    migrations = discover() if migrations is None else migrations
    known = {m.version for m in migrations}
    if target is not None and target != 0 and target not in known:
        raise MigrationError(f"no migration with version {target}")
    done: list[str] = []
    await conn.execute("SELECT pg_advisory_lock($1)", ADVISORY_LOCK_KEY)
    try:
        applied = set(await applied_versions(conn))
        if direction == "up":
            for m in migrations:
                if m.version in applied or (target is not None and m.version > target):
                    continue
                async with conn.transaction():
                    await conn.execute(m.up)
                    await conn.execute(
                        "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                        m.version,
                        m.name,
                    )
                done.append(f"up {m.version:04d}_{m.name}")
        elif direction == "down":
            if target is None:
                raise MigrationError("down needs a target VERSION (0 reverts everything)")
            for m in reversed(migrations):
                if m.version not in applied or m.version <= target:
                    continue
                async with conn.transaction():
                    await conn.execute(m.down)
                    await conn.execute(
                        "DELETE FROM schema_migrations WHERE version = $1", m.version
                    )
                done.append(f"down {m.version:04d}_{m.name}")
        else:
            raise MigrationError(f"unknown direction {direction!r}: use up or down")
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", ADVISORY_LOCK_KEY)
    return done


async def run(database_url: str, direction: str, target: int | None) -> list[str]:
    conn = await asyncpg.connect(database_url)
    try:
        if direction == "status":
            applied = set(await applied_versions(conn))
            return [
                f"{'applied' if m.version in applied else 'pending'} {m.version:04d}_{m.name}"
                for m in discover()
            ]
        return await migrate(conn, direction, target)
    finally:
        await conn.close()


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("up", "down", "status"):
        sys.stderr.write(
            "usage: python -m gochat_py.postgres.migrate up [VERSION] | down VERSION | status\n"
        )
        return 2
    database_url = os.environ.get("DATABASE_URL")
    if not database_url:
        sys.stderr.write("DATABASE_URL: not set\n")
        return 2
    target = int(argv[1]) if len(argv) > 1 and argv[1] != "" else None
    try:
        lines = asyncio.run(run(database_url, argv[0], target))
    except (MigrationError, asyncpg.PostgresError, OSError) as exc:
        sys.stderr.write(f"migrate: {exc}\n")
        return 1
    sys.stdout.write("\n".join(lines or ["nothing to do"]) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
