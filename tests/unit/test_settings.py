from __future__ import annotations

import pytest

from gochat_py.realtime.presence import SWEEP_INTERVAL_MAX
from gochat_py.settings import DEFAULT_JWT_SECRET, SettingsError, load_settings, parse_duration

STRONG_SECRET = "s" * 40


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("15m", 900), ("168h", 604800), ("1h30m", 5400), ("500ms", 0.5), ("90s", 90), ("7d", 604800)],
)
def test_go_style_durations_parse_to_seconds(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["15x", "m15", "15", "", "-5m", "0s", "15m garbage", "1.5.5h"])
def test_malformed_durations_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


def test_defaults_follow_the_gochat_readme() -> None:
    settings = load_settings({})
    assert settings.env == "dev"
    assert settings.server_port == 8080
    assert settings.jwt_access_expiry == 15 * 60
    assert settings.jwt_refresh_expiry == 168 * 3600
    assert settings.redis_url == "redis://localhost:6379/0"


@pytest.mark.parametrize(
    ("variable", "value", "named"),
    [
        ("JWT_ACCESS_EXPIRY", "15x", "JWT_ACCESS_EXPIRY"),
        ("JWT_REFRESH_EXPIRY", "forever", "JWT_REFRESH_EXPIRY"),
        ("SERVER_PORT", "abc", "SERVER_PORT"),
        ("SERVER_PORT", "70000", "SERVER_PORT"),
        ("ENV", "moon", "ENV"),
        ("LOG_FORMAT", "xml", "LOG_FORMAT"),
        ("LOG_LEVEL", "loud", "LOG_LEVEL"),
        ("REDIS_ADDR", "no-port", "REDIS_ADDR"),
        ("REDIS_URL", "http://x", "REDIS_URL"),
        ("DATABASE_URL", "mysql://x", "DATABASE_URL"),
        ("ARGON2_MEMORY_KIB", "0", "ARGON2_MEMORY_KIB"),
        ("DB_POOL_MAX", "many", "DB_POOL_MAX"),
        ("WS_PER_MESSAGE_DEFLATE", "maybe", "WS_PER_MESSAGE_DEFLATE"),
        ("RECENT_CACHE_MAX", "0", "RECENT_CACHE_MAX"),
        ("GROUP_MAX_MEMBERS", "0", "GROUP_MAX_MEMBERS"),
        ("ENVELOPE_NAMED_MAX", "lots", "ENVELOPE_NAMED_MAX"),
        ("BROADCAST_RATE", "3", "BROADCAST_RATE"),
        ("BROADCAST_RATE", "0/1m", "BROADCAST_RATE"),
        ("BROADCAST_RATE", "3/", "BROADCAST_RATE"),
        ("BROADCAST_RATE", "3/soon", "BROADCAST_RATE"),
        ("BROADCAST_RATE", "many/1m", "BROADCAST_RATE"),
        ("WORKER_RETRY_MAX", "0s", "WORKER_RETRY_MAX"),
        ("WORKER_RETRY_MAX", "5", "WORKER_RETRY_MAX"),
    ],
)
def test_a_bad_value_stops_start_up_naming_the_variable(
    variable: str, value: str, named: str
) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings({variable: value})
    assert caught.value.variable == named
    assert str(caught.value).startswith(f"{named}: ")


def test_broadcasts_are_limited_to_three_a_minute_by_default() -> None:
    assert load_settings({}).broadcast_rate == (3, 60.0)


@pytest.mark.parametrize(
    ("value", "rate"),
    [
        ("10/1h", (10, 3600.0)),
        ("3/m", (3, 60.0)),
        (" 5 / 30s ", (5, 30.0)),
        ("1/1h30m", (1, 5400.0)),
    ],
)
def test_broadcast_rate_is_a_count_per_duration(value: str, rate: tuple[int, float]) -> None:
    assert load_settings({"BROADCAST_RATE": value}).broadcast_rate == rate


def test_a_worker_retries_an_outage_at_most_5_seconds_apart_unless_told() -> None:
    assert load_settings({}).worker_retry_max == 5.0
    assert load_settings({"WORKER_RETRY_MAX": "500ms"}).worker_retry_max == 0.5


