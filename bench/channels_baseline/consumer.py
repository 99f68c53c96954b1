"""The baseline consumer: joins a Channels group per conversation and `group_send`s each frame."""

from __future__ import annotations

import itertools
import json
import time
from typing import Any
from urllib.parse import parse_qs

from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from bench.channels_baseline.groups import channels_group, memberships

# Message ids as the bare server numbers them: one per fanned-out message, per process.
_message_ids = itertools.count(1)


def _user_number(query_string: bytes) -> int | None:
    values = parse_qs(query_string.decode("latin-1")).get("user", [])
    return int(values[0]) if len(values) == 1 and values[0].isdigit() else None


def _message(text: str | None) -> tuple[str, str] | None:
    """(conversation id, content) from a client frame, or None if it is not one."""
    try:
        frame = json.loads(text) if text is not None else None
    except ValueError:
        return None
    if not isinstance(frame, dict):
        return None
    conversation, content = frame.get("conversation_id"), frame.get("content")
    if not isinstance(conversation, str) or not isinstance(content, str):
        return None
    return conversation, content


class FanoutConsumer(AsyncWebsocketConsumer):
    """One socket of user `?user=<n>`: every member's socket gets each frame sent to a group."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.user = 0
        self.conversations: frozenset[str] = frozenset()

    async def connect(self) -> None:
        user = _user_number(self.scope["query_string"])
        if user is None:
            await self.close()  # before accept: the handshake is refused (403), as the bare server
            return
        self.user = user
        self.conversations = memberships(settings.BENCH_GROUPS_FILE).get(user, frozenset())
        # Join before accepting: once the client sees the socket open, it is subscribed,
        # so a frame sent right after everyone connected reaches everyone.
        for conversation in self.conversations:
            await self.channel_layer.group_add(channels_group(conversation), self.channel_name)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        for conversation in self.conversations:
            await self.channel_layer.group_discard(channels_group(conversation), self.channel_name)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        message = _message(text_data)
        # As the bare server: a frame that does not decode, or names a group the sender is
        # not in (unknown groups included), is dropped and the socket stays open.
        if message is None or message[0] not in self.conversations:
            return
        conversation, content = message
        await self.channel_layer.group_send(
            channels_group(conversation),
            {
                "type": "chat.message",
                "id": next(_message_ids),
                "conversation_id": conversation,
                "sender_id": self.user,
                "content": content,
                "sent_at": int(time.time() * 1000),
            },
        )

    async def chat_message(self, event: dict[str, Any]) -> None:
        # The bare server's frame, byte for byte in layout; encoded once per receiving socket,
        # as a stock Channels consumer does (the layer hands each channel its own event).
        frame = {
            "id": event["id"],
            "conversation_id": event["conversation_id"],
            "sender_id": event["sender_id"],
            "content": event["content"],
            "type": "text",
            "sent_at": event["sent_at"],
        }
        await self.send(text_data=json.dumps(frame, ensure_ascii=False, separators=(",", ":")))
