"""The recent cache's bound: a send past RECENT_CACHE_MAX is refused, not acknowledged, and
what the caches hold is on /metrics."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families
from redis.asyncio import Redis
from websockets.asyncio.client import ClientConnection

from gochat_py.ids import ConversationId
from gochat_py.redis import keys
from gochat_py.redis.recent import SENDERS_SCAN_MAX, RecentCache
from gochat_py.settings import load_settings
from tests.harness import (
    connect,
    create_direct,
    next_frame,
    poll_until,
    register,
    serve_app,
    server_environment,
    ws_url,
)
from tests.stream_traffic import running_consumer


def is_reply(frame: dict[str, Any]) -> bool:
    return frame.get("event") in ("ack", "error")


async def send(
    socket: ClientConnection, conversation_id: str, client_msg_id: str
) -> dict[str, Any]:
    """Send a message and return the ack or error frame that answers it."""
    frame = {"conversation_id": conversation_id, "content": "hi", "client_msg_id": client_msg_id}
    await socket.send(json.dumps(frame))
    return await next_frame(socket, is_reply)


async def scrape(api: httpx.AsyncClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = await api.get("/metrics")
    assert response.status_code == 200
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


HELD = ("gochat_recent_cache_messages", (("partition", "0"),))
REFUSED = ("gochat_ws_frames_rejected_total", (("code", "backlogged"),))
USED_MEMORY = ("gochat_redis_used_memory_bytes", ())


async def test_a_send_past_recent_cache_max_is_refused_until_the_worker_has_stored_the_backlog(
    redis: Redis, database_url: str, redis_url: str
) -> None:
    settings = load_settings(server_environment(database_url, redis_url, RECENT_CACHE_MAX="3"))
    async with serve_app(settings) as base_url, httpx.AsyncClient(base_url=base_url) as api:
        alice, bob = await register(api), await register(api)
        conversation_id = (await create_direct(api, alice["tokens"], bob["user"]["id"]))["id"]
        async with connect(ws_url(api, alice["tokens"]["access_token"])) as socket:
            acks = [await send(socket, conversation_id, f"c-{i}") for i in (1, 2, 3)]
            assert [a["seq"] for a in acks] == [1, 2, 3]

            refused = await send(socket, conversation_id, "c-4")
            assert refused["event"] == "error"
            assert (refused["code"], refused["ref"], refused["retry_after"]) == (
                "backlogged",
                "c-4",
                1.0,
            )
            # Nothing of it reached Redis: no entry, no seq taken.
            assert await redis.xlen(keys.stream(0)) == 3
            assert await redis.get(keys.sequence(uuid.UUID(conversation_id), 1)) == b"3"
            # A resend of an acknowledged message still gets its ack, full or not.
            again = await send(socket, conversation_id, "c-2")
            assert (again["event"], again["seq"], again["duplicate"]) == ("ack", 2, True)

            metrics = await scrape(api)
            assert metrics[HELD] == 3
            assert metrics[REFUSED] == 1
            assert metrics[USED_MEMORY] > 0

            async with running_consumer(redis_url, database_url, recent_tail=1, recent_trim_step=1):

                async def trimmed() -> bool:
                    return (await scrape(api))[HELD] == 1

                await poll_until(trimmed, what="the stored messages trimmed from the cache")

            accepted = await send(socket, conversation_id, "c-4")
            assert (accepted["event"], accepted["seq"]) == ("ack", 4)
            assert (await scrape(api))[HELD] == 2


async def test_a_rest_send_past_recent_cache_max_is_a_503_with_retry_after_and_sends_nothing(
    redis: Redis, database_url: str, redis_url: str
) -> None:
    settings = load_settings(server_environment(database_url, redis_url, RECENT_CACHE_MAX="2"))
    async with serve_app(settings) as base_url, httpx.AsyncClient(base_url=base_url) as api:
        alice, bob = await register(api), await register(api)
        conversation = await create_direct(api, alice["tokens"], bob["user"]["id"])
        url = f"/api/v1/conversations/{conversation['id']}/messages"
        headers = {"Authorization": f"Bearer {alice['tokens']['access_token']}"}
        for i in range(2):
            sent = await api.post(url, json={"content": f"m{i}"}, headers=headers)
            assert sent.status_code == 201
        refused = await api.post(url, json={"content": "one too many"}, headers=headers)
        assert refused.status_code == 503
        assert refused.json()["error"]["code"] == "backlogged"
        assert refused.headers["retry-after"] == "1"
        history = await api.get(url, headers=headers)
    assert [m["content"] for m in history.json()["messages"]] == ["m1", "m0"]
    assert await redis.xlen(keys.stream(0)) == 2


async def test_senders_between_names_text_senders_only_and_where_it_stopped_reading(
    redis: Redis,
) -> None:
    cache = RecentCache(redis, 1)
    conversation = ConversationId(uuid.uuid4())
    alice, bob, carol = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    key = keys.recent(conversation, 1)

    def message(seq: int, sender: uuid.UUID, kind: str = "text") -> bytes:
        return json.dumps(
            {"id": str(uuid.uuid4()), "conversation_id": str(conversation),
             "sender_id": str(sender), "sender_username": "u", "content": "x", "type": kind,
             "sent_at": 1, "client_msg_id": None, "seq": seq}
        ).encode()  # fmt: skip

    # An event frame carries a whole message, its sender included: an edit is not a send.
    edit = {"event": "message_updated", "message": json.loads(message(1, carol)), "seq": 4}
    await redis.zadd(
        key,
        {
            message(1, alice): 1,
            message(2, bob): 2,
            message(3, carol, "system"): 3,
            json.dumps(edit).encode(): 4,
            message(5, alice): 5,
        },
    )
    whole, top, above, empty = await cache.senders_between(
        [(conversation, 0, 5), (conversation, 2, 5), (conversation, 5, 9), (conversation, 7, 9)]
    )
    assert (whole.senders, whole.lowest) == ({alice, bob}, 1)
    assert (top.senders, top.lowest) == ({alice}, 3)
    assert (above.senders, above.lowest) == (set(), None)
    assert (empty.senders, empty.lowest) == (set(), None)
    await redis.zadd(key, {message(seq, bob): seq for seq in range(6, 6 + SENDERS_SCAN_MAX)})
    [capped] = await cache.senders_between([(conversation, 0, 5 + SENDERS_SCAN_MAX)])
    # Only the newest SENDERS_SCAN_MAX were read: alice's messages lie below them.
    assert (capped.senders, capped.lowest) == ({bob}, 6)
