from __future__ import annotations

import asyncio

from gochat_py.usecases.passwords import Passwords


async def test_hashing_runs_off_the_event_loop() -> None:
    # Expensive on purpose: a hash on the loop thread would stop the ticker for its duration.
    passwords = Passwords(time_cost=3, memory_kib=32768, parallelism=1, threads=1)
    ticks = 0
    stop = asyncio.Event()

    async def ticker() -> None:
        nonlocal ticks
        while not stop.is_set():
            ticks += 1
            await asyncio.sleep(0)

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0)
    before = ticks
    stored = await passwords.hash("a password long enough")
    during = ticks - before
    stop.set()
    await task
    passwords.close()
    assert during > 10, f"the loop ticked {during} times while hashing"
    assert stored.startswith("$argon2id$")


async def test_verify_accepts_the_password_and_refuses_others() -> None:
    passwords = Passwords(time_cost=1, memory_kib=1024, parallelism=1, threads=1)
    stored = await passwords.hash("right password")
    assert await passwords.verify(stored, "right password")
    assert not await passwords.verify(stored, "wrong password")
    assert not await passwords.verify(None, "right password")
    assert not await passwords.verify("not a hash", "right password")
    passwords.close()
