from __future__ import annotations

import base64
import uuid

import msgspec
import pytest

from gochat_py import cursors
from gochat_py.errors import BadRequest
from gochat_py.rest.conversations import ListCursor
from gochat_py.usecases.history import Cursor


def test_a_history_cursor_comes_back_as_it_was_issued() -> None:
    cursor = Cursor("after", 41)
    assert cursors.decode(cursors.encode(cursor), Cursor) == cursor


def test_a_list_cursor_comes_back_as_it_was_issued() -> None:
    cursor = ListCursor(1_796_180_645_678_901, uuid.uuid4())
    assert cursors.decode(cursors.encode(cursor), ListCursor) == cursor


def test_a_cursor_is_url_safe_text_without_padding() -> None:
    text = cursors.encode(ListCursor(2**62, uuid.UUID(int=2**128 - 1)))
    assert text.isascii() and "=" not in text and "+" not in text and "/" not in text


def test_a_cursor_of_one_listing_is_refused_by_another() -> None:
    history = cursors.encode(Cursor("before", 7))
    with pytest.raises(BadRequest) as refused:
        cursors.decode(history, ListCursor)
    assert refused.value.code == "invalid_cursor"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "not base64 at all!",
        cursors.encode(["sideways", 3]),
        cursors.encode(["before", -1]),
        cursors.encode(["before", "3"]),
        cursors.encode({"direction": "before", "seq": 3}),
        cursors.encode(["before", 3, "extra"]),
        "A" * (cursors.MAX_CURSOR_CHARS + 1),
        "\u00e9\u00e9\u00e9\u00e9",
    ],
)
def test_anything_the_server_did_not_issue_is_an_invalid_cursor(text: str) -> None:
    with pytest.raises(BadRequest) as refused:
        cursors.decode(text, Cursor)
    assert refused.value.code == "invalid_cursor"
    assert refused.value.status == 400


def test_the_encoding_is_json_under_base64url() -> None:
    text = cursors.encode(Cursor("before", 3))
    raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    assert msgspec.json.decode(raw) == ["before", 3]
