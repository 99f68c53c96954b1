"""Time as the API speaks it: unix milliseconds in every body and frame, aware datetimes in
PostgreSQL. Every conversion between the two goes through here."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# timedelta arithmetic, not float timestamps: a float loses microseconds far from 1970.
_MILLISECOND = timedelta(milliseconds=1)
_MICROSECOND = timedelta(microseconds=1)


def now_ms() -> int:
    return int(time.time() * 1000)


def unix_ms(moment: datetime) -> int:
    return (moment - EPOCH) // _MILLISECOND


def from_unix_ms(ms: int) -> datetime:
    return EPOCH + ms * _MILLISECOND


def unix_us(moment: datetime) -> int:
    """Microseconds: PostgreSQL's own precision, for keyset cursors that must be exact."""
    return (moment - EPOCH) // _MICROSECOND


def from_unix_us(us: int) -> datetime:
    return EPOCH + us * _MICROSECOND
