"""A client's file name made harmless, and how a download is offered."""

from __future__ import annotations

import pytest

from gochat_py.media import content_disposition, display_name, disposition


@pytest.mark.parametrize(
    ("sent", "kept"),
    [
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\me\\photo.jpg", "photo.jpg"),
        (".bashrc", "bashrc"),
        ("a\x00b\r\nc.txt", "abc.txt"),
        ("  spaced.txt  ", "spaced.txt"),
        ("", "file"),
        (None, "file"),
        ("../", "file"),
        ("x" * 300, "x" * 255),
        ("naïve café.txt", "naïve café.txt"),
    ],
)
def test_a_file_name_keeps_only_its_last_part_without_control_characters(
    sent: str | None, kept: str
) -> None:
    assert display_name(sent) == kept


def test_only_raster_images_are_inline() -> None:
    assert disposition("image/png", "a.png").startswith("inline;")
    for kind in ("text/plain", "application/pdf", "video/mp4"):
        assert disposition(kind, "a").startswith("attachment;")


def test_the_header_has_an_ascii_fallback_and_the_exact_utf8_name() -> None:
    assert content_disposition("attachment", 'é"\\%.txt') == (
        "attachment; filename=\"____.txt\"; filename*=UTF-8''%C3%A9%22%5C%25.txt"
    )
