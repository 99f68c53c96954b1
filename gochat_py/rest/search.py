"""`/api/v1/search/messages`: finding messages in your conversations."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from gochat_py.ids import ConversationId
from gochat_py.rest import query
from gochat_py.rest.authn import require_claims
from gochat_py.rest.jsonio import json_response
from gochat_py.usecases.message_search import DEFAULT_PAGE, MAX_PAGE, MessageFinder


async def search_messages(request: Request) -> Response:
    claims = await require_claims(request)
    limit = query.limit(request, DEFAULT_PAGE, MAX_PAGE)
    only = query.optional_id(request, "conversation_id")
    finder: MessageFinder = request.state.message_search
    params = request.query_params
    return json_response(
        await finder.page(
            claims.user_id,
            params.get("q"),
            None if only is None else ConversationId(only),
            limit,
            params.get("cursor"),
        )
    )