def test_access_expiry_must_be_shorter_than_refresh_expiry() -> None:
    with pytest.raises(SettingsError, match="JWT_ACCESS_EXPIRY"):
        load_settings({"JWT_ACCESS_EXPIRY": "2h", "JWT_REFRESH_EXPIRY": "1h"})


def test_by_default_a_killed_servers_users_go_offline_within_a_minute() -> None:
    settings = load_settings({})
    assert (settings.presence_ttl, settings.presence_heartbeat) == (30.0, 10.0)
    assert settings.presence_ttl + SWEEP_INTERVAL_MAX <= 60


def test_the_presence_heartbeat_must_be_shorter_than_its_ttl() -> None:
    with pytest.raises(SettingsError, match="PRESENCE_HEARTBEAT"):
        load_settings({"PRESENCE_TTL": "5s", "PRESENCE_HEARTBEAT": "5s"})
    assert load_settings({"PRESENCE_TTL": "3s", "PRESENCE_HEARTBEAT": "1s"}).presence_ttl == 3


def test_redis_addr_password_and_db_compose_a_url() -> None:
    settings = load_settings(
        {"REDIS_ADDR": "cache.internal:6380", "REDIS_PASSWORD": "p@ss/word", "REDIS_DB": "3"}
    )
    assert settings.redis_url == "redis://:p%40ss%2Fword@cache.internal:6380/3"


def test_redis_url_wins_over_redis_addr() -> None:
    settings = load_settings({"REDIS_URL": "redis://a:1/2", "REDIS_ADDR": "b:3"})
    assert settings.redis_url == "redis://a:1/2"


@pytest.mark.parametrize("env", ["prod", "staging"])
def test_outside_development_the_default_secret_is_refused(env: str) -> None:
    with pytest.raises(SettingsError, match="JWT_SECRET"):
        load_settings({"ENV": env})
    with pytest.raises(SettingsError, match="JWT_SECRET"):
        load_settings({"ENV": env, "JWT_SECRET": DEFAULT_JWT_SECRET})


def test_outside_development_a_short_secret_is_refused() -> None:
    with pytest.raises(SettingsError, match="at least 32 bytes"):
        load_settings({"ENV": "prod", "JWT_SECRET": "short"})


def test_production_starts_with_a_strong_secret() -> None:
    assert load_settings({"ENV": "prod", "JWT_SECRET": STRONG_SECRET}).jwt_secret == STRONG_SECRET


@pytest.mark.parametrize("env", ["dev", "local"])
def test_development_may_use_the_default_secret(env: str) -> None:
    assert load_settings({"ENV": env}).jwt_secret == DEFAULT_JWT_SECRET


def test_cookies_are_secure_by_default_only_outside_dev() -> None:
    assert load_settings({}).cookie_secure is False
    assert load_settings({"ENV": "test"}).cookie_secure is False
    production = load_settings({"ENV": "prod", "JWT_SECRET": STRONG_SECRET})
    assert production.cookie_secure is True
    assert production.cookie_samesite == "lax"
    assert production.cookie_domain is None
    assert load_settings({"COOKIE_SECURE": "true"}).cookie_secure is True
    behind_http = {"ENV": "prod", "JWT_SECRET": STRONG_SECRET, "COOKIE_SECURE": "false"}
    assert load_settings(behind_http).cookie_secure is False


def test_samesite_none_without_secure_is_refused() -> None:
    with pytest.raises(SettingsError) as refused:
        load_settings({"COOKIE_SAMESITE": "none"})
    assert refused.value.variable == "COOKIE_SAMESITE"
    assert (
        load_settings({"COOKIE_SAMESITE": "None", "COOKIE_SECURE": "1"}).cookie_samesite == "none"
    )


def test_cors_origins_are_a_comma_separated_list_of_origins() -> None:
    assert load_settings({}).cors_origins == ()
    settings = load_settings(
        {"CORS_ORIGINS": "https://app.example.com:443, http://localhost:3000/"}
    )
    assert settings.cors_origins == ("https://app.example.com", "http://localhost:3000")


