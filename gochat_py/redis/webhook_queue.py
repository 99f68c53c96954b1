"""The webhook stream: what one entry holds, and how events for offline users are queued.

The contract between the two sides that queue (the worker after a commit, the notifications
use case) and the deliverer (worker/webhooks/). An entry holds the exact body to POST,
encoded once when queued, so every retry sends, and signs, the same bytes.
"""

from __future__ import annotations

import itertools
from collections.abc import Collection, Iterable, Mapping

from redis.asyncio import Redis
from redis.typing import EncodableT, FieldT

from gochat_py import webhooks
from gochat_py.ids import UserId
from gochat_py.redis import keys
from gochat_py.redis.online import users_without_sockets

ID_FIELD = "id"  # the event id, the receiver's deduplication key
TYPE_FIELD = "type"  # message or notification: for a person reading the stream
USER_FIELD = "user_id"
BODY_FIELD = "body"  # the JSON POSTed, byte for byte
# Dead letters carry the entry's fields and these.
DEAD_ERROR = "error"  # the last attempt's failure
DEAD_ATTEMPTS = "attempts"
DEAD_SOURCE_ID = "source_id"
# Dead letters kept at most, the oldest trimmed first: enough to inspect an incident, never
# a store that grows for as long as a receiver stays broken.
DEAD_MAX = 100_000
# Events per pipeline: a message to a large group with most members away makes thousands;
# sent in one go they would sit in memory twice (commands and replies) at once.
ADD_CHUNK = 1000


def entry(event: webhooks.WebhookEvent) -> dict[FieldT, EncodableT]:
    return {
        ID_FIELD: str(event.id),
        TYPE_FIELD: event.type,
        USER_FIELD: str(event.user_id),
        BODY_FIELD: webhooks.encode(event),
    }


def field(fields: Mapping[bytes, bytes], name: str) -> bytes | None:
    return fields.get(name.encode())


class WebhookQueue:
    """Queues webhook events; only built when NOTIFY_WEBHOOK_URL is set."""

    def __init__(self, redis: Redis, max_queued: int) -> None:
        self._redis = redis
        # Trimmed approximately (whole nodes of the stream), which costs Redis nothing extra.
        self._max_queued = max_queued

    async def offline(self, users: Collection[UserId]) -> set[UserId]:
        """Those of `users` with no open socket anywhere: the ones a webhook event is for."""
        return await users_without_sockets(self._redis, users)

    async def add(self, events: Iterable[webhooks.WebhookEvent]) -> int:
        """Append the events to the webhook stream, ADD_CHUNK per round trip (one key, so
        one slot); return how many were queued."""
        queued = 0
        for chunk in _chunks(events):
            async with self._redis.pipeline(transaction=False) as pipe:
                for event in chunk:
                    pipe.xadd(
                        keys.WEBHOOK_STREAM,
                        entry(event),
                        maxlen=self._max_queued,
                        approximate=True,
                    )
                await pipe.execute()
            queued += len(chunk)
        return queued


def _chunks(events: Iterable[webhooks.WebhookEvent]) -> Iterable[list[webhooks.WebhookEvent]]:
    # itertools.batched arrives with Python 3.12.
    iterator = iter(events)
    while chunk := list(itertools.islice(iterator, ADD_CHUNK)):
        yield chunk
