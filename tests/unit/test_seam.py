from __future__ import annotations

from gochat_py.websocket.seam import Seam, event_of

MESSAGE = '{"id":"0192f0c8-7b3a-7c4e-9a1b-000000000001","content":"{\\"event\\":\\"x\\"}","seq":4}'


def test_an_event_frame_is_named_by_its_first_field_and_a_message_by_none() -> None:
    assert event_of('{"event":"message_updated","message":{},"seq":3}') == "message_updated"
    assert event_of(MESSAGE) is None
    assert event_of('{"event":"') is None


def test_held_frames_go_out_but_those_the_replay_carried() -> None:
    seam = Seam()
    assert seam.held is not None
    seam.held.extend(["a", "b", "c"])
    assert seam.release(["b", "z"]) == ["a", "c"]
    assert not seam.holding


def test_after_the_release_each_replayed_frame_is_dropped_once_when_it_comes_live() -> None:
    seam = Seam()
    seam.release(["x", "y"])
    assert seam.guarding
    assert seam.is_replayed("x")
    assert not seam.is_replayed("x")
    assert not seam.is_replayed("w")
    assert seam.is_replayed("y")
    assert not seam.guarding
