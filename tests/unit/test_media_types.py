"""An upload's type from its first bytes, never from what the client says."""

from __future__ import annotations

import pytest

from gochat_py.media_types import detect
from tests.media_files import jpeg_turned, png


@pytest.mark.parametrize(
    ("head", "kind"),
    [
        (png(), "image/png"),
        (jpeg_turned(8, 4, 6), "image/jpeg"),
        (b"GIF89a" + b"\0" * 20, "image/gif"),
        (b"%PDF-1.7\n", "application/pdf"),
        (b"PK\x03\x04" + b"\0" * 40, "application/zip"),
        (b"plain words, line one\nline two\r\n\ttabbed", "text/plain"),
        ("héllo wörld".encode(), "text/plain"),
        (b"<svg><script>alert(1)</script></svg>", "text/plain"),
    ],
)
def test_allowed_types_are_known_by_their_bytes(head: bytes, kind: str) -> None:
    assert detect(head) == kind


def test_a_character_cut_at_the_end_of_the_sniffed_bytes_is_still_text() -> None:
    assert detect("é".encode() * 10 + "é".encode()[:1]) == "text/plain"


@pytest.mark.parametrize(
    "head",
    [
        b"\x7fELF\x02\x01\x01" + b"\0" * 60,  # an executable
        b"MZ\x90\x00" + b"\0" * 60,  # a Windows one
        b"\xff\xfe\x00\x01binary",  # not UTF-8
        b"text with a \x00 NUL",
        b"text with an escape \x1b[31m",
        b"",
    ],
)
def test_anything_else_is_refused(head: bytes) -> None:
    assert detect(head) is None
