from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from loguru import logger
from prometheus_client import CollectorRegistry, Gauge

from gochat_py.settings import load_settings
from worker.consumer import ConsumerConfig
from worker.outage import BACKOFF_FIRST, BACKOFF_MAX, Backoff, Outage


@pytest.fixture
def events() -> Iterator[list[dict[str, Any]]]:
    records: list[dict[str, Any]] = []
    sink = logger.add(lambda message: records.append(message.record), level="INFO")
    yield records
    logger.remove(sink)


def test_backoff_doubles_from_a_tenth_of_a_second_to_five_and_starts_over_after_success() -> None:
    backoff = Backoff()

    delays = [backoff.next_delay() for _ in range(9)]
    backoff.reset()

    assert delays == [0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0, 5.0]
    assert (delays[0], max(delays)) == (BACKOFF_FIRST, BACKOFF_MAX)
    assert backoff.next_delay() == BACKOFF_FIRST


def test_an_outage_is_logged_and_measured_once_when_it_starts_and_once_when_it_ends(
    events: list[dict[str, Any]],
) -> None:
    registry = CollectorRegistry()
    outage = Outage("postgres", Gauge("down", "down", registry=registry))

    delays = [outage.failed(ConnectionRefusedError(111, "refused")) for _ in range(5)]
    down_gauge = registry.get_sample_value("down")
    outage.recovered()
    outage.recovered()

    assert delays == [0.1, 0.2, 0.4, 0.8, 1.6]
    assert (down_gauge, registry.get_sample_value("down")) == (1, 0)
    assert [e["message"] for e in events] == ["dependency_down", "dependency_up"]
    assert events[0]["extra"]["error"] == "ConnectionRefusedError: [Errno 111] refused"
    assert events[1]["extra"]["attempts"] == 5
    assert outage.failed(TimeoutError()) == BACKOFF_FIRST  # a new outage backs off afresh


def test_a_success_attempted_before_the_outage_began_does_not_end_it(
    events: list[dict[str, Any]],
) -> None:
    registry = CollectorRegistry()
    outage = Outage("redis", Gauge("down", "down", registry=registry))
    read_at = time.monotonic()  # a blocked read, issued while the server was still up

    outage.failed(ConnectionError("closed by server"))  # an XACK beside it meets the shutdown
    outage.recovered(read_at)  # the read is answered by the server on its way down
    still_down = outage.down
    outage.recovered(time.monotonic())

    assert still_down and not outage.down
    assert [e["message"] for e in events] == ["dependency_down", "dependency_up"]
    assert registry.get_sample_value("down") == 0


def test_an_outage_retries_at_most_its_ceiling_apart() -> None:
    outage = Outage("postgres", Gauge("down", "down", registry=CollectorRegistry()), ceiling=0.5)

    delays = [outage.failed(ConnectionRefusedError(111, "refused")) for _ in range(6)]

    assert delays == [0.1, 0.2, 0.4, 0.5, 0.5, 0.5]


def test_the_worker_takes_its_ceiling_from_worker_retry_max() -> None:
    assert ConsumerConfig.from_settings(load_settings({})).retry_max == BACKOFF_MAX
    settings = load_settings({"WORKER_RETRY_MAX": "500ms"})
    assert ConsumerConfig.from_settings(settings).retry_max == 0.5
