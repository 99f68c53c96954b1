from __future__ import annotations

from worker.webhooks.deliver import IN_FLIGHT_MARGIN, DeliveryConfig


def test_retries_back_off_exponentially_up_to_a_ceiling() -> None:
    config = DeliveryConfig(timeout=0.5, give_up=3600, retry_first=1.0, retry_max=600.0)
    delays = [config.retry_delay(attempts) for attempts in range(1, 13)]
    assert delays[:5] == [1.5, 2.0, 4.0, 8.0, 16.0]
    assert delays[-1] == 600.0
    assert delays == sorted(delays)


def test_no_retry_comes_before_an_attempt_in_flight_elsewhere_could_have_ended() -> None:
    # Otherwise a second deliverer could claim and post an event while the first still is.
    config = DeliveryConfig(timeout=30.0, give_up=3600, retry_first=1.0, retry_max=20.0)
    floor = 30.0 + IN_FLIGHT_MARGIN
    assert all(config.retry_delay(attempts) >= floor for attempts in range(1, 40))
