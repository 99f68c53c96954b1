"""`/api/v1/presence` and `/api/v1/conversations/{id}/online`: who is online, as the
caller may see it."""

from __future__ import annotations

import uuid

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from gochat_py.errors import ValidationFailed
from gochat_py.ids import ConversationId, UserId
from gochat_py.rest.authn import require_claims
from gochat_py.rest.jsonio import json_response
from gochat_py.usecases.presence import Presence, UserPresence

MAX_USER_IDS = 100  # per request: one query and one pipelined Redis batch


class PresenceList(msgspec.Struct, frozen=True):
    presence: list[UserPresence]  # one per distinct id asked, in the order asked


class ConversationOnline(msgspec.Struct, frozen=True):
    online_users: list[UserId]
    status: dict[UserId, bool]  # every member: online, as the caller may see it


def _user_ids(request: Request) -> list[UserId]:
    raw = request.query_params.get("user_ids")
    if raw is None or not raw.strip():
        raise ValidationFailed("user_ids is required", code="invalid_user_ids", field="user_ids")
    items = raw.split(",", MAX_USER_IDS)
    if len(items) > MAX_USER_IDS:
        raise ValidationFailed(
            f"at most {MAX_USER_IDS} user ids", code="invalid_user_ids", field="user_ids"
        )
    ids: dict[UserId, None] = {}  # distinct, in the order asked
    for item in items:
        try:
            ids[UserId(uuid.UUID(item.strip()))] = None
        except ValueError:
            raise ValidationFailed(
                f"{item.strip()[:40]!r} is not a user id", code="invalid_user_ids", field="user_ids"
            ) from None
    return list(ids)


async def of_users(request: Request) -> Response:
    claims = await require_claims(request)
    users = _user_ids(request)
    presence: Presence = request.state.presence
    return json_response(PresenceList(await presence.of_users(claims.user_id, users)))


async def conversation_online(request: Request) -> Response:
    claims = await require_claims(request)
    conversation_id = ConversationId(request.path_params["conversation_id"])
    presence: Presence = request.state.presence
    status = await presence.in_conversation(claims.user_id, conversation_id)
    online = [user for user, is_online in status.items() if is_online]
    return json_response(ConversationOnline(online_users=online, status=status))
