from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterable

import msgspec
import pytest
from redis.asyncio import Redis

from gochat_py.direct_policy import Blocked, NotAContact, Refusal, Roster
from gochat_py.errors import NotFound
from gochat_py.ids import ConversationId, UserId
from gochat_py.realtime.membership import (
    CACHE_MAX_CONVERSATIONS,
    CACHE_TTL,
    Membership,
    MembershipChange,
    NotAMember,
    decode_change,
)

ALICE = UserId(uuid.UUID("0192f0c8-7b3a-7c4e-9a1b-000000000001"))
BOB = UserId(uuid.UUID("0192f0c8-7b3a-7c4e-9a1b-000000000002"))
CAROL = UserId(uuid.UUID("0192f0c8-7b3a-7c4e-9a1b-000000000003"))
GROUP = ConversationId(uuid.UUID("0192f0c8-7b3a-7c4e-9a1b-00000000000a"))
OTHER = ConversationId(uuid.UUID("0192f0c8-7b3a-7c4e-9a1b-00000000000b"))


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class DatabaseDown(Exception):
    pass


class Members:
    """PostgreSQL's answer to "who is in this conversation", as the test sets it."""

    def __init__(self) -> None:
        self.table: dict[ConversationId, Roster] = {}
        self.loads: list[ConversationId] = []
        self.down = False
        self.gate: asyncio.Event | None = None  # set: loads wait for it

    def set(
        self,
        conversation_id: ConversationId,
        users: Iterable[UserId],
        refused: dict[UserId, Refusal] | None = None,
    ) -> None:
        self.table[conversation_id] = Roster(frozenset(users), refused or {})

    async def load(self, conversation_id: ConversationId) -> Roster:
        self.loads.append(conversation_id)
        answer = self.table.get(conversation_id, Roster(frozenset()))
        if self.gate is not None:
            await self.gate.wait()
        if self.down:
            raise DatabaseDown()
        return answer


async def no_directs(user: UserId, other: UserId | None) -> list[ConversationId]:
    raise AssertionError("only invalidate_direct_* asks, and these tests do not")


@pytest.fixture
async def unused_redis() -> AsyncIterator[Redis]:
    """Typed as the real client and never contacted: only announce_change publishes, and
    tests/integration/test_membership.py covers it. Port 1 refuses, should one slip through."""
    client = Redis(host="127.0.0.1", port=1)
    yield client
    await client.aclose()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def members() -> Members:
    table = Members()
    table.set(GROUP, [ALICE, BOB])
    return table


@pytest.fixture
def membership(members: Members, unused_redis: Redis, clock: Clock) -> Membership:
    return Membership(members.load, unused_redis, no_directs, clock=clock)


async def test_the_first_ask_loads_the_members(membership: Membership, members: Members) -> None:
    assert await membership.members(GROUP) == {ALICE, BOB}
    assert members.loads == [GROUP]


async def test_within_the_ttl_the_cache_answers_without_loading(
    membership: Membership, members: Members, clock: Clock
) -> None:
    await membership.members(GROUP)
    members.set(GROUP, [ALICE, BOB, CAROL])
    clock.advance(CACHE_TTL - 0.001)
    assert await membership.members(GROUP) == {ALICE, BOB}
    assert members.loads == [GROUP]


async def test_at_the_ttl_the_members_are_loaded_again(
    membership: Membership, members: Members, clock: Clock
) -> None:
    await membership.members(GROUP)
    members.set(GROUP, [ALICE, BOB, CAROL])
    clock.advance(CACHE_TTL)
    assert await membership.members(GROUP) == {ALICE, BOB, CAROL}
    assert members.loads == [GROUP, GROUP]


async def test_a_reload_starts_a_new_ttl(
    membership: Membership, members: Members, clock: Clock
) -> None:
    await membership.members(GROUP)
    clock.advance(CACHE_TTL)
    await membership.members(GROUP)
    clock.advance(CACHE_TTL - 0.001)
    await membership.members(GROUP)
    assert members.loads == [GROUP, GROUP]


async def test_an_unknown_conversation_is_not_cached(
    membership: Membership, members: Members
) -> None:
    assert await membership.members(OTHER) == frozenset()
    members.set(OTHER, [CAROL])  # created meanwhile: the earlier miss must not hide it
    assert await membership.members(OTHER) == {CAROL}
    assert members.loads == [OTHER, OTHER]


async def test_conversations_are_cached_apart(membership: Membership, members: Members) -> None:
    members.set(OTHER, [CAROL])
    assert await membership.members(GROUP) == {ALICE, BOB}
    assert await membership.members(OTHER) == {CAROL}
    assert await membership.members(GROUP) == {ALICE, BOB}
    assert members.loads == [GROUP, OTHER]


