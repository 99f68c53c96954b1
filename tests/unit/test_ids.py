from __future__ import annotations

import uuid

from gochat_py.ids import uuid7, uuid7_of


def test_a_derived_uuid7_is_the_same_for_the_same_parts_and_time() -> None:
    message, user = uuid7(), uuid7()
    first = uuid7_of(1_764_636_539_123, "message", message, user)
    assert first == uuid7_of(1_764_636_539_123, "message", message, user)
    assert first.version == 7 and first.variant == uuid.RFC_4122
    assert first.int >> 80 == 1_764_636_539_123  # time-ordered like any other UUIDv7
    assert first != uuid7_of(1_764_636_539_123, "message", message, uuid7())
    assert first != uuid7_of(1_764_636_539_123, "notification", message, user)
