"""`/api/v1/users`: your profile, anyone's public profile, and finding people."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from gochat_py.ids import UserId
from gochat_py.rest import query
from gochat_py.rest.authn import require_claims
from gochat_py.rest.jsonio import json_response, read_json
from gochat_py.usecases.profiles import FIELD_RULES, ProfileUpdate, UserProfiles
from gochat_py.usecases.user_search import DEFAULT_PAGE, MAX_PAGE, PeopleSearch


async def my_profile(request: Request) -> Response:
    claims = await require_claims(request)
    profiles: UserProfiles = request.state.profiles
    return json_response(await profiles.own(claims.user_id))


async def update_my_profile(request: Request) -> Response:
    claims = await require_claims(request)
    update = await read_json(request, ProfileUpdate, FIELD_RULES)
    profiles: UserProfiles = request.state.profiles
    return json_response(await profiles.update(claims.user_id, update))


async def user_profile(request: Request) -> Response:
    await require_claims(request)
    profiles: UserProfiles = request.state.profiles
    return json_response(await profiles.public(UserId(request.path_params["user_id"])))


async def search_users(request: Request) -> Response:
    claims = await require_claims(request)
    limit = query.limit(request, DEFAULT_PAGE, MAX_PAGE)
    people: PeopleSearch = request.state.people_search
    params = request.query_params
    return json_response(
        await people.page(claims.user_id, params.get("q"), limit, params.get("cursor"))
    )
