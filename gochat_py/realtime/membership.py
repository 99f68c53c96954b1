"""Who belongs to a conversation, cached per process and invalidated across all of them."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable

import msgspec
from redis.asyncio import Redis

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


ChangeWatcher = Callable[[MembershipChange], Awaitable[None]]
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
        load: Callable[[ConversationId], Awaitable[frozenset[UserId]]],
        redis: Redis,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._load = load
        self._redis = redis
        self._clock = clock
        self._cache: OrderedDict[ConversationId, tuple[float, frozenset[UserId]]] = OrderedDict()
        self._watchers: list[ChangeWatcher] = []

    async def members(self, conversation_id: ConversationId) -> frozenset[UserId]:
        cached = self._cache.get(conversation_id)
        now = self._clock()
        if cached is not None and cached[0] > now:
            self._cache.move_to_end(conversation_id)
            return cached[1]
        try:
            members = await self._load(conversation_id)
        except Exception:
            # Stale beats failing: while PostgreSQL is away, known conversations keep
            # working with the members they had.
            if cached is None:
                raise
            return cached[1]
        if members:  # unknown ids are not cached: a later create must not be shadowed
            self._cache[conversation_id] = (now + CACHE_TTL, members)
            self._cache.move_to_end(conversation_id)
            while len(self._cache) > CACHE_MAX_CONVERSATIONS:
                self._cache.popitem(last=False)
        return members

    async def require(self, conversation_id: ConversationId, user: UserId) -> frozenset[UserId]:
        """The members, if `user` is one of them; NotAMember otherwise."""
        members = await self.members(conversation_id)
        if user not in members:
            raise NotAMember("conversation not found")
        return members

    def watch(self, watcher: ChangeWatcher) -> None:
        """Have `watcher` see the changes this process announces, before they go out."""
        self._watchers.append(watcher)

    async def announce_change(self, change: MembershipChange) -> None:
        """Tell every process to forget the conversation's members and route its frames
        to who joined. This process's watchers are done when this returns, so a member who
        joined and has a socket here hears the next message sent through this process."""
        self.invalidate(change.conversation_id)
        for watcher in self._watchers:
            await watcher(change)
        await self._redis.publish(keys.MEMBERSHIP_CHANNEL, msgspec.json.encode(change))

    def invalidate(self, conversation_id: ConversationId) -> None:
        self._cache.pop(conversation_id, None)

    def invalidate_all(self) -> None:
        self._cache.clear()
