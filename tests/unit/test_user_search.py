"""The pure parts of user search: the LIKE pattern, the tiers a query reaches, its rules,
where the next page starts."""

from __future__ import annotations

import uuid

import pytest

from gochat_py.errors import ValidationFailed
from gochat_py.postgres.profiles import PublicProfile
from gochat_py.postgres.user_search import (
    Found,
    Position,
    Searched,
    Tier,
    like_pattern,
    tiers_for,
)
from gochat_py.usecases.user_search import next_position, query

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


def found_at(*ids: int) -> list[Found]:
    profile = PublicProfile(uuid.uuid4(), "someone", None, None, None, 0)
    return [Found(profile, Position(Tier.USERNAME_PREFIX, f"k{n}", uuid.UUID(int=n))) for n in ids]


def test_a_page_with_more_after_it_resumes_after_its_last_row() -> None:
    searched = Searched(found_at(1, 2, 3), stopped_at=None)
    assert next_position(searched, limit=2) == searched.found[1].position


def test_a_page_a_window_stopped_resumes_after_the_last_row_read_even_when_empty() -> None:
    read_last = Position(Tier.DISPLAY_PREFIX, "anna zz", uuid.UUID(int=9))
    assert next_position(Searched(found_at(1), read_last), limit=2) == read_last
    assert next_position(Searched([], read_last), limit=2) == read_last


def test_a_page_that_listed_the_last_match_has_no_next() -> None:
    assert next_position(Searched(found_at(1, 2), stopped_at=None), limit=2) is None
