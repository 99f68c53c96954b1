from __future__ import annotations

import pytest

from gochat_py.origins import normalize_origin


@pytest.mark.parametrize(
    ("text", "origin"),
    [
        ("https://chat.example.com", "https://chat.example.com"),
        ("HTTPS://Chat.Example.com:443", "https://chat.example.com"),
        ("http://localhost:80", "http://localhost"),
        ("http://localhost:3000", "http://localhost:3000"),
        ("https://chat.example.com/some/page?x=1", "https://chat.example.com"),
        ("http://[::1]:8080", "http://[::1]:8080"),
    ],
)
def test_an_origin_is_scheme_host_and_a_port_other_than_the_default(text: str, origin: str) -> None:
    assert normalize_origin(text) == origin


@pytest.mark.parametrize(
    "text", ["null", "", "*", "/relative/page", "ftp://example.com", "https://", "http://x:99999"]
)
def test_what_is_not_an_http_origin_is_none(text: str) -> None:
    assert normalize_origin(text) is None
