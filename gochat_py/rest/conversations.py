"""`/api/v1/conversations`: create, list, details, a group's settings, members, roles,
owner and deletion, history, sending, edits and deletes, read marks, receipts."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from gochat_py import cursors, times
from gochat_py.errors import BadRequest
from gochat_py.ids import ConversationId, MessageId, UserId
from gochat_py.messages import MAX_SEQ, Content, SendRequest, Seq
from gochat_py.postgres.conversations import (
    ConversationRow,
    ConversationView,
    CreateConversation,
)
from gochat_py.postgres.groups import AssignableRole
from gochat_py.rest import query
from gochat_py.rest.authn import require_claims, require_sender
from gochat_py.rest.jsonio import json_response, read_json
from gochat_py.usecases.conversation_views import ConversationViews
from gochat_py.usecases.delivery_marks import DeliveryMarks
from gochat_py.usecases.editing import Editing
from gochat_py.usecases.group_lifecycle import GroupLifecycle, GroupUpdate
from gochat_py.usecases.history import DEFAULT_PAGE, MAX_PAGE, Cursor, History
from gochat_py.usecases.members import Members
from gochat_py.usecases.read_marks import ReadMarks
from gochat_py.usecases.sending import Sending

LIST_DEFAULT_PAGE = 20


class MarkRead(msgspec.Struct, frozen=True):
    seq: Seq


# Ids one request may add: one INSERT and one announcement each, and the body stays ~40 KB;
# a bigger group is built in a few calls (creation takes up to GROUP_MAX_MEMBERS at once).
ADD_MEMBERS_MAX = 1000


class AddMembers(msgspec.Struct, frozen=True):
    user_ids: Annotated[list[uuid.UUID], msgspec.Meta(min_length=1, max_length=ADD_MEMBERS_MAX)]


class RoleChange(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    role: AssignableRole


class OwnerTransfer(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    user_id: uuid.UUID  # a member of the group, who becomes its owner


class ReadMark(msgspec.Struct, frozen=True):
    conversation_id: uuid.UUID
    last_read_seq: int


class Added(msgspec.Struct, frozen=True):
    added: list[UserId]  # those not already members


class ListCursor(msgspec.Struct, frozen=True, array_like=True, forbid_unknown_fields=True):
    """Where a page of the conversation list ended: its last row's activity and id."""

    last_activity_us: int
    id: uuid.UUID


class EditBody(msgspec.Struct, frozen=True):
    content: Content


class ConversationPage(msgspec.Struct, frozen=True):
    conversations: list[ConversationView]
    count: int  # how many this page holds, as gochat says it
    next_cursor: str | None


class CreatedConversation(ConversationView, frozen=True):
    """The conversation started, or the pair's direct conversation found."""

    is_new: bool  # false: the pair's direct conversation existed already


def _conversation_id(request: Request) -> ConversationId:
    return ConversationId(request.path_params["conversation_id"])


async def create(request: Request) -> Response:
    claims = await require_claims(request)
    body = await read_json(request, CreateConversation)
    members: Members = request.state.members
    conversation_id, created = await members.start(claims.user_id, body)
    views: ConversationViews = request.state.conversation_views
    view = await views.one(claims.user_id, conversation_id)
    answer = CreatedConversation(
        conversation=view.conversation,
        participants=view.participants,
        last_message=view.last_message,
        unread_count=view.unread_count,
        is_new=created,
    )
    return json_response(answer, 201 if created else 200)


async def list_conversations(request: Request) -> Response:
    claims = await require_claims(request)
    limit = query.limit(request, LIST_DEFAULT_PAGE, MAX_PAGE)
    before = _decode_list_cursor(request.query_params.get("cursor"))
    views: ConversationViews = request.state.conversation_views
    page, last = await views.page(claims.user_id, limit, before)
    next_cursor = _encode_list_cursor(last) if last is not None else None
    return json_response(
        ConversationPage(conversations=page, count=len(page), next_cursor=next_cursor)
    )


async def details(request: Request) -> Response:
    claims = await require_claims(request)
    return await _view(request, claims.user_id, _conversation_id(request))


async def messages(request: Request) -> Response:
    claims = await require_claims(request)
    conversation_id = _conversation_id(request)
    limit = query.limit(request, DEFAULT_PAGE, MAX_PAGE)
    cursor = _message_cursor(request)
    history: History = request.state.history
    return json_response(await history.page(claims.user_id, conversation_id, cursor, limit))


async def send_message(request: Request) -> Response:
    claims, username = await require_sender(request)
    conversation_id = _conversation_id(request)
    body = await read_json(request, SendRequest)
    sending: Sending = request.state.sending
    sent = await sending.send(
        claims.user_id,
        username,
        conversation_id,
        body.content or "",
        body.client_msg_id,
        reply_to=body.reply_to,
        type=body.type,
        media_id=body.media_id,
    )
    # 200 for a resend with the same client_msg_id: nothing new was created.
    return json_response(sent.message, 200 if sent.duplicate else 201)


