"""Membership's one Redis duty: announcing a change to every process."""

from __future__ import annotations

import asyncio
import uuid

import msgspec
from redis.asyncio import Redis

from gochat_py.direct_policy import Roster
from gochat_py.ids import ConversationId, UserId
from gochat_py.metrics import Metrics
from gochat_py.realtime.hub import Hub
from gochat_py.realtime.membership import Membership, MembershipChange, decode_change
from gochat_py.realtime.revocation import Revocations
from gochat_py.redis import keys
from gochat_py.redis.sessions import Sessions
from tests.harness import poll_until


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

    # Stamped with this process, which ignores the echo: it applied the change already.
    assert decode_change(message["data"]) == msgspec.structs.replace(
        change, origin=membership.origin
    )
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
    assert decode_change(message["data"]) == MembershipChange(direct, origin=membership.origin)
    assert asked == [(ALICE, BOB)]
    await membership.members(direct)
    assert loads == [direct, direct]


async def test_announcing_many_routes_here_then_tells_other_processes_in_one_round_trip(
    redis: Redis,
) -> None:
    async def load(conversation_id: ConversationId) -> Roster:
        return Roster(frozenset({ALICE, BOB}))

    membership = Membership(load, redis, no_directs)
    watched: list[MembershipChange] = []
    published: list[MembershipChange] = []

    async def watcher(change: MembershipChange) -> None:
        watched.append(change)

    membership.watch(watcher)
    changes = [MembershipChange(ConversationId(uuid.uuid4()), added=[ALICE, BOB]) for _ in range(3)]
    async with redis.pubsub() as pubsub:
        await pubsub.subscribe(keys.MEMBERSHIP_CHANNEL)
        await pubsub.get_message(timeout=1)  # the subscribe confirmation
        await membership.announce_changes(changes)
        # Done when it returns: the other processes' news is out before any send there.
        assert watched == changes
        async with asyncio.timeout(10):
            while len(published) < 3:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1)
                if message is not None:
                    published.append(decode_change(message["data"]))
    assert published == [msgspec.structs.replace(c, origin=membership.origin) for c in changes]
    assert all(membership.is_own(change) for change in published)
    assert not membership.is_own(changes[0])  # another process's change: no origin of ours


async def test_the_echo_of_its_own_change_leaves_a_processs_cache_but_anothers_empties_it(
    redis: Redis,
) -> None:
    loads: list[ConversationId] = []

    async def load(conversation_id: ConversationId) -> Roster:
        loads.append(conversation_id)
        return Roster(frozenset({ALICE, BOB}))

    async def nobody(users: list[UserId]) -> dict[UserId, list[ConversationId]]:
        return {}

    here, elsewhere = Membership(load, redis, no_directs), Membership(load, redis, no_directs)
    hub = Hub(redis, here, Metrics(), nobody, 1, Revocations(Sessions(redis, 60.0)))
    await hub.start()

    async def heard_from_elsewhere(conversation_id: ConversationId) -> None:
        """Another process changes the conversation; wait until this hub has read it."""
        await here.members(conversation_id)
        loaded = loads.count(conversation_id)
        await elsewhere.announce_change(MembershipChange(conversation_id, added=[ALICE]))

        async def forgotten() -> bool:
            await here.members(conversation_id)
            return loads.count(conversation_id) > loaded

        await poll_until(forgotten, what="the other process's change to arrive")

    try:
        await heard_from_elsewhere(ConversationId(uuid.uuid4()))  # the hub is subscribed
        own = ConversationId(uuid.uuid4())
        await here.announce_change(MembershipChange(own, added=[ALICE, BOB]))
        # Loaded after the announcement, as a broadcast preloads its new conversations;
        # then the echo, which may come back this late (published here as it would be).
        await here.members(own)
        echo = MembershipChange(own, added=[ALICE, BOB], origin=here.origin)
        await redis.publish(keys.MEMBERSHIP_CHANNEL, msgspec.json.encode(echo))
        # Published after the echo, on the one channel: once read, the echo was read too.
        await heard_from_elsewhere(ConversationId(uuid.uuid4()))
        await here.members(own)
        assert loads.count(own) == 1  # still cached: its own echo forgot nothing
    finally:
        await hub.stop()
