"""What an upload is, decided from its first bytes alone: the client's Content-Type and file
name are never believed. Only the types of ALLOWED are kept; RASTER are the images a
browser may show inline and that get a thumbnail."""

from __future__ import annotations

import codecs

import filetype

# filetype reads this much of a file's start; the upload is held back until it has it.
SNIFF_BYTES = 8192

RASTER = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})
ALLOWED = RASTER | {
    "application/pdf",
    "application/zip",
    "text/plain",
    "audio/mpeg",
    "audio/mp4",
    "audio/ogg",
    "audio/x-wav",
    "audio/x-flac",
    "audio/aac",
    "video/mp4",
    "video/webm",
    "video/quicktime",
}
# Of the control characters only these appear in text; any other means binary.
_TEXT_CONTROLS = frozenset(b"\t\n\r\f")


def detect(head: bytes) -> str | None:
    """The allowed type `head` (a file's first SNIFF_BYTES, or all of it) starts, or None.

    A recognised signature decides; without one, UTF-8 text with no control characters but
    whitespace is text/plain (SVG and HTML included: served as text, never run)."""
    kind = filetype.guess(head)
    if kind is not None:
        mime = str(kind.mime)
        return mime if mime in ALLOWED else None
    return "text/plain" if head and _is_text(head) else None


def _is_text(head: bytes) -> bool:
    if any(byte < 0x20 and byte not in _TEXT_CONTROLS for byte in head) or b"\x7f" in head:
        return False
    # Incremental: a character cut in two at the end of the sniffed bytes is not an error.
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        decoder.decode(head, final=False)
    except UnicodeDecodeError:
        return False
    return True
