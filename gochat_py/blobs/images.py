"""What an uploaded image is made of, learnt with Pillow off the event loop: the size it is
displayed at, and a thumbnail. At most `workers` images are decoded at once, each in a
thread, and none whose pixel count passes the limit is decoded at all."""

from __future__ import annotations

import asyncio
from pathlib import Path

import msgspec
from PIL import Image, ImageOps, UnidentifiedImageError

from gochat_py.blobs import offloop
from gochat_py.errors import ValidationFailed

THUMBNAIL_SIDE = 320  # the longest side of a thumbnail, in pixels
THUMBNAIL_TYPE = "image/webp"
THUMBNAIL_QUALITY = 80
# The formats of media_types.RASTER, by Pillow's names: no other decoder is tried, so a
# file cannot reach one of Pillow's rarer (and less hardened) parsers.
FORMATS = ("JPEG", "PNG", "GIF", "WEBP")
# EXIF orientations that turn the image a quarter: its displayed width is its height.
_QUARTER_TURNS = frozenset({5, 6, 7, 8})
_ORIENTATION_TAG = 0x0112


class InvalidImage(ValidationFailed):
    code = "invalid_image"


class ImageTooLarge(ValidationFailed):
    """More pixels than MEDIA_MAX_PIXELS: a decompression bomb, or just too big to show."""

    code = "image_too_large"


class ImageFacts(msgspec.Struct, frozen=True):
    width: int  # as displayed: EXIF orientation applied
    height: int


class Thumbnailer:
    def __init__(self, max_pixels: int, workers: int) -> None:
        self._max_pixels = max_pixels
        self._slots = asyncio.Semaphore(workers)
        # This class checks the pixel count itself, against the configured limit, before
        # anything is decoded; Pillow's own process-wide check would only warn first.
        Image.MAX_IMAGE_PIXELS = None

    async def thumbnail(self, source: Path, target: Path) -> ImageFacts:
        """Write `source`'s thumbnail (WebP) to `target`; InvalidImage when it does not
        decode, ImageTooLarge past the pixel limit."""
        async with self._slots:
            return await offloop.run(self._thumbnail, source, target)

    def _thumbnail(self, source: Path, target: Path) -> ImageFacts:
        try:
            with Image.open(source, formats=FORMATS) as image:
                width, height = image.size
                if width * height > self._max_pixels:
                    raise ImageTooLarge(
                        f"the image has {width}×{height} pixels; at most"
                        f" {self._max_pixels:,} are accepted"
                    )
                if image.getexif().get(_ORIENTATION_TAG) in _QUARTER_TURNS:
                    width, height = height, width
                # JPEG decodes straight at a fraction of its size: far less memory and time.
                image.draft("RGB", (THUMBNAIL_SIDE * 2, THUMBNAIL_SIDE * 2))
                upright = ImageOps.exif_transpose(image)
                upright.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE))
                if upright.mode not in ("RGB", "RGBA"):
                    alpha = "A" in upright.getbands() or "transparency" in upright.info
                    upright = upright.convert("RGBA" if alpha else "RGB")
                upright.save(target, "WEBP", quality=THUMBNAIL_QUALITY)
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
            raise InvalidImage(f"the image could not be read: {exc}") from None
        return ImageFacts(width, height)