async def test_require_returns_the_members_to_a_member(membership: Membership) -> None:
    assert await membership.require(GROUP, BOB) == {ALICE, BOB}


async def test_require_refuses_a_non_member_as_not_found(membership: Membership) -> None:
    with pytest.raises(NotAMember) as caught:
        await membership.require(GROUP, CAROL)
    assert isinstance(caught.value, NotFound)
    assert (caught.value.status, caught.value.code) == (404, "conversation_not_found")


async def test_require_refuses_an_unknown_conversation_the_same_way(
    membership: Membership,
) -> None:
    with pytest.raises(NotAMember) as caught:
        await membership.require(OTHER, ALICE)
    assert caught.value.code == "conversation_not_found"


async def test_require_sender_passes_a_member_the_conversation_does_not_refuse(
    membership: Membership, members: Members
) -> None:
    members.set(GROUP, [ALICE, BOB], refused={BOB: NotAContact})
    assert await membership.require_sender(GROUP, ALICE) == {ALICE, BOB}


@pytest.mark.parametrize("reason", [Blocked, NotAContact])
async def test_require_sender_refuses_a_refused_member_with_the_reason_but_require_does_not(
    membership: Membership, members: Members, reason: Refusal
) -> None:
    members.set(GROUP, [ALICE, BOB], refused={ALICE: reason})
    with pytest.raises(reason) as refused:
        await membership.require_sender(GROUP, ALICE)
    assert refused.value.status == 403
    assert await membership.require(GROUP, ALICE) == {ALICE, BOB}  # reading stays allowed


async def test_require_sender_answers_from_the_cache_without_loading_again(
    membership: Membership, members: Members
) -> None:
    members.set(GROUP, [ALICE, BOB], refused={BOB: Blocked})
    for _ in range(3):
        await membership.require_sender(GROUP, ALICE)
        with pytest.raises(Blocked):
            await membership.require_sender(GROUP, BOB)
    assert members.loads == [GROUP]


async def test_a_load_overtaken_by_an_invalidation_is_answered_but_not_cached(
    membership: Membership, members: Members
) -> None:
    members.set(GROUP, [ALICE, BOB])
    members.gate = asyncio.Event()
    loading = asyncio.create_task(membership.members(GROUP))
    while not members.loads:
        await asyncio.sleep(0)
    # The change commits and is announced while the load's answer is on its way.
    members.set(GROUP, [ALICE])
    membership.invalidate(GROUP)
    members.gate.set()
    assert await loading == {ALICE, BOB}
    assert await membership.members(GROUP) == {ALICE}
    assert members.loads == [GROUP, GROUP]


async def test_require_sender_refuses_a_non_member_as_not_found(membership: Membership) -> None:
    with pytest.raises(NotAMember):
        await membership.require_sender(GROUP, CAROL)


async def test_invalidate_forgets_one_conversation_only(
    membership: Membership, members: Members
) -> None:
    members.set(OTHER, [CAROL])
    await membership.members(GROUP)
    await membership.members(OTHER)
    members.set(GROUP, [ALICE])
    membership.invalidate(GROUP)
    assert await membership.members(GROUP) == {ALICE}
    assert await membership.members(OTHER) == {CAROL}
    assert members.loads == [GROUP, OTHER, GROUP]


async def test_invalidating_an_uncached_conversation_is_harmless(
    membership: Membership,
) -> None:
    membership.invalidate(OTHER)
    assert await membership.members(GROUP) == {ALICE, BOB}


async def test_invalidate_all_forgets_every_conversation(
    membership: Membership, members: Members
) -> None:
    members.set(OTHER, [CAROL])
    await membership.members(GROUP)
    await membership.members(OTHER)
    membership.invalidate_all()
    await membership.members(GROUP)
    await membership.members(OTHER)
    assert members.loads == [GROUP, OTHER, GROUP, OTHER]


async def test_while_postgres_is_down_a_cached_set_is_served_past_its_ttl(
    membership: Membership, members: Members, clock: Clock
) -> None:
    await membership.members(GROUP)
    members.down = True
    clock.advance(CACHE_TTL * 10)
    assert await membership.members(GROUP) == {ALICE, BOB}
    assert await membership.require(GROUP, BOB) == {ALICE, BOB}
    assert members.loads == [GROUP, GROUP, GROUP]  # each ask still tries PostgreSQL first


async def test_once_postgres_is_back_the_stale_set_is_replaced(
    membership: Membership, members: Members, clock: Clock
) -> None:
    await membership.members(GROUP)
    members.down = True
    clock.advance(CACHE_TTL)
    await membership.members(GROUP)
    members.down = False
    members.set(GROUP, [ALICE])
    assert await membership.members(GROUP) == {ALICE}
    clock.advance(CACHE_TTL - 0.001)
    members.down = True
    assert await membership.members(GROUP) == {ALICE}
    assert len(members.loads) == 3  # the fresh set is cached for a whole TTL again


