"""Argon2id password hashing, run on worker threads so the event loop never waits on it."""

from __future__ import annotations

import asyncio

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from gochat_py.threads import background_pool


class Passwords:
    """Hashes and verifies passwords; argon2's C core releases the GIL, so threads run it in
    parallel with the loop."""

    def __init__(self, time_cost: int, memory_kib: int, parallelism: int, threads: int) -> None:
        self._hasher = PasswordHasher(
            time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism
        )
        # Bounded: each hash holds `memory_kib` of RAM, so a login storm queues here
        # instead of multiplying memory. At lower priority: logins wait, not messages.
        self._pool = background_pool(threads, "argon2")
        # Verified against when the account does not exist, so that a wrong email costs
        # as long as a wrong password and timing does not reveal which emails are taken.
        self._decoy = self._hasher.hash("decoy password, never matches")

    async def hash(self, password: str) -> str:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self._hasher.hash, password)

    async def verify(self, stored_hash: str | None, password: str) -> bool:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self._verify, stored_hash, password)

    def needs_rehash(self, stored_hash: str) -> bool:
        return self._hasher.check_needs_rehash(stored_hash)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _verify(self, stored_hash: str | None, password: str) -> bool:
        try:
            self._hasher.verify(stored_hash or self._decoy, password)
        except (VerificationError, InvalidHashError):
            return False
        return stored_hash is not None
