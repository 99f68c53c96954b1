"""`/api/v1/broadcasts`: one message to each of many people, in your direct conversations."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from gochat_py.broadcasts import BroadcastRequest
from gochat_py.rest.authn import require_sender
from gochat_py.rest.jsonio import json_response, read_json
from gochat_py.usecases.broadcasting import Broadcasting


async def broadcast(request: Request) -> Response:
    claims, username = await require_sender(request)
    body = await read_json(request, BroadcastRequest)
    broadcasting: Broadcasting = request.state.broadcasting
    result = await broadcasting.broadcast(claims.user_id, username, body)
    # 200 for a repeat of the same client_broadcast_id: nothing new was sent.
    return json_response(result, 200 if result.duplicate else 201)