async def test_while_postgres_is_down_an_uncached_conversation_fails(
    membership: Membership, members: Members
) -> None:
    members.down = True
    with pytest.raises(DatabaseDown):
        await membership.members(GROUP)
    with pytest.raises(DatabaseDown):
        await membership.require(GROUP, ALICE)


async def test_an_invalidated_conversation_has_nothing_stale_to_serve(
    membership: Membership, members: Members
) -> None:
    await membership.members(GROUP)
    membership.invalidate(GROUP)
    members.down = True
    with pytest.raises(DatabaseDown):
        await membership.members(GROUP)


async def test_past_the_bound_the_least_recently_used_conversation_goes(
    membership: Membership, members: Members
) -> None:
    ids = [ConversationId(uuid.UUID(int=i + 1)) for i in range(CACHE_MAX_CONVERSATIONS + 1)]
    for conversation_id in ids:
        members.set(conversation_id, [ALICE])
    for conversation_id in ids[:CACHE_MAX_CONVERSATIONS]:
        await membership.members(conversation_id)
    await membership.members(ids[0])  # used again: now ids[1] is the least recent
    await membership.members(ids[-1])  # one over the bound
    members.loads.clear()
    await membership.members(ids[0])
    await membership.members(ids[2])
    await membership.members(ids[-1])
    assert members.loads == []
    await membership.members(ids[1])
    assert members.loads == [ids[1]]


def test_a_change_decodes_from_its_json() -> None:
    payload = msgspec.json.encode(MembershipChange(GROUP, added=[CAROL], removed=[BOB]))
    assert decode_change(payload) == MembershipChange(GROUP, added=[CAROL], removed=[BOB])


def test_a_change_without_lists_decodes_with_empty_ones() -> None:
    assert decode_change(f'{{"conversation_id": "{GROUP}"}}'.encode()) == MembershipChange(GROUP)


@pytest.mark.parametrize("payload", [b"", b"{", b'{"conversation_id": 7}', b"[]", b"\xff"])
def test_a_change_this_version_cannot_read_raises_decode_error(payload: bytes) -> None:
    with pytest.raises(msgspec.DecodeError):
        decode_change(payload)


class ManyMembers(Members):
    """The same table, also answering for many conversations in one load."""

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[list[ConversationId]] = []

    async def load_many(self, ids: list[ConversationId]) -> dict[ConversationId, Roster]:
        self.batches.append(ids)
        if self.gate is not None:
            await self.gate.wait()
        return {c: self.table[c] for c in ids if c in self.table}


@pytest.fixture
def many() -> ManyMembers:
    table = ManyMembers()
    table.set(GROUP, [ALICE, BOB])
    table.set(OTHER, [ALICE, CAROL], {ALICE: Blocked})
    return table


async def test_preload_caches_the_conversations_missing_in_one_load(
    many: ManyMembers, unused_redis: Redis, clock: Clock
) -> None:
    membership = Membership(many.load, unused_redis, no_directs, clock, many.load_many)
    await membership.members(GROUP)
    unknown = ConversationId(uuid.uuid4())
    await membership.preload([GROUP, OTHER, unknown])
    assert many.batches == [[OTHER, unknown]]  # GROUP was cached already
    assert await membership.require_sender(GROUP, BOB) == {ALICE, BOB}
    with pytest.raises(Blocked):
        await membership.require_sender(OTHER, ALICE)
    assert many.loads == [GROUP]  # both answered from the cache
    await membership.preload([GROUP, OTHER])
    assert len(many.batches) == 1


async def test_a_preload_overtaken_by_an_invalidation_caches_nothing(
    many: ManyMembers, unused_redis: Redis, clock: Clock
) -> None:
    membership = Membership(many.load, unused_redis, no_directs, clock, many.load_many)
    many.gate = asyncio.Event()
    preloading = asyncio.create_task(membership.preload([GROUP]))
    await asyncio.sleep(0)
    membership.invalidate(GROUP)  # a change committed while the load read the old table
    many.set(GROUP, [ALICE])
    many.gate.set()
    await preloading
    with pytest.raises(NotAMember):
        await membership.require(GROUP, BOB)
    assert many.loads == [GROUP]


async def test_without_a_bulk_loader_preload_loads_each_conversation(
    membership: Membership, members: Members
) -> None:
    members.set(OTHER, [CAROL])
    await membership.preload([GROUP, OTHER])
    assert members.loads == [GROUP, OTHER]
    assert await membership.members(OTHER) == {CAROL}
    assert members.loads == [GROUP, OTHER]
