"""Who belongs to a conversation and, in a direct one, who of the two may send there now,
cached per process and invalidated across all of them.

A send is authorized from this cache alone (no round trip per message), so the direct
conversation's permission travels with its members: whatever changes it (a block or
unblock, a friendship made or ended, a `dm_policy` change) invalidates the conversation on
every process, like a join or a leave does.
"""

from __future__ import annotations

import time
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable

import msgspec
from redis.asyncio import Redis

from gochat_py.direct_policy import Roster, refuse
from gochat_py.errors import NotFound
from gochat_py.ids import ConversationId, UserId
from gochat_py.redis import keys

# Invalidations travel over pub/sub, which can drop them during a reconnect; the TTL bounds
# how long a missed one can keep a removed member sending.
CACHE_TTL = 60.0
CACHE_MAX_CONVERSATIONS = 100_000  # about 10 MB of member sets; least recently used go first


class MembershipChange(msgspec.Struct, frozen=True):
    """Who joined or left a conversation; announced to every process."""

    conversation_id: ConversationId
    added: list[UserId] = []
    removed: list[UserId] = []
    # The announcing process (Membership.origin), set as it is published: that process
    # forgot the conversation as it announced, and does not again at the echo.
    origin: str = ""


# The direct conversations of a user (with one other user only, when given).
DirectsOf = Callable[[UserId, UserId | None], Awaitable[list[ConversationId]]]
ChangeWatcher = Callable[[MembershipChange], Awaitable[None]]
# The rosters of many conversations in one load (an unknown id: absent).
LoadMany = Callable[[list[ConversationId]], Awaitable[dict[ConversationId, Roster]]]
_change_decoder = msgspec.json.Decoder(MembershipChange)


def decode_change(payload: bytes) -> MembershipChange:
    """Raises msgspec.DecodeError on a payload this version does not understand."""
    return _change_decoder.decode(payload)


class NotAMember(NotFound):
    """Not found, whether it does not exist or the caller is not in it: members only."""

    code = "conversation_not_found"


