"""Membership's one Redis duty: announcing a change to every process."""

from __future__ import annotations

import asyncio
import uuid

from redis.asyncio import Redis

from gochat_py.direct_policy import Roster
from gochat_py.ids import ConversationId, UserId
from gochat_py.realtime.membership import Membership, MembershipChange, decode_change
from gochat_py.redis import keys


async def no_directs(user: UserId, other: UserId | None) -> list[ConversationId]:
    return []


ALICE = UserId(uuid.uuid4())
BOB = UserId(uuid.uuid4())
GROUP = ConversationId(uuid.uuid4())


async def test_an_announced_change_is_forgotten_here_watched_and_published(
    redis: Redis,
) -> None:
    table = {GROUP: frozenset({ALICE, BOB})}
    loads: list[ConversationId] = []

    async def load(conversation_id: ConversationId) -> Roster:
        loads.append(conversation_id)
        return Roster(table[conversation_id])

    membership = Membership(load, redis, no_directs)
    change = MembershipChange(GROUP, removed=[BOB])
    seen_by_watcher: list[tuple[MembershipChange, frozenset[UserId]]] = []

    async def watcher(watched: MembershipChange) -> None:
        # Before the announcement goes out: the cache here is already forgotten.
        seen_by_watcher.append((watched, await membership.members(watched.conversation_id)))

    membership.watch(watcher)
    assert await membership.members(GROUP) == {ALICE, BOB}
    table[GROUP] = frozenset({ALICE})

    async with redis.pubsub() as pubsub:
        await pubsub.subscribe(keys.MEMBERSHIP_CHANNEL)
        await membership.announce_change(change)
        async with asyncio.timeout(10):
            while True:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1)
                if message is not None:
                    break

    assert decode_change(message["data"]) == change
    assert seen_by_watcher == [(change, frozenset({ALICE}))]
    assert loads == [GROUP, GROUP]


async def test_invalidating_a_pair_forgets_their_direct_conversation_here_and_publishes_it(
    redis: Redis,
) -> None:
    direct = ConversationId(uuid.uuid4())
    loads: list[ConversationId] = []
    asked: list[tuple[UserId, UserId | None]] = []

    async def load(conversation_id: ConversationId) -> Roster:
        loads.append(conversation_id)
        return Roster(frozenset({ALICE, BOB}))

    async def directs_of(user: UserId, other: UserId | None) -> list[ConversationId]:
        asked.append((user, other))
        return [direct]

    membership = Membership(load, redis, directs_of)
    await membership.members(direct)
    async with redis.pubsub() as pubsub:
        await pubsub.subscribe(keys.MEMBERSHIP_CHANNEL)
        await membership.invalidate_direct_between(ALICE, BOB)
        async with asyncio.timeout(10):
            while (
                message := await pubsub.get_message(ignore_subscribe_messages=True, timeout=1)
            ) is None:
                pass
    # Nobody joined or left: other processes forget the conversation and move no routes.
    assert decode_change(message["data"]) == MembershipChange(direct)
    assert asked == [(ALICE, BOB)]
    await membership.members(direct)
    assert loads == [direct, direct]


async def test_announcing_routes_here_on_entry_and_tells_other_processes_on_exit(
    redis: Redis,
) -> None:
    async def load(conversation_id: ConversationId) -> Roster:
        return Roster(frozenset({ALICE, BOB}))

    membership = Membership(load, redis, no_directs)
    watched: list[MembershipChange] = []

    async def watcher(change: MembershipChange) -> None:
        watched.append(change)

    membership.watch(watcher)
    changes = [MembershipChange(ConversationId(uuid.uuid4()), added=[ALICE, BOB]) for _ in range(3)]
    async with redis.pubsub() as pubsub:
        await pubsub.subscribe(keys.MEMBERSHIP_CHANNEL)
        await pubsub.get_message(timeout=1)  # the subscribe confirmation
        async with membership.announcing(changes):
            assert watched == changes
            # Nothing published yet: its echo would make this process forget the rosters.
            assert await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.2) is None
        published = []
        async with asyncio.timeout(10):
            while len(published) < 3:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1)
                if message is not None:
                    published.append(decode_change(message["data"]))
    assert published == changes