async def edit_message(request: Request) -> Response:
    claims = await require_claims(request)
    body = await read_json(request, EditBody)
    editing: Editing = request.state.editing
    change = await editing.edit(
        claims.user_id, _conversation_id(request), _message_id(request), body.content
    )
    return json_response(change)


async def delete_message(request: Request) -> Response:
    claims = await require_claims(request)
    editing: Editing = request.state.editing
    await editing.delete(claims.user_id, _conversation_id(request), _message_id(request))
    return Response(status_code=204)


def _message_id(request: Request) -> MessageId:
    return MessageId(request.path_params["message_id"])


async def mark_read(request: Request) -> Response:
    claims = await require_claims(request)
    conversation_id = _conversation_id(request)
    body = await read_json(request, MarkRead)
    read_marks: ReadMarks = request.state.read_marks
    mark = await read_marks.mark(claims.user_id, conversation_id, body.seq)
    return json_response(ReadMark(conversation_id, mark))


async def receipts(request: Request) -> Response:
    claims = await require_claims(request)
    delivery_marks: DeliveryMarks = request.state.delivery_marks
    return json_response(await delivery_marks.receipts(claims.user_id, _conversation_id(request)))


def _message_cursor(request: Request) -> Cursor | None:
    cursor = request.query_params.get("cursor")
    after = request.query_params.get("after_seq")
    if cursor is not None and after is not None:
        raise BadRequest("give cursor or after_seq, not both", code="invalid_parameter")
    if after is not None:
        if not (after.isascii() and after.isdigit()) or int(after) > MAX_SEQ:
            raise BadRequest(
                f"after_seq must be a whole number up to {MAX_SEQ}", code="invalid_parameter"
            )
        return Cursor("after", int(after))
    return cursors.decode(cursor, Cursor) if cursor is not None else None


def _encode_list_cursor(row: ConversationRow) -> str:
    return cursors.encode(ListCursor(times.unix_us(row.last_activity_at), row.id))


def _decode_list_cursor(text: str | None) -> tuple[datetime, uuid.UUID] | None:
    if text is None:
        return None
    cursor = cursors.decode(text, ListCursor)
    try:
        return times.from_unix_us(cursor.last_activity_us), cursor.id
    except OverflowError:
        raise BadRequest("cursor is not one this server issued", code="invalid_cursor") from None


async def add_members(request: Request) -> Response:
    claims = await require_claims(request)
    body = await read_json(request, AddMembers)
    members: Members = request.state.members
    added = await members.add(claims.user_id, _conversation_id(request), body.user_ids)
    return json_response(Added(added))


async def remove_member(request: Request) -> Response:
    claims = await require_claims(request)
    user = UserId(request.path_params["user_id"])
    members: Members = request.state.members
    await members.remove(claims.user_id, _conversation_id(request), user)
    return Response(status_code=204)


async def update_group(request: Request) -> Response:
    claims = await require_claims(request)
    body = await read_json(request, GroupUpdate)
    conversation_id = _conversation_id(request)
    lifecycle: GroupLifecycle = request.state.group_lifecycle
    await lifecycle.update(claims.user_id, conversation_id, body)
    return await _view(request, claims.user_id, conversation_id)


async def change_role(request: Request) -> Response:
    claims = await require_claims(request)
    body = await read_json(request, RoleChange)
    conversation_id = _conversation_id(request)
    lifecycle: GroupLifecycle = request.state.group_lifecycle
    user = UserId(request.path_params["user_id"])
    await lifecycle.set_role(claims.user_id, conversation_id, user, body.role)
    return await _view(request, claims.user_id, conversation_id)


async def transfer_ownership(request: Request) -> Response:
    claims = await require_claims(request)
    body = await read_json(request, OwnerTransfer)
    conversation_id = _conversation_id(request)
    lifecycle: GroupLifecycle = request.state.group_lifecycle
    await lifecycle.transfer(claims.user_id, conversation_id, UserId(body.user_id))
    return await _view(request, claims.user_id, conversation_id)


async def delete_group(request: Request) -> Response:
    claims = await require_claims(request)
    lifecycle: GroupLifecycle = request.state.group_lifecycle
    await lifecycle.delete(claims.user_id, _conversation_id(request))
    return Response(status_code=204)


async def _view(request: Request, user: UserId, conversation_id: ConversationId) -> Response:
    """The conversation as the caller sees it after their change."""
    views: ConversationViews = request.state.conversation_views
    return json_response(await views.one(user, conversation_id))
