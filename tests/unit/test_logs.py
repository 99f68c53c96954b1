from __future__ import annotations

from gochat_py.logs import REDACTED, scrub

JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLXBhcnQ"


def test_token_query_parameter_is_scrubbed() -> None:
    line = scrub('127.0.0.1:5000 - "WebSocket /ws?token=abc.def-ghi&x=1" 403')
    assert "abc.def-ghi" not in line
    assert f"token={REDACTED}&x=1" in line


def test_bearer_header_value_is_scrubbed() -> None:
    assert scrub("Authorization: Bearer s3cr3t-value") == f"Authorization: Bearer {REDACTED}"


def test_a_bare_jwt_anywhere_is_scrubbed() -> None:
    assert JWT not in scrub(f"decoded {JWT} for user")


def test_ordinary_text_is_untouched() -> None:
    text = "request method=GET path=/api/v1/health status=200"
    assert scrub(text) == text
