"""Files for the media tests, made on the spot: real images, a decompression bomb, text."""

from __future__ import annotations

import io
import struct
import zlib

from PIL import Image


def png(width: int = 64, height: int = 48, color: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buffer, "PNG")
    return buffer.getvalue()


def jpeg_turned(width: int, height: int, orientation: int) -> bytes:
    """A JPEG stored `width`×`height` whose EXIF says to show it turned (6: 90° clockwise)."""
    buffer = io.BytesIO()
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.new("RGB", (width, height), (10, 120, 200)).save(buffer, "JPEG", exif=exif)
    return buffer.getvalue()


def png_bomb(side: int = 100_000) -> bytes:
    """A valid PNG header announcing side×side one-bit pixels (10 gigapixels by default),
    with one compressed row of data: a few hundred bytes that would decode to gigabytes."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    rows = zlib.compress(b"\0" * (side // 8 + 1) * 16, 9)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")
    )