class Membership:
    def __init__(
        self,
        load: Callable[[ConversationId], Awaitable[Roster]],
        redis: Redis,
        directs_of: DirectsOf,
        clock: Callable[[], float] = time.monotonic,
        load_many: LoadMany | None = None,
    ) -> None:
        """`load_many`: the rosters of many conversations at once, for `preload`; without
        it, each conversation preloaded is loaded on its own."""
        self._load = load
        self._load_many = load_many or self._load_each
        self._redis = redis
        self._directs_of = directs_of
        self._clock = clock
        self._cache: OrderedDict[ConversationId, tuple[float, Roster]] = OrderedDict()
        # Counts invalidations: a load that one overtook read PostgreSQL before the change
        # may have committed, so its answer is used once but not cached.
        self._invalidations = 0
        self._watchers: list[ChangeWatcher] = []
        self.origin = uuid.uuid4().hex  # names this process's announcements

    async def members(self, conversation_id: ConversationId) -> frozenset[UserId]:
        return (await self._roster(conversation_id)).members

    async def _roster(self, conversation_id: ConversationId) -> Roster:
        cached = self._cache.get(conversation_id)
        now = self._clock()
        if cached is not None and cached[0] > now:
            self._cache.move_to_end(conversation_id)
            return cached[1]
        invalidations = self._invalidations
        try:
            roster = await self._load(conversation_id)
        except Exception:
            # Stale beats failing: while PostgreSQL is away, known conversations keep
            # working with the members they had.
            if cached is None:
                raise
            return cached[1]
        if self._invalidations == invalidations:
            self._remember(conversation_id, roster, now)
        return roster

    async def preload(self, conversation_ids: Iterable[ConversationId]) -> None:
        """Cache the rosters of those of `conversation_ids` not cached, in one load: a burst
        of sends into many conversations (a broadcast) then asks only the cache."""
        now = self._clock()
        missing = [c for c in conversation_ids if not self._fresh(c, now)]
        if not missing:
            return
        invalidations = self._invalidations
        rosters = await self._load_many(missing)
        if self._invalidations != invalidations:
            return  # a change overtook the load: each conversation loads again when asked
        for conversation_id, roster in rosters.items():
            self._remember(conversation_id, roster, now)

    def _fresh(self, conversation_id: ConversationId, now: float) -> bool:
        cached = self._cache.get(conversation_id)
        return cached is not None and cached[0] > now

    def _remember(self, conversation_id: ConversationId, roster: Roster, now: float) -> None:
        if roster.members:  # unknown ids are not cached: a later create must not be shadowed
            self._cache[conversation_id] = (now + CACHE_TTL, roster)
            self._cache.move_to_end(conversation_id)
            while len(self._cache) > CACHE_MAX_CONVERSATIONS:
                self._cache.popitem(last=False)

    async def _load_each(
        self, conversation_ids: list[ConversationId]
    ) -> dict[ConversationId, Roster]:
        return {c: await self._load(c) for c in conversation_ids}

    async def require(self, conversation_id: ConversationId, user: UserId) -> frozenset[UserId]:
        """The members, if `user` is one of them; NotAMember otherwise."""
        members = await self.members(conversation_id)
        if user not in members:
            raise NotAMember("conversation not found")
        return members

    async def require_sender(
        self, conversation_id: ConversationId, user: UserId
    ) -> frozenset[UserId]:
        """The members, if `user` is one of them and may send there now: NotAMember, or the
        direct conversation's refusal (`blocked`, `not_a_contact`) otherwise. Reading stays
        allowed to a refused member: `require` does not ask."""
        roster = await self._roster(conversation_id)
        if user not in roster.members:
            raise NotAMember("conversation not found")
        if roster.refused and (reason := roster.refused.get(user)) is not None:
            raise refuse(reason)
        return roster.members

    def watch(self, watcher: ChangeWatcher) -> None:
        """Have `watcher` see the changes this process announces, before they go out."""
        self._watchers.append(watcher)

    async def announce_change(self, change: MembershipChange) -> None:
        """Tell every process to forget the conversation's members and route its frames
        to who joined. This process's watchers are done when this returns, so a member who
        joined and has a socket here hears the next message sent through this process."""
        await self.announce_changes([change])

    async def announce_changes(self, changes: list[MembershipChange]) -> None:
        """`announce_change` for many conversations: this process forgets them and its
        watchers see each change, then every other process is told, in one pipelined round
        trip, before the caller sends anything there (a broadcast's new conversations: a
        recipient on another process gets the first message live). Their echo forgets
        nothing here (`origin`): rosters preloaded after this stay cached."""
        for change in changes:
            self.invalidate(change.conversation_id)
            for watcher in self._watchers:
                await watcher(change)
        if changes:
            await self._publish(changes)

    def is_own(self, change: MembershipChange) -> bool:
        """Whether this process announced `change` (and so applied it already)."""
        return change.origin == self.origin

    async def invalidate_direct_between(self, user: UserId, other: UserId) -> None:
        """Every process forgets the pair's direct conversation, if they have one: a block,
        an unblock, a friendship made or ended changes who may send there."""
        await self._forget_everywhere(await self._directs_of(user, other))

    async def invalidate_direct_of(self, user: UserId) -> None:
        """Every process forgets each direct conversation of `user`: call it after the user's
        `dm_policy` changes (PATCH /users/me), once the change is committed."""
        await self._forget_everywhere(await self._directs_of(user, None))

    async def _forget_everywhere(self, conversation_ids: list[ConversationId]) -> None:
        if not conversation_ids:
            return
        for conversation_id in conversation_ids:
            self.invalidate(conversation_id)
        # A change with nobody added or removed: other processes forget the conversation and
        # move no routes (hub.py).
        await self._publish([MembershipChange(c) for c in conversation_ids])

    async def _publish(self, changes: list[MembershipChange]) -> None:
        """Announce `changes` to every process: pipelined, one round trip however many."""
        async with self._redis.pipeline(transaction=False) as pipe:
            for change in changes:
                stamped = msgspec.structs.replace(change, origin=self.origin)
                pipe.publish(keys.MEMBERSHIP_CHANNEL, msgspec.json.encode(stamped))
            await pipe.execute()

    def invalidate(self, conversation_id: ConversationId) -> None:
        self._invalidations += 1
        self._cache.pop(conversation_id, None)

    def invalidate_all(self) -> None:
        self._invalidations += 1
        self._cache.clear()
