"""`/api/v1/notifications`: the caller's own notifications, listed and marked read."""

from __future__ import annotations

import uuid
from typing import Annotated

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from gochat_py.errors import ValidationFailed
from gochat_py.rest import query
from gochat_py.rest.authn import require_claims
from gochat_py.rest.jsonio import json_response, read_json
from gochat_py.usecases.notifications import (
    DEFAULT_PAGE,
    MAX_PAGE,
    MAX_READ_IDS,
    Notifications,
)


class MarkNotificationsRead(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """`{ids}` (your notifications among them) or `{all: true}`, never both."""

    ids: Annotated[list[uuid.UUID], msgspec.Meta(min_length=1, max_length=MAX_READ_IDS)] | None = (
        None
    )
    all: bool = False


async def list_notifications(request: Request) -> Response:
    claims = await require_claims(request)
    unread_only = query.flag(request, "unread_only")
    limit = query.limit(request, DEFAULT_PAGE, MAX_PAGE)
    cursor = request.query_params.get("cursor")
    notifications: Notifications = request.state.notifications
    return json_response(await notifications.page(claims.user_id, unread_only, limit, cursor))


async def mark_notifications_read(request: Request) -> Response:
    claims = await require_claims(request)
    body = await read_json(request, MarkNotificationsRead)
    if (body.ids is not None) == body.all:
        raise ValidationFailed("send {ids: [...]} or {all: true}, not both", code="ids_or_all")
    notifications: Notifications = request.state.notifications
    if body.ids is None:
        return json_response(await notifications.mark_all_read(claims.user_id))
    return json_response(await notifications.mark_read(claims.user_id, body.ids))
