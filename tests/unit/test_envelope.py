from __future__ import annotations

import uuid

from gochat_py.ids import UserId, uuid7
from gochat_py.redis.envelope import (
    EVENT_SEPARATOR,
    EXCLUDED,
    ID_SEPARATOR,
    LEAVING,
    ROUTED,
    SEPARATOR,
    Addressing,
    header,
    open_envelope,
    routed_header,
    seal,
    user_key,
)

ALICE = UserId(uuid.UUID("0192f0c8-7b3a-7c4e-9a1b-000000000001"))
BOB = UserId(uuid.UUID("0192f0c8-7b3a-7c4e-9a1b-000000000002"))
CAROL = UserId(uuid.UUID("0192f0c8-7b3a-7c4e-9a1b-000000000003"))
FRAME = b'{"id":"m1","content":"hi, all\\nsecond line","seq":1}'


def test_a_sealed_envelope_opens_to_its_recipients_and_frame() -> None:
    assert open_envelope(seal([ALICE, BOB], FRAME)) == (
        None,
        [user_key(ALICE), user_key(BOB)],
        FRAME,
    )


def test_seal_is_the_header_then_the_frame_unchanged() -> None:
    assert header([ALICE, BOB]) == (
        b"0192f0c8-7b3a-7c4e-9a1b-000000000001,0192f0c8-7b3a-7c4e-9a1b-000000000002\n"
    )
    assert seal([ALICE, BOB], FRAME) == header([ALICE, BOB]) + FRAME


def test_a_user_key_is_the_canonical_id_text() -> None:
    upper = UserId(uuid.UUID("0192F0C8-7B3A-7C4E-9A1B-00000000000A"))
    assert user_key(upper) == b"0192f0c8-7b3a-7c4e-9a1b-00000000000a"


def test_neither_separator_ever_appears_inside_a_user_key() -> None:
    for user in [*(uuid.uuid4() for _ in range(500)), *(uuid7() for _ in range(500))]:
        key = user_key(UserId(user))
        assert SEPARATOR not in key and ID_SEPARATOR not in key and EVENT_SEPARATOR not in key
        assert key.isascii()


def test_newlines_and_commas_in_the_frame_stay_in_the_frame() -> None:
    frame = b"\n,line one\nline two, with a comma\n\n"
    assert open_envelope(seal([ALICE], frame)) == (None, [user_key(ALICE)], frame)


def test_thousands_of_recipients_come_back_in_order() -> None:
    recipients = [UserId(uuid7()) for _ in range(5000)]
    _, names, frame = open_envelope(seal(recipients, FRAME))
    assert names == [user_key(user) for user in recipients]
    assert frame == FRAME


def test_an_empty_frame_round_trips_as_empty() -> None:
    assert open_envelope(seal([ALICE, BOB], b"")) == (None, [user_key(ALICE), user_key(BOB)], b"")


def test_a_single_recipient_has_no_id_separator() -> None:
    assert ID_SEPARATOR not in header([ALICE])
    assert open_envelope(seal([ALICE], FRAME)) == (None, [user_key(ALICE)], FRAME)


def test_recipients_may_be_any_iterable_even_a_generator() -> None:
    assert open_envelope(seal((u for u in [ALICE, BOB]), FRAME))[1] == [
        user_key(ALICE),
        user_key(BOB),
    ]


def test_an_event_names_itself_before_the_recipients() -> None:
    sealed = seal([ALICE, BOB], FRAME, event="typing")
    assert sealed.startswith(b"typing|0192f0c8")
    assert open_envelope(sealed) == ("typing", [user_key(ALICE), user_key(BOB)], FRAME)


def test_a_bar_inside_the_frame_is_not_taken_for_an_event_name() -> None:
    frame = b'{"content":"a|b\nc|d"}'
    assert open_envelope(seal([ALICE], frame)) == (None, [user_key(ALICE)], frame)
    assert open_envelope(seal([ALICE], frame, event="read")) == ("read", [user_key(ALICE)], frame)


def test_a_routed_envelope_names_no_member_only_its_marks() -> None:
    assert routed_header() == ROUTED + SEPARATOR
    sealed = routed_header("typing", leaving=[ALICE], excluding=[BOB]) + FRAME
    assert open_envelope(sealed) == (
        "typing",
        [ROUTED, LEAVING + user_key(ALICE), EXCLUDED + user_key(BOB)],
        FRAME,
    )


def test_no_mark_is_ever_inside_a_user_key() -> None:
    for user in [*(uuid.uuid4() for _ in range(500)), *(uuid7() for _ in range(500))]:
        key = user_key(UserId(user))
        assert ROUTED not in key and LEAVING not in key and EXCLUDED not in key


def test_addressing_names_up_to_its_threshold_and_routes_above() -> None:
    addressing = Addressing(named_max=2)
    assert addressing.header([ALICE, BOB]) == header([ALICE, BOB])
    assert addressing.header([ALICE, BOB, CAROL]) == routed_header()
    assert not Addressing(named_max=None).routes([ALICE, BOB, CAROL])


def test_named_addressing_adds_the_leaving_and_drops_the_excluded() -> None:
    addressing = Addressing(named_max=5)
    _, names, _ = open_envelope(addressing.header([ALICE], leaving=[BOB]) + FRAME)
    assert sorted(names) == sorted([user_key(ALICE), user_key(BOB)])
    _, names, _ = open_envelope(addressing.header([ALICE, BOB], excluding=[ALICE]) + FRAME)
    assert names == [user_key(BOB)]


def test_routed_addressing_carries_the_leaving_and_excluded_as_marks() -> None:
    addressing = Addressing(named_max=1)
    head = addressing.header([ALICE, CAROL], "typing", excluding=[ALICE])
    assert head == routed_header("typing", excluding=[ALICE])
