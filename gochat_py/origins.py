"""Whose page sent a browser's request: the `Origin` (or `Referer`) checks that keep a
foreign site from using a visitor's cookies, for both doors."""

from __future__ import annotations

from collections.abc import Collection
from urllib.parse import urlsplit

from starlette.requests import HTTPConnection

# A browser's Origin leaves the scheme's default port out; Host may carry it.
_DEFAULT_PORTS = {"http": 80, "https": 443}
# A socket's own origin is that of the page that served it: ws is http's, wss https's.
_PAGE_SCHEMES = {"ws": "http", "wss": "https"}


def normalize_origin(text: str) -> str | None:
    """`scheme://host[:port]` in lower case without a default port, or None when `text`
    is no http(s) origin (`null`, a path-only value, another scheme)."""
    try:
        parts = urlsplit(text.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if scheme not in _DEFAULT_PORTS or not host:
        return None
    if ":" in host:
        host = f"[{host}]"
    if port is None or port == _DEFAULT_PORTS[scheme]:
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


def own_origin(connection: HTTPConnection) -> str | None:
    """The origin the client reached this server at: its scheme and `Host` header (behind
    a proxy, the scheme uvicorn takes from X-Forwarded-Proto)."""
    host = connection.headers.get("host")
    if not host:
        return None
    scheme = connection.url.scheme
    return normalize_origin(f"{_PAGE_SCHEMES.get(scheme, scheme)}://{host}")


def request_origin(connection: HTTPConnection, *, referer: bool) -> str | None:
    """The origin of the page that made the request: `Origin`, else (when `referer`) the
    origin of `Referer`. Browsers send one of them on every cross-site write."""
    origin = connection.headers.get("origin")
    if origin is None and referer:
        origin = connection.headers.get("referer")
    return normalize_origin(origin) if origin else None


def is_trusted(connection: HTTPConnection, allowed: Collection[str], *, referer: bool) -> bool:
    """The request comes from a page of this server or of one of the `allowed` origins
    (already normalized). No origin at all is not trusted: a cookie-bearing client must say."""
    origin = request_origin(connection, referer=referer)
    return origin is not None and (origin == own_origin(connection) or origin in allowed)
