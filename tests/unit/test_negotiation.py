from __future__ import annotations

import pytest

from gochat_py.errors import BadRequest
from gochat_py.websocket.negotiation import OPTIONAL_EVENTS, SUBPROTOCOL, negotiate


def test_a_client_that_asks_for_nothing_gets_gochats_presence_only_and_no_subprotocol() -> None:
    agreement = negotiate([], None)
    assert agreement.subprotocol is None
    assert agreement.events == {"presence"}
    assert agreement.gochat


def test_a_client_that_asks_for_anything_gets_gochat_pys_shapes() -> None:
    assert not negotiate([SUBPROTOCOL], None).gochat
    assert not negotiate([], "presence").gochat
    assert negotiate([], "presence").events == {"presence"}


def test_the_subprotocol_brings_every_optional_event() -> None:
    agreement = negotiate(["chat", SUBPROTOCOL], None)
    assert agreement.subprotocol == SUBPROTOCOL
    assert agreement.events == OPTIONAL_EVENTS
    assert "presence" in OPTIONAL_EVENTS


def test_an_unknown_subprotocol_alone_is_a_gochat_client() -> None:
    assert negotiate(["gochat-py.v2", "mqtt"], None) == negotiate([], None)


def test_events_selects_exactly_the_ones_named() -> None:
    assert negotiate([], "typing, read").events == {"typing", "read"}
    assert negotiate([SUBPROTOCOL], "ack").events == {"ack"}
    assert negotiate([SUBPROTOCOL], "ack").subprotocol == SUBPROTOCOL


def test_events_that_always_come_may_be_named_and_an_empty_list_narrows_to_none() -> None:
    assert negotiate([], "message,error,pong,auth_ok,broadcast_result").events == frozenset()
    assert negotiate([SUBPROTOCOL], "").events == frozenset()


@pytest.mark.parametrize("events", ["typing,presenceX", "TYPING", "x" * 600, "ack;typing"])
def test_an_unknown_event_is_refused_by_name(events: str) -> None:
    with pytest.raises(BadRequest) as refused:
        negotiate([], events)
    assert refused.value.code == "invalid_events"


def test_resume_1_needs_the_resume_event_and_is_off_unless_asked() -> None:
    assert negotiate([SUBPROTOCOL], None, "1").resume
    assert negotiate([], "resume,ack", "1").resume
    assert not negotiate([SUBPROTOCOL], None).resume
    assert not negotiate([SUBPROTOCOL], None, "0").resume


@pytest.mark.parametrize(
    ("offered", "events", "resume"),
    [([], None, "1"), ([SUBPROTOCOL], "ack", "1"), ([SUBPROTOCOL], None, "true")],
)
def test_resume_without_the_event_or_with_another_value_is_refused(
    offered: list[str], events: str | None, resume: str
) -> None:
    with pytest.raises(BadRequest) as refused:
        negotiate(offered, events, resume)
    assert refused.value.code == "invalid_resume"
