"""The @username tokens of a message: what counts as one and in which order."""

from __future__ import annotations

from gochat_py.usecases.mentions import named


def test_names_come_lowercased_in_order_of_first_appearance_once_each() -> None:
    assert named("@Bob, @alice and @BOB again (@carol_1)") == ["bob", "alice", "carol_1"]


def test_an_email_address_and_a_too_short_or_too_long_name_name_nobody() -> None:
    assert named("bob@example.com @ab @" + "a" * 33 + " @@") == []


def test_a_name_of_the_longest_allowed_length_ends_at_punctuation() -> None:
    longest = "a" * 32
    assert named(f"hi @{longest}! @x_y.") == [longest, "x_y"]