@pytest.mark.parametrize(
    "value", ["*", "app.example.com", "https://app.example.com/path", "null", "https://u@x.com"]
)
def test_a_cors_origin_that_is_no_origin_is_refused(value: str) -> None:
    with pytest.raises(SettingsError) as refused:
        load_settings({"CORS_ORIGINS": f"https://ok.example.com,{value}"})
    assert refused.value.variable == "CORS_ORIGINS"


@pytest.mark.parametrize(("env", "mode"), [("dev", "open"), ("test", "open"), ("prod", "off")])
def test_the_dashboard_is_open_in_development_and_off_elsewhere(env: str, mode: str) -> None:
    settings = load_settings({"ENV": env, "JWT_SECRET": STRONG_SECRET})
    assert settings.dashboard == mode


def test_a_dashboard_token_puts_the_dashboard_behind_it_by_default() -> None:
    token = "a-dashboard-token-0123456789"
    env = {"ENV": "prod", "JWT_SECRET": STRONG_SECRET, "DASHBOARD_TOKEN": token}
    settings = load_settings(env)
    assert (settings.dashboard, settings.dashboard_token) == ("token", token)
    assert load_settings({**env, "DASHBOARD": "off"}).dashboard == "off"


@pytest.mark.parametrize("token", ["", "short"])
def test_token_mode_needs_a_long_enough_token(token: str) -> None:
    with pytest.raises(SettingsError, match="DASHBOARD_TOKEN"):
        load_settings({"DASHBOARD": "token", "DASHBOARD_TOKEN": token})


def test_an_unknown_dashboard_mode_is_refused() -> None:
    with pytest.raises(SettingsError, match="DASHBOARD"):
        load_settings({"DASHBOARD": "public"})


def test_the_webhook_is_off_until_its_url_is_set() -> None:
    settings = load_settings({})
    assert settings.notify_webhook_url is None
    assert settings.notify_webhook_timeout == 5.0
    assert settings.notify_webhook_give_up == 24 * 3600
    assert settings.notify_webhook_max_queued == 1_000_000


def test_the_webhook_queue_bound_must_be_a_positive_count() -> None:
    assert load_settings({"NOTIFY_WEBHOOK_MAX_QUEUED": "5000"}).notify_webhook_max_queued == 5000
    for wrong in ("0", "-1", "lots"):
        with pytest.raises(SettingsError, match="NOTIFY_WEBHOOK_MAX_QUEUED"):
            load_settings({"NOTIFY_WEBHOOK_MAX_QUEUED": wrong})


def test_a_webhook_url_needs_a_secret_of_at_least_16_characters() -> None:
    url = "https://push.example.com/gochat"
    with pytest.raises(SettingsError, match="must be set with NOTIFY_WEBHOOK_URL"):
        load_settings({"NOTIFY_WEBHOOK_URL": url})
    with pytest.raises(SettingsError, match="at least 16 characters") as caught:
        load_settings({"NOTIFY_WEBHOOK_URL": url, "NOTIFY_WEBHOOK_SECRET": "short"})
    assert caught.value.variable == "NOTIFY_WEBHOOK_SECRET"
    assert "short" not in str(caught.value)  # the secret itself is never echoed
    settings = load_settings(
        {
            "NOTIFY_WEBHOOK_URL": url,
            "NOTIFY_WEBHOOK_SECRET": "s" * 16,
            "NOTIFY_WEBHOOK_TIMEOUT": "2s",
            "NOTIFY_WEBHOOK_GIVE_UP": "1h",
        }
    )
    assert (settings.notify_webhook_url, settings.notify_webhook_timeout) == (url, 2.0)
    assert settings.notify_webhook_give_up == 3600.0


@pytest.mark.parametrize("url", ["push.example.com", "ftp://push.example.com", "https://"])
def test_a_webhook_url_that_is_not_http_is_refused(url: str) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings({"NOTIFY_WEBHOOK_URL": url, "NOTIFY_WEBHOOK_SECRET": "s" * 16})
    assert caught.value.variable == "NOTIFY_WEBHOOK_URL"
