"""`/api/v1/conversations`: create, list, details, history and read marks."""

from __future__ import annotations

import base64
import binascii
import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from gochat_py.errors import BadRequest, ValidationFailed
from gochat_py.ids import ConversationId, UserId
from gochat_py.postgres.conversations import (
    UNREAD_CAP,
    Conversation,
    ConversationRow,
    Conversations,
    CreateConversation,
    unix_ms,
)
from gochat_py.realtime.membership import Membership, MembershipChange, NotAMember
from gochat_py.rest.authn import require_claims
from gochat_py.rest.jsonio import json_response, read_json
from gochat_py.usecases.history import DEFAULT_PAGE, MAX_PAGE, Cursor, History, decode_cursor

LIST_DEFAULT_PAGE = 20
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class MarkRead(msgspec.Struct, frozen=True):
    seq: Annotated[int, msgspec.Meta(ge=0)]


class AddMembers(msgspec.Struct, frozen=True):
    user_ids: Annotated[list[uuid.UUID], msgspec.Meta(min_length=1, max_length=256)]


class ConversationPage(msgspec.Struct, frozen=True):
    conversations: list[Conversation]
    next_cursor: str | None


def _limit(request: Request, default: int) -> int:
    raw = request.query_params.get("limit")
    if raw is None:
        return default
    # isdigit() alone also admits digits int() refuses, such as "\u00b2".
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= MAX_PAGE:
        raise BadRequest(f"limit must be a whole number from 1 to {MAX_PAGE}", code="invalid_limit")
    return int(raw)


def _conversation_id(request: Request) -> ConversationId:
    return ConversationId(request.path_params["conversation_id"])


async def _present(
    request: Request, user: UserId, rows: list[ConversationRow]
) -> list[Conversation]:
    """Rows as clients see them, with what the worker has not persisted yet folded in."""
    conversations: Conversations = request.state.conversations
    history: History = request.state.history
    ids = [ConversationId(row.id) for row in rows]
    participants = await conversations.participants(ids)
    pending = await history.newer_than({ConversationId(r.id): r.last_seq for r in rows}, UNREAD_CAP)
    result = []
    for row in rows:
        newer = pending.get(ConversationId(row.id), [])
        unread_newer = sum(1 for m in newer if m.sender_id != user and m.seq > row.last_read_seq)
        result.append(
            Conversation(
                id=row.id,
                type=row.kind,
                name=row.name,
                created_by=row.created_by,
                created_at=unix_ms(row.created_at),
                last_seq=max([row.last_seq, *(m.seq for m in newer)]),
                last_activity_at=max([unix_ms(row.last_activity_at), *(m.sent_at for m in newer)]),
                participants=participants[ConversationId(row.id)],
                last_message=newer[0] if newer else row.last_message,
                unread_count=min(UNREAD_CAP, row.unread_count + unread_newer),
            )
        )
    return result


async def create(request: Request) -> Response:
    claims = await require_claims(request)
    body = await read_json(request, CreateConversation)
    conversations: Conversations = request.state.conversations
    if body.participant_id is not None and body.participant_ids is None and body.name is None:
        others = [UserId(body.participant_id)]
        conversation_id, created = await conversations.create_direct(claims.user_id, others[0])
    elif body.participant_id is None and body.participant_ids is not None and body.name is not None:
        conversation_id = await conversations.create_group(
            claims.user_id, body.name, body.participant_ids
        )
        others = [UserId(p) for p in body.participant_ids]
        created = True
    else:
        raise ValidationFailed(
            "send {participant_id} for a direct conversation or {name, participant_ids} "
            "for a group",
            code="invalid_conversation",
        )
    if created:
        membership: Membership = request.state.membership
        joined = sorted({claims.user_id, *others})  # the creator may list themself too
        await membership.announce_change(MembershipChange(conversation_id, added=joined))
    row = await conversations.one(claims.user_id, conversation_id)
    assert row is not None
    [conversation] = await _present(request, claims.user_id, [row])
    return json_response(conversation, 201 if created else 200)


