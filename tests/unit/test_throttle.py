from __future__ import annotations

import uuid

import pytest

from gochat_py.ids import UserId
from gochat_py.websocket.throttle import IDLE_BUCKET_SECONDS, Throttle

ALICE = UserId(uuid.UUID("0192f0c8-7b3a-7c4e-9a1b-000000000001"))
BOB = UserId(uuid.UUID("0192f0c8-7b3a-7c4e-9a1b-000000000002"))
CAROL = UserId(uuid.UUID("0192f0c8-7b3a-7c4e-9a1b-000000000003"))


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


def test_a_new_user_may_send_a_full_burst_at_once(clock: Clock) -> None:
    throttle = Throttle(rate=2.0, burst=5, clock=clock)
    assert [throttle.take(ALICE) for _ in range(5)] == [0.0] * 5


def test_past_the_burst_the_wait_until_the_next_token_is_returned(clock: Clock) -> None:
    throttle = Throttle(rate=2.0, burst=5, clock=clock)
    for _ in range(5):
        throttle.take(ALICE)
    assert throttle.take(ALICE) == pytest.approx(0.5)  # one token at 2 per second


def test_a_refused_frame_spends_nothing(clock: Clock) -> None:
    throttle = Throttle(rate=2.0, burst=1, clock=clock)
    throttle.take(ALICE)
    assert throttle.take(ALICE) == pytest.approx(0.5)
    assert throttle.take(ALICE) == pytest.approx(0.5)  # not 1.0: the refusal cost no token
    clock.advance(0.5)
    assert throttle.take(ALICE) == 0.0


def test_tokens_come_back_at_the_rate(clock: Clock) -> None:
    throttle = Throttle(rate=4.0, burst=2, clock=clock)
    throttle.take(ALICE)
    throttle.take(ALICE)
    clock.advance(0.1)  # 0.4 of a token
    assert throttle.take(ALICE) == pytest.approx(0.15)
    clock.advance(0.15)
    assert throttle.take(ALICE) == 0.0
    assert throttle.take(ALICE) == pytest.approx(0.25)


def test_a_steady_sender_at_the_rate_is_never_refused(clock: Clock) -> None:
    throttle = Throttle(rate=10.0, burst=1, clock=clock)
    for _ in range(100):
        assert throttle.take(ALICE) == 0.0
        clock.advance(0.1)


def test_an_idle_user_gets_back_no_more_than_one_burst(clock: Clock) -> None:
    throttle = Throttle(rate=2.0, burst=3, clock=clock)
    for _ in range(3):
        throttle.take(ALICE)
    clock.advance(60)  # 120 tokens' worth of time
    assert [throttle.take(ALICE) for _ in range(3)] == [0.0] * 3
    assert throttle.take(ALICE) == pytest.approx(0.5)


def test_each_user_has_a_budget_of_their_own(clock: Clock) -> None:
    throttle = Throttle(rate=1.0, burst=2, clock=clock)
    throttle.take(ALICE)
    throttle.take(ALICE)
    assert throttle.take(ALICE) == pytest.approx(1.0)
    assert [throttle.take(BOB), throttle.take(BOB)] == [0.0, 0.0]
    assert throttle.take(BOB) == pytest.approx(1.0)


def test_buckets_idle_past_the_limit_are_forgotten_and_active_ones_kept(clock: Clock) -> None:
    throttle = Throttle(rate=1.0, burst=2, clock=clock)
    throttle.take(ALICE)
    clock.advance(IDLE_BUCKET_SECONDS - 10)
    throttle.take(BOB)
    clock.advance(11)  # alice idle past the limit, bob for 11 s; carol's take sweeps
    throttle.take(CAROL)
    # The sweep bounds memory, which only the bucket table shows: a forgotten bucket and
    # a full one answer take() alike.
    assert set(throttle._buckets) == {BOB, CAROL}


def test_no_sweep_runs_before_the_idle_limit_has_passed(clock: Clock) -> None:
    throttle = Throttle(rate=1.0, burst=2, clock=clock)
    throttle.take(ALICE)
    clock.advance(IDLE_BUCKET_SECONDS)  # not past it yet
    throttle.take(BOB)
    assert set(throttle._buckets) == {ALICE, BOB}


def test_a_forgotten_user_comes_back_with_a_full_burst(clock: Clock) -> None:
    throttle = Throttle(rate=1.0, burst=2, clock=clock)
    throttle.take(ALICE)
    throttle.take(ALICE)
    clock.advance(IDLE_BUCKET_SECONDS + 1)
    throttle.take(BOB)  # sweeps alice away
    assert [throttle.take(ALICE), throttle.take(ALICE)] == [0.0, 0.0]
    assert throttle.take(ALICE) == pytest.approx(1.0)
