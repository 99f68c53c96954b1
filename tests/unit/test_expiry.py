"""The expiry sweeper against a fake clock: warned `lead` seconds ahead, closed on time,
moved by a renewal, forgotten when the socket goes."""

from __future__ import annotations

import pytest

from gochat_py.realtime.expiry import Expiry, warning_lead

START = 1_800_000_000


class Clock:
    def __init__(self) -> None:
        self.now = float(START)

    def __call__(self) -> float:
        return self.now


class Socket:
    def __init__(self, expires_at: int) -> None:
        self.expires_at = expires_at
        self.warnings: list[int] = []
        self.expired = False

    def token_expiring(self, expires_in: int) -> None:
        self.warnings.append(expires_in)

    def token_expired(self) -> None:
        self.expired = True


def run_until(expiry: Expiry, clock: Clock, second: int) -> None:
    clock.now = float(second) + 0.01
    expiry.sweep()


@pytest.mark.parametrize(
    ("ttl", "lead"), [(900, 60), (300, 60), (120, 24), (6, 2), (5, 1), (1, 1), (0.5, 1)]
)
def test_the_lead_is_a_fifth_of_the_lifetime_up_to_a_minute(ttl: float, lead: int) -> None:
    assert warning_lead(ttl) == lead


def test_a_socket_is_warned_lead_seconds_ahead_then_closed_at_expiry() -> None:
    clock = Clock()
    expiry = Expiry(lead=10, clock=clock)
    socket = Socket(START + 30)
    expiry.track(socket)
    run_until(expiry, clock, START + 19)
    assert socket.warnings == [] and not socket.expired
    run_until(expiry, clock, START + 20)
    assert socket.warnings == [10] and not socket.expired
    run_until(expiry, clock, START + 29)
    assert not socket.expired
    run_until(expiry, clock, START + 30)
    assert socket.expired


def test_seconds_skipped_between_sweeps_are_still_swept() -> None:
    clock = Clock()
    expiry = Expiry(lead=10, clock=clock)
    socket = Socket(START + 30)
    expiry.track(socket)
    run_until(expiry, clock, START + 45)
    assert socket.warnings == [0] and socket.expired


def test_extending_moves_both_the_warning_and_the_close() -> None:
    clock = Clock()
    expiry = Expiry(lead=10, clock=clock)
    socket = Socket(START + 30)
    expiry.track(socket)
    run_until(expiry, clock, START + 20)
    expiry.extend(socket, START + 60)
    run_until(expiry, clock, START + 49)
    assert socket.warnings == [10] and not socket.expired
    run_until(expiry, clock, START + 50)
    assert socket.warnings == [10, 10]
    run_until(expiry, clock, START + 60)
    assert socket.expired


def test_a_socket_inside_its_warning_window_is_warned_at_once_and_an_expired_one_closed() -> None:
    clock = Clock()
    expiry = Expiry(lead=10, clock=clock)
    late, gone = Socket(START + 4), Socket(START)
    expiry.track(late)
    expiry.track(gone)
    assert late.warnings == [4] and not late.expired
    assert gone.expired


def test_a_forgotten_socket_is_neither_warned_nor_closed_nor_kept() -> None:
    clock = Clock()
    expiry = Expiry(lead=10, clock=clock)
    waiting, warned = Socket(START + 30), Socket(START + 12)
    expiry.track(waiting)
    expiry.track(warned)
    run_until(expiry, clock, START + 2)
    assert warned.warnings == [10]
    expiry.forget(waiting)
    expiry.forget(warned)
    run_until(expiry, clock, START + 40)
    assert waiting.warnings == [] and not waiting.expired and not warned.expired
    assert expiry.tracked == 0
