"""`/api/v1/contacts`: friend requests (send, list, accept, reject, cancel) and friendships
(list, end)."""

from __future__ import annotations

import uuid
from typing import Literal

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from gochat_py.errors import BadRequest
from gochat_py.ids import UserId
from gochat_py.postgres.contacts import ContactRequest, ContactUser, Direction
from gochat_py.rest import paging
from gochat_py.rest.authn import require_claims
from gochat_py.rest.jsonio import json_response, read_json
from gochat_py.usecases.presence import Presence, UserPresence
from gochat_py.usecases.relationships import Relationships

DIRECTIONS: tuple[Direction, ...] = ("incoming", "outgoing")


class UserTarget(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The user a request or a block is about."""

    user_id: uuid.UUID


class RequestPage(msgspec.Struct, frozen=True):
    requests: list[ContactRequest]
    next_cursor: str | None


class ContactWithPresence(msgspec.Struct, frozen=True):
    user: ContactUser
    since: int  # unix milliseconds: when the friendship began
    presence: UserPresence  # as the caller may see it: hidden shows offline, no last seen


class ContactPage(msgspec.Struct, frozen=True):
    contacts: list[ContactWithPresence]
    next_cursor: str | None


def _relationships(request: Request) -> Relationships:
    relationships: Relationships = request.state.relationships
    return relationships


def _direction(request: Request) -> Literal["incoming", "outgoing"]:
    raw = request.query_params.get("direction", "incoming")
    for direction in DIRECTIONS:
        if raw == direction:
            return direction
    raise BadRequest("direction must be incoming or outgoing", code="invalid_direction")


async def send_request(request: Request) -> Response:
    claims = await require_claims(request)
    body = await read_json(request, UserTarget)
    sent, accepted = await _relationships(request).request(claims.user_id, UserId(body.user_id))
    return json_response(sent, 200 if accepted else 201)


async def list_requests(request: Request) -> Response:
    claims = await require_claims(request)
    direction, limit, after = _direction(request), paging.limit(request), paging.after(request)
    rows = await _relationships(request).pending(claims.user_id, direction, limit, after)
    cursor = paging.next_cursor([row.position for row in rows], limit)
    return json_response(RequestPage([row.request for row in rows], cursor))


async def accept(request: Request) -> Response:
    claims = await require_claims(request)
    request_id = request.path_params["request_id"]
    return json_response(await _relationships(request).accept(claims.user_id, request_id))


async def reject(request: Request) -> Response:
    claims = await require_claims(request)
    request_id = request.path_params["request_id"]
    return json_response(await _relationships(request).reject(claims.user_id, request_id))


async def cancel(request: Request) -> Response:
    claims = await require_claims(request)
    await _relationships(request).cancel(claims.user_id, request.path_params["request_id"])
    return Response(status_code=204)


async def list_contacts(request: Request) -> Response:
    claims = await require_claims(request)
    limit, after = paging.limit(request), paging.after(request)
    rows = await _relationships(request).contacts(claims.user_id, limit, after)
    cursor = paging.next_cursor([row.position for row in rows], limit)
    presence: Presence = request.state.presence
    friends = [row.contact for row in rows]
    states = await presence.of_users(claims.user_id, [UserId(c.user.id) for c in friends])
    contacts = [
        ContactWithPresence(c.user, c.since, state)
        for c, state in zip(friends, states, strict=True)
    ]
    return json_response(ContactPage(contacts, cursor))


async def remove(request: Request) -> Response:
    claims = await require_claims(request)
    other = UserId(request.path_params["user_id"])
    await _relationships(request).remove_contact(claims.user_id, other)
    return Response(status_code=204)