async def list_conversations(request: Request) -> Response:
    claims = await require_claims(request)
    limit = _limit(request, LIST_DEFAULT_PAGE)
    before = _decode_list_cursor(request.query_params.get("cursor"))
    conversations: Conversations = request.state.conversations
    rows = await conversations.page(claims.user_id, limit + 1, before)
    page, more = rows[:limit], len(rows) > limit
    next_cursor = _encode_list_cursor(page[-1]) if more else None
    items = await _present(request, claims.user_id, page)
    return json_response(ConversationPage(conversations=items, next_cursor=next_cursor))


async def details(request: Request) -> Response:
    claims = await require_claims(request)
    conversations: Conversations = request.state.conversations
    row = await conversations.one(claims.user_id, _conversation_id(request))
    if row is None:
        raise NotAMember("conversation not found")
    [conversation] = await _present(request, claims.user_id, [row])
    return json_response(conversation)


async def messages(request: Request) -> Response:
    claims = await require_claims(request)
    conversation_id = _conversation_id(request)
    limit = _limit(request, DEFAULT_PAGE)
    cursor = _message_cursor(request)
    membership: Membership = request.state.membership
    await membership.require(conversation_id, claims.user_id)
    history: History = request.state.history
    return json_response(await history.page(conversation_id, cursor, limit))


async def mark_read(request: Request) -> Response:
    claims = await require_claims(request)
    conversation_id = _conversation_id(request)
    body = await read_json(request, MarkRead)
    membership: Membership = request.state.membership
    await membership.require(conversation_id, claims.user_id)
    conversations: Conversations = request.state.conversations
    mark = await conversations.mark_read(claims.user_id, conversation_id, body.seq)
    return json_response({"conversation_id": conversation_id, "last_read_seq": mark})


def _message_cursor(request: Request) -> Cursor | None:
    cursor = request.query_params.get("cursor")
    after = request.query_params.get("after_seq")
    if cursor is not None and after is not None:
        raise BadRequest("give cursor or after_seq, not both", code="invalid_parameter")
    if after is not None:
        if not after.isdigit():
            raise BadRequest("after_seq must be a whole number", code="invalid_parameter")
        return Cursor("after", int(after))
    return decode_cursor(cursor) if cursor is not None else None


def _encode_list_cursor(row: ConversationRow) -> str:
    micros = (row.last_activity_at - _EPOCH) // timedelta(microseconds=1)
    raw = msgspec.json.encode([micros, str(row.id)])
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _decode_list_cursor(text: str | None) -> tuple[datetime, uuid.UUID] | None:
    if text is None:
        return None
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        micros, ident = msgspec.json.decode(raw, type=tuple[int, uuid.UUID])
        return _EPOCH + timedelta(microseconds=micros), ident
    except (binascii.Error, ValueError, OverflowError, msgspec.DecodeError):
        raise BadRequest("cursor is not one this server issued", code="invalid_cursor") from None


async def add_members(request: Request) -> Response:
    claims = await require_claims(request)
    conversation_id = _conversation_id(request)
    body = await read_json(request, AddMembers)
    conversations: Conversations = request.state.conversations
    added = await conversations.add_members(claims.user_id, conversation_id, body.user_ids)
    membership: Membership = request.state.membership
    await membership.announce_change(MembershipChange(conversation_id, added=added))
    return json_response({"added": added})


async def remove_member(request: Request) -> Response:
    claims = await require_claims(request)
    conversation_id = _conversation_id(request)
    user = UserId(request.path_params["user_id"])
    conversations: Conversations = request.state.conversations
    if not await conversations.remove_member(claims.user_id, conversation_id, user):
        raise NotAMember("conversation not found")
    membership: Membership = request.state.membership
    await membership.announce_change(MembershipChange(conversation_id, removed=[user]))
    return Response(status_code=204)
