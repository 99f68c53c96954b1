"""Membership's one Redis duty: announcing a change to every process."""

from __future__ import annotations

import asyncio
import uuid

from redis.asyncio import Redis

from gochat_py.ids import ConversationId, UserId
from gochat_py.realtime.membership import Membership, MembershipChange, decode_change
from gochat_py.redis import keys

ALICE = UserId(uuid.uuid4())
BOB = UserId(uuid.uuid4())
GROUP = ConversationId(uuid.uuid4())


async def test_an_announced_change_is_forgotten_here_watched_and_published(
    redis: Redis,
) -> None:
    table = {GROUP: frozenset({ALICE, BOB})}
    loads: list[ConversationId] = []

    async def load(conversation_id: ConversationId) -> frozenset[UserId]:
        loads.append(conversation_id)
        return table[conversation_id]

    membership = Membership(load, redis)
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
