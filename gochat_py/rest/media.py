"""`/api/v1/media`: upload a file, download it and its thumbnail."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import FileResponse, RedirectResponse, Response

from gochat_py.rest.authn import require_claims
from gochat_py.rest.jsonio import json_response
from gochat_py.rest.upload_body import upload_body
from gochat_py.usecases.media_access import Download, MediaAccess
from gochat_py.usecases.uploads import Uploads

# Downloads are per person (an access check answers them): no shared cache may keep one.
# The bytes under an id never change, so the browser may keep them without asking.
CACHE_CONTROL = "private, max-age=86400"
# A downloaded file is never a page: no script, no styles, no plugins, whatever it holds.
CONTENT_SECURITY_POLICY = "default-src 'none'; sandbox"


async def upload(request: Request) -> Response:
    claims = await require_claims(request)
    uploads: Uploads = request.state.uploads
    body = await upload_body(request, uploads.max_bytes)
    uploaded = await uploads.upload(claims.user_id, body.name, body.declared_type, body.chunks)
    return json_response(uploaded, 201, {"Location": uploaded.url})


async def download(request: Request) -> Response:
    claims = await require_claims(request)
    access: MediaAccess = request.state.media_access
    return _served(request, await access.original(request.path_params["media_id"], claims.user_id))


async def thumbnail(request: Request) -> Response:
    claims = await require_claims(request)
    access: MediaAccess = request.state.media_access
    return _served(request, await access.thumbnail(request.path_params["media_id"], claims.user_id))


def _served(request: Request, download: Download) -> Response:
    if isinstance(download.location, str):
        # S3: the bytes come from the bucket, on a URL signed for a short while.
        return RedirectResponse(
            download.location, 307, headers={"Cache-Control": "private, no-store"}
        )
    headers = {
        "ETag": download.etag,
        "Cache-Control": CACHE_CONTROL,
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": CONTENT_SECURITY_POLICY,
        "Content-Disposition": download.disposition,
    }
    if _matches(request.headers.get("if-none-match"), download.etag):
        return Response(status_code=304, headers=headers)
    # Starlette's FileResponse answers Range requests (206, 416) and If-Range itself.
    return FileResponse(download.location, headers=headers, media_type=download.content_type)


def _matches(if_none_match: str | None, etag: str) -> bool:
    if if_none_match is None:
        return False
    tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
    return "*" in tags or etag in tags
