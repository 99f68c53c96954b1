"""Media as it travels: what an upload answers, what an image or file message carries, and
the URLs both point at. The bytes themselves are the media store's (blobs/)."""

from __future__ import annotations

import unicodedata
import uuid
from typing import NewType
from urllib.parse import quote

import msgspec

from gochat_py import media_types

MediaId = NewType("MediaId", uuid.UUID)

MEDIA_PATH = "/api/v1/media"
MAX_NAME_CHARS = 255  # what most filesystems allow a file name
DEFAULT_NAME = "file"


class MediaInfo(msgspec.Struct, frozen=True, kw_only=True):
    """A media as a message shows it: `media` of an image or file message."""

    id: uuid.UUID
    content_type: str  # detected from the bytes, never the client's header
    size: int  # bytes
    name: str  # the uploader's file name, made harmless (display_name below)
    width: int | None  # images only, as displayed (EXIF orientation applied)
    height: int | None
    url: str
    thumbnail_url: str | None  # raster images only; 320 px on the longest side


class UploadedMedia(MediaInfo, frozen=True, kw_only=True):
    """`POST /media`'s answer: the media as messages will show it, and its sha256."""

    sha256: str  # hex, of the bytes as stored


def url(media_id: uuid.UUID) -> str:
    return f"{MEDIA_PATH}/{media_id}"


def thumbnail_url(media_id: uuid.UUID) -> str:
    return f"{MEDIA_PATH}/{media_id}/thumbnail"


def avatar_url(media_id: uuid.UUID | None) -> str | None:
    """A profile's or a conversation's `avatar_url`: its image's URL, anyone may read it."""
    return None if media_id is None else url(media_id)


def display_name(client_name: str | None) -> str:
    """The name a download is offered under: the last part of whatever path the client
    sent, without control characters or leading dots, at most MAX_NAME_CHARS. It is only
    ever shown and put in Content-Disposition (encoded): no path is built from it."""
    name = (client_name or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C")
    name = name.strip().lstrip(".").strip()[:MAX_NAME_CHARS]
    return name or DEFAULT_NAME


def disposition(content_type: str, name: str) -> str:
    """How a download is offered: only a raster image is shown in the page; anything else
    (SVG or HTML kept as text, PDF) is a download, so nothing uploaded runs in the origin."""
    kind = "inline" if content_type in media_types.RASTER else "attachment"
    return content_disposition(kind, name)


def thumbnail_disposition(name: str) -> str:
    return content_disposition("inline", f"{name.rsplit('.', 1)[0] or 'thumbnail'}.webp")


def content_disposition(kind: str, name: str) -> str:
    """RFC 6266: an ASCII fallback for old clients, and the exact UTF-8 name in
    `filename*`; neither can carry a quote, a backslash or a line break."""
    fallback = "".join(ch if 0x20 <= ord(ch) < 0x7F and ch not in '"\\%' else "_" for ch in name)
    return f"{kind}; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"
