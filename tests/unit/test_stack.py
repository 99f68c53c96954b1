"""The dev stack's own variables, read from the environment."""

from __future__ import annotations

import pytest

from gochat_py.devstack.stack import restart_backoff_max
from gochat_py.devstack.supervisor import BACKOFF_MAX
from gochat_py.settings import SettingsError


def test_the_restart_backoff_ceiling_is_a_duration_and_the_supervisors_when_unset() -> None:
    assert restart_backoff_max({}) == BACKOFF_MAX
    assert restart_backoff_max({"LOCAL_RESTART_BACKOFF_MAX": " "}) == BACKOFF_MAX
    assert restart_backoff_max({"LOCAL_RESTART_BACKOFF_MAX": "250ms"}) == 0.25
    assert restart_backoff_max({"LOCAL_RESTART_BACKOFF_MAX": "1m"}) == 60.0


@pytest.mark.parametrize("raw", ["soon", "0s", "-1s", "5"])
def test_a_bad_restart_backoff_ceiling_is_an_error_naming_the_variable(raw: str) -> None:
    with pytest.raises(SettingsError) as raised:
        restart_backoff_max({"LOCAL_RESTART_BACKOFF_MAX": raw})
    assert raised.value.variable == "LOCAL_RESTART_BACKOFF_MAX"
    assert repr(raw) in str(raised.value)
