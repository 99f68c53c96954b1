"""Demo data for a local stack: three users, a direct conversation and a group."""

from __future__ import annotations

import uuid

import asyncpg

from gochat_py.settings import Settings
from gochat_py.usecases.passwords import Passwords

DEMO_PASSWORD = "password123"
DEMO_USERS = ("alice", "bob", "carol")
# Fixed ids so that running the seed twice changes nothing.
_NAMESPACE = uuid.UUID("6f1b437b-00df-4d9b-8000-000000000000")


def demo_id(name: str) -> uuid.UUID:
    return uuid.uuid5(_NAMESPACE, name)


async def run(settings: Settings) -> list[str]:
    passwords = Passwords(
        settings.argon2_time_cost, settings.argon2_memory_kib, settings.argon2_parallelism, 1
    )
    password_hash = await passwords.hash(DEMO_PASSWORD)
    passwords.close()
    conn = await asyncpg.connect(settings.database_url)
    try:
        async with conn.transaction():
            for name in DEMO_USERS:
                await conn.execute(
                    "INSERT INTO users (id, email, username, password_hash) VALUES ($1, $2, $3, $4)"
                    " ON CONFLICT DO NOTHING",
                    demo_id(name),
                    f"{name}@example.com",
                    name,
                    password_hash,
                )
            alice, bob, carol = (demo_id(n) for n in DEMO_USERS)
            low, high = sorted((alice, bob))
            direct, group = demo_id("conversation:alice+bob"), demo_id("conversation:demo")
            await conn.execute(
                "INSERT INTO conversations"
                " (id, kind, created_by, direct_user_low, direct_user_high)"
                " VALUES ($1, 'direct', $2, $3, $4) ON CONFLICT DO NOTHING",
                direct, alice, low, high,
            )  # fmt: skip
            await conn.execute(
                "INSERT INTO conversations (id, kind, name, created_by)"
                " VALUES ($1, 'group', 'Demo group', $2) ON CONFLICT DO NOTHING",
                group, alice,
            )  # fmt: skip
            members = [(direct, alice, "owner"), (direct, bob, "member"), (group, alice, "owner"),
                       (group, bob, "member"), (group, carol, "member")]  # fmt: skip
            await conn.executemany(
                "INSERT INTO conversation_members (conversation_id, user_id, role)"
                " VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                members,
            )
    finally:
        await conn.close()
    return [
        f"user {name}@example.com / {DEMO_PASSWORD}  id {demo_id(name)}" for name in DEMO_USERS
    ] + [f"conversation direct alice+bob {direct}", f"conversation group 'Demo group' {group}"]
