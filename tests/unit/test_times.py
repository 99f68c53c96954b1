from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from gochat_py import times


def test_unix_milliseconds_round_trip_exactly_far_from_1970() -> None:
    moment = datetime(2262, 4, 11, 23, 47, 16, 854000, tzinfo=UTC)
    assert times.from_unix_ms(times.unix_ms(moment)) == moment


def test_unix_milliseconds_drop_the_microseconds_a_message_time_does_not_carry() -> None:
    moment = datetime(2026, 12, 2, 3, 4, 5, 678999, tzinfo=UTC)
    assert times.unix_ms(moment) == 1_796_180_645_678


def test_unix_microseconds_keep_what_postgresql_stores() -> None:
    moment = datetime(2026, 12, 2, 3, 4, 5, 678901, tzinfo=UTC)
    assert times.unix_us(moment) == 1_796_180_645_678_901
    assert times.from_unix_us(times.unix_us(moment)) == moment


def test_a_time_in_another_zone_means_the_same_instant() -> None:
    utc = datetime(2026, 1, 1, 12, tzinfo=UTC)
    assert times.unix_ms(utc.astimezone(UTC) + timedelta(0)) == times.unix_ms(utc)
    assert times.unix_ms(utc.astimezone()) == times.unix_ms(utc)


def test_now_is_the_wall_clock_in_milliseconds() -> None:
    before = int(time.time() * 1000)
    now = times.now_ms()
    after = int(time.time() * 1000)
    assert before <= now <= after
