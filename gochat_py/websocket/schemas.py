"""The JSON Schema of every WebSocket frame, from the Structs the server decodes and encodes.

`python -m gochat_py.websocket.schemas > docs/websocket.schema.json` writes the document
that docs/websocket.md describes; a test fails when the committed file differs.
"""

from __future__ import annotations

import json
from typing import Any

import msgspec

from gochat_py.messages import Message, MessageChange
from gochat_py.realtime.events import Event, GochatEvent
from gochat_py.websocket.frames import ClientFrame, Reply

# Every frame the server sends: messages, edits and deletes, and events published to members
# or one user, the same events in gochat's shapes, and the replies to one socket.
ServerFrame = Message | MessageChange | Event | GochatEvent | Reply
_REF = "#/$defs/{name}"


def frame_types(union: Any) -> tuple[type[msgspec.Struct], ...]:
    return tuple(union.__args__)


def document() -> dict[str, Any]:
    client, server = frame_types(ClientFrame), frame_types(ServerFrame)
    schemas, definitions = msgspec.json.schema_components(client + server, ref_template=_REF)
    for frame in server:
        # The server writes every field, defaults included, unless the frame leaves out
        # those at their default (a message's optional fields): then only the others are
        # always there.
        if not frame.__struct_config__.omit_defaults:
            definition = definitions[frame.__name__]
            definition["required"] = list(definition["properties"])
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "gochat-py WebSocket frames",
        "description": "One JSON object per text frame. See docs/websocket.md.",
        "anyOf": [{"$ref": "#/$defs/ClientFrame"}, {"$ref": "#/$defs/ServerFrame"}],
        "$defs": {
            **definitions,
            "ClientFrame": {"anyOf": list(schemas[: len(client)])},
            "ServerFrame": {"anyOf": list(schemas[len(client) :])},
        },
    }


def render() -> str:
    return json.dumps(document(), indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    import sys

    sys.stdout.write(render())
