"""The presence scripts in Redis: each transition is reported to exactly one caller."""

from __future__ import annotations

import asyncio
import uuid

from redis.asyncio import Redis

from gochat_py.ids import UserId
from gochat_py.redis import keys
from gochat_py.redis.presence import PresenceStore

TTL = 30.0
NOW = 1_800_000_000_000  # unix ms; the scripts take the time from their caller


def a_user() -> UserId:
    return UserId(uuid.uuid4())


async def test_only_the_first_socket_brings_a_user_online_and_only_the_last_takes_them_off(
    redis: Redis,
) -> None:
    store, bob = PresenceStore(redis, TTL), a_user()
    assert await store.connect(bob, ["phone"], NOW) is True
    assert await store.connect(bob, ["laptop"], NOW + 1) is False
    assert await store.disconnect(bob, "phone", NOW + 2) is False
    assert (await store.states([bob], NOW + 2))[bob].online
    assert await store.disconnect(bob, "laptop", NOW + 3) is True
    assert await store.disconnect(bob, "laptop", NOW + 4) is False  # closed twice: once
    state = (await store.states([bob], NOW + 5))[bob]
    assert (state.online, state.seen) == (False, NOW + 3)


async def test_of_concurrent_sweeps_exactly_one_takes_the_last_expired_socket(
    redis: Redis,
) -> None:
    store, bob = PresenceStore(redis, TTL), a_user()
    await store.connect(bob, ["a", "b"], NOW)
    later = NOW + int(TTL * 1000) + 1
    assert await store.due(later, 10) == [bob]
    swept = await asyncio.gather(*(store.sweep(bob, later) for _ in range(5)))
    assert sorted(swept) == [False] * 4 + [True]
    # The process that held the socket closes it late: the sweeper already announced it.
    assert await store.disconnect(bob, "a", later + 1) is False


async def test_a_sweep_leaves_live_sockets_and_announces_nothing(redis: Redis) -> None:
    store, bob = PresenceStore(redis, TTL), a_user()
    await store.connect(bob, ["dead"], NOW)
    await store.connect(bob, ["alive"], NOW + 20_000)
    assert await store.sweep(bob, NOW + int(TTL * 1000) + 1) is False
    assert (await store.states([bob], NOW + int(TTL * 1000) + 1))[bob].online


async def test_a_refresh_brings_back_sockets_a_sweep_took_and_says_whose(redis: Redis) -> None:
    store, bob, carol = PresenceStore(redis, TTL), a_user(), a_user()
    await store.connect(bob, ["phone"], NOW)
    await store.connect(carol, ["tablet"], NOW)
    later = NOW + int(TTL * 1000) + 1
    assert await store.sweep(bob, later) is True
    back = await store.refresh({bob: ["phone"], carol: ["tablet"]}, later - 1000)
    assert back == [bob]
    assert (await store.states([bob], later))[bob].online


async def test_the_index_keeps_a_user_whose_deadline_was_raised_since_the_sweep(
    redis: Redis,
) -> None:
    store, bob = PresenceStore(redis, TTL), a_user()
    await store.connect(bob, ["phone"], NOW)
    later = NOW + int(TTL * 1000) + 1
    assert await store.due(later, 10) == [bob]
    await store.connect(bob, ["laptop"], later)  # between the sweep's read and its cleanup
    await store.unindex(bob, later)
    assert await redis.zscore(keys.PRESENCE_DEADLINES, str(bob)) is not None
    await store.unindex(bob, later + int(TTL * 1000) + 1)
    assert await redis.zscore(keys.PRESENCE_DEADLINES, str(bob)) is None


def test_a_users_presence_keys_share_one_hash_tag() -> None:
    bob = a_user()
    tag = f"{{{bob}}}"
    assert tag in keys.presence(bob) and tag in keys.presence_seen(bob)
    assert keys.presence(bob).count("{") == keys.presence_seen(bob).count("{") == 1
