"""`/api/v1/blocks`: block a user, lift a block, list whom you blocked."""

from __future__ import annotations

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from gochat_py.ids import UserId
from gochat_py.postgres.blocks import Block
from gochat_py.rest import paging
from gochat_py.rest.authn import require_claims
from gochat_py.rest.contacts import UserTarget
from gochat_py.rest.jsonio import json_response, read_json
from gochat_py.usecases.relationships import Relationships


class BlockPage(msgspec.Struct, frozen=True):
    blocks: list[Block]
    next_cursor: str | None


async def block(request: Request) -> Response:
    claims = await require_claims(request)
    body = await read_json(request, UserTarget)
    relationships: Relationships = request.state.relationships
    made, created = await relationships.block(claims.user_id, UserId(body.user_id))
    return json_response(made, 201 if created else 200)


async def unblock(request: Request) -> Response:
    claims = await require_claims(request)
    relationships: Relationships = request.state.relationships
    await relationships.unblock(claims.user_id, UserId(request.path_params["user_id"]))
    return Response(status_code=204)


async def list_blocks(request: Request) -> Response:
    claims = await require_claims(request)
    limit, after = paging.limit(request), paging.after(request)
    relationships: Relationships = request.state.relationships
    rows = await relationships.blocks(claims.user_id, limit, after)
    cursor = paging.next_cursor([row.position for row in rows], limit)
    return json_response(BlockPage([row.block for row in rows], cursor))
