"""The pure parts of user search: the LIKE pattern, the tiers a query reaches, its rules."""

from __future__ import annotations

import pytest

from gochat_py.errors import ValidationFailed
from gochat_py.postgres.user_search import Tier, like_pattern, tiers_for
from gochat_py.usecases.user_search import query

PREFIX_TIERS = [Tier.EXACT, Tier.USERNAME_PREFIX, Tier.DISPLAY_PREFIX]


@pytest.mark.parametrize(
    ("q", "pattern"),
    [
        ("anna", "%anna%"),
        ("50%", "%50\\%%"),
        ("a_b", "%a\\_b%"),
        ("c:\\d", "%c:\\\\d%"),
        ("\\%_", "%\\\\\\%\\_%"),
    ],
)
def test_like_wildcards_and_the_escape_character_are_escaped(q: str, pattern: str) -> None:
    assert like_pattern(q) == pattern


@pytest.mark.parametrize("q", ["ann", "x4242", "Anna Smith", "a_bcd"])
def test_three_letters_or_digits_in_a_row_reach_the_substring_tier(q: str) -> None:
    assert tiers_for(q) == [*PREFIX_TIERS, Tier.SUBSTRING]


@pytest.mark.parametrize("q", ["an", "a_b_c", "%%%", "äöü", "a b c d"])
def test_anything_less_is_matched_at_the_start_only(q: str) -> None:
    assert tiers_for(q) == PREFIX_TIERS


def test_the_query_is_trimmed() -> None:
    assert query("  Anna Smith\u3000") == "Anna Smith"


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (None, "query_too_short"),
        ("", "query_too_short"),
        (" a ", "query_too_short"),
        ("a" * 65, "invalid_query"),
        ("an\tna", "invalid_query"),
        ("an\x85na", "invalid_query"),
    ],
)
def test_a_bad_query_is_refused(raw: str | None, code: str) -> None:
    with pytest.raises(ValidationFailed) as refused:
        query(raw)
    assert (refused.value.code, refused.value.field) == (code, "q")


def test_the_longest_query_is_accepted() -> None:
    assert query("a" * 64) == "a" * 64
