"""The search text's syntax (usecases/message_search.py) and the tsquery it becomes
(postgres/message_search.py): pure code; tests/integration/test_message_search.py runs them
against PostgreSQL."""

from __future__ import annotations

import pytest

from gochat_py.errors import ValidationFailed
from gochat_py.postgres.message_search import (
    Fragment,
    Substring,
    Term,
    Words,
    fragments,
    tsquery_source,
)
from gochat_py.usecases.message_search import MAX_QUERY, MAX_TERMS, parse


def test_words_phrases_prefixes_and_exclusions_are_told_apart() -> None:
    assert parse('  cat "hot dog" -mouse food* -"wet food" ') == Words(
        (
            Term("cat"),
            Term("hot dog"),
            Term("mouse", excluded=True),
            Term("food", prefix=True),
            Term("wet food", excluded=True),
        )
    )


def test_an_unterminated_phrase_runs_to_the_end() -> None:
    assert parse('say "hello there') == Words((Term("say"), Term("hello there")))


def test_text_in_an_unspaced_script_is_one_piece_of_text() -> None:
    assert parse(' 東京  タワー "x" ') == Substring("東京 タワー x")


@pytest.mark.parametrize(
    "q",
    ["", "   ", None, "-only", '-"only this"', "x" * (MAX_QUERY + 1), "a\tb", '""', "*"],
)
def test_a_query_that_asks_for_nothing_or_too_much_is_refused(q: str | None) -> None:
    with pytest.raises(ValidationFailed) as refused:
        parse(q)
    assert refused.value.code == "invalid_query"


def test_more_terms_than_allowed_are_refused() -> None:
    parse(" ".join(["w"] * MAX_TERMS))
    with pytest.raises(ValidationFailed):
        parse(" ".join(["w"] * (MAX_TERMS + 1)))


def test_every_term_is_one_quoted_operand_whatever_it_holds() -> None:
    terms = [Term("it's"), Term("a\\b", prefix=True), Term("x' | 'y", excluded=True)]
    assert tsquery_source(terms) == "'it''s' & 'a\\\\b':* & !'x'' | ''y'"


def test_the_headline_marks_become_fragments() -> None:
    assert fragments("the \ue000quick\ue001 \ue000fox\ue001 jumps") == [
        Fragment("the ", match=False),
        Fragment("quick", match=True),
        Fragment(" ", match=False),
        Fragment("fox", match=True),
        Fragment(" jumps", match=False),
    ]
