"""Configuration from environment variables, validated once at start-up."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import TypeVar
from urllib.parse import quote, urlsplit

import msgspec

from gochat_py.origins import normalize_origin

DEV_ENVIRONMENTS = frozenset({"dev", "local", "test"})
KNOWN_ENVIRONMENTS = DEV_ENVIRONMENTS | {"staging", "prod", "production"}
# Public on purpose: anyone can forge tokens signed with it, so only dev may use it.
DEFAULT_JWT_SECRET = "gochat-py-dev-secret-do-not-use-in-production"
MIN_JWT_SECRET_BYTES = 32  # HS256 keys shorter than the hash output weaken it (RFC 7518 §3.2)
# Who may open GET /dashboard (rest/dashboard.py): anyone, a holder of DASHBOARD_TOKEN, nobody.
DASHBOARD_MODES = ("open", "token", "off")
MIN_DASHBOARD_TOKEN_CHARS = 16  # a shared secret short enough to guess is no access control
MIN_WEBHOOK_SECRET_CHARS = 16  # the receiver's only proof that an event came from us

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}

T = TypeVar("T")


class SettingsError(ValueError):
    """A configuration variable has a value the service cannot run with."""

    def __init__(self, variable: str, problem: str) -> None:
        super().__init__(f"{variable}: {problem}")
        self.variable = variable


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    """Everything the server and worker read from the environment."""

    env: str = "dev"
    server_host: str = "0.0.0.0"
    server_port: int = 8080
    database_url: str = "postgresql://gochat@127.0.0.1:5432/gochat"
    redis_url: str = "redis://localhost:6379/0"
    jwt_secret: str = DEFAULT_JWT_SECRET
    jwt_access_expiry: float = 15 * 60.0
    jwt_refresh_expiry: float = 168 * 3600.0
    log_level: str = "INFO"
    log_format: str = "text"
    argon2_time_cost: int = 3
    argon2_memory_kib: int = 65536
    argon2_parallelism: int = 4
    password_hash_threads: int = 2
    login_limit_per_account: int = 10
    login_limit_per_address: int = 50
    register_limit_per_address: int = 30
    rate_limit_window: float = 60.0
    contact_request_limit: int = 20
    contact_request_window: float = 3600.0
    # Broadcasts a user may make per window (POST /broadcasts and the socket's frame alike),
    # as (count, seconds): each may write to a thousand people.
    broadcast_rate: tuple[int, float] = (3, 60.0)
    db_pool_max: int = 10
    stream_partitions: int = 1
    ws_send_queue: int = 1000
    # How long a socket that connected with ?resume=1 holds live frames waiting for its
    # first frame; past it they go out as if no resume came. A client sends its resume
    # right after the handshake: a few round trips.
    ws_resume_hold: float = 5.0
    ws_rate: float = 20.0
    ws_burst: int = 40
    ws_ping_interval: float = 20.0
    ws_per_message_deflate: bool = False
    # A socket's entry in Redis lives this long unless its process refreshes it (every
    # PRESENCE_HEARTBEAT): a process killed outright has its users go offline within this
    # plus a sweep (realtime/presence.py), 35 s by default.
    presence_ttl: float = 30.0
    presence_heartbeat: float = 10.0
    # Messages one conversation's recent cache may hold (those the worker has not persisted,
    # and its newest persisted ones); past it a send is refused as backlogged. ~400 bytes
    # each (measured, short messages): 100,000 is ~40 MiB, minutes of a busy group's
    # traffic with the worker down.
    recent_cache_max: int = 100_000
    # Members a group may have (GROUP_MAX_MEMBERS); a request adds at most 1,000 at once.
    group_max_members: int = 10_000
    # Up to this many members a conversation's frames name their recipients, above it they
    # say "every member routed here" (redis/envelope.py): names cost every process holding
    # one of the members 37 bytes each per frame, routes cost nothing per frame.
    envelope_named_max: int = 256
    # How often a process writes the delivered marks it coalesced (one UPDATE for all) and
    # tells the senders: the delay of a `delivered` event, and what a crash may lose.
    delivery_flush_interval: float = 0.25
    worker_batch_size: int = 5000  # rows per transaction; 500 kept the worker at ~35% of COPY
    worker_claim_idle: float = 30.0
    # The longest wait between a worker's attempts while PostgreSQL or Redis is down: the
    # retries double up to it, and it is how late the worker may notice the recovery.
    worker_retry_max: float = 5.0
    worker_max_deliveries: int = 5
    worker_metrics_port: int = 9100  # 0: no metrics endpoint
    # Browser sessions (rest/cookies.py). Secure is off by default only in dev/local/test,
    # where the server runs on plain http; load_settings turns it on elsewhere.
    cookie_secure: bool = False
    cookie_samesite: str = "lax"
    cookie_domain: str | None = None
    # Origins, besides the server's own, whose pages may use its cookies (CORS with
    # credentials, the CSRF and WebSocket origin checks). Normalized by origins.py.
    cors_origins: tuple[str, ...] = ()
    # The live dashboard. load_settings picks the default: open in dev/local/test, token
    # when DASHBOARD_TOKEN is set, off otherwise.
    dashboard: str = "off"
    dashboard_token: str | None = None
    # The webhook for offline users (worker/webhooks/): off while the URL is unset.
    notify_webhook_url: str | None = None
    notify_webhook_secret: str | None = None  # HMAC-SHA256 key of X-Gochat-Signature
    notify_webhook_timeout: float = 5.0  # one POST, start to end
    notify_webhook_give_up: float = 24 * 3600.0  # after this, a failing event is dead-lettered
    notify_webhook_metrics_port: int = 9101  # the deliverer's Prometheus endpoint; 0: none
    # Events the webhook stream holds at most: past it the oldest go, so a receiver down
    # for days cannot fill Redis's memory.
    notify_webhook_max_queued: int = 1_000_000
    # Uploads (usecases/uploads.py). The local store keeps them under MEDIA_DIR, beside the
    # dev stack's data; every store stages an upload there while it arrives.
    media_dir: str = ".data/media"
    media_backend: str = "local"
    media_max_bytes: int = 25 * 1024 * 1024  # one upload; past it: 413 while it arrives
    media_quota_bytes: int = 1024 * 1024 * 1024  # what one user's uploads may add up to
    media_upload_rate: tuple[int, float] = (30, 60.0)  # uploads a user may start per window
    # Decoded pixels an image may have: a small file of huge dimensions (a decompression
    # bomb) would take gigabytes to thumbnail. 50 MP is a large phone photo.
    media_max_pixels: int = 50_000_000
    media_thumbnail_workers: int = 2  # images decoded at once, each in a thread of its own
    # Media put to no use (no message, no avatar) is deleted by the worker after this.
    media_unattached_ttl: float = 24 * 3600.0
    media_cleanup_interval: float = 600.0  # how often the worker looks for such media
    # The S3-compatible store (MEDIA_BACKEND=s3); downloads redirect to URLs signed for
    # MEDIA_S3_URL_TTL.
    media_s3_endpoint: str | None = None
    media_s3_bucket: str | None = None
    media_s3_region: str = "us-east-1"
    media_s3_access_key_id: str | None = None
    media_s3_secret_access_key: str | None = None
    media_s3_url_ttl: float = 300.0

    @property
    def is_dev(self) -> bool:
        return self.env in DEV_ENVIRONMENTS


def parse_duration(text: str) -> float:
    """Seconds in a Go-style duration: `15m`, `168h`, `1h30m`, `500ms`, `90s`, `7d`."""
    text = text.strip()
    if not text:
        raise ValueError("empty duration")
    pos = 0
    total = 0.0
    for match in _DURATION_PART.finditer(text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        pos = match.end()
    if pos != len(text) or total <= 0:
        raise ValueError(f"{text!r} is not a positive duration like 15m, 168h or 1h30m")
    return total


def _positive_int(text: str) -> int:
    value = int(text.strip())
    if value <= 0:
        raise ValueError(f"{text!r} must be a positive whole number")
    return value


def _rate(text: str) -> tuple[int, float]:
    """`<count>/<duration>`: `3/1m`, `100/1h`; a bare unit means one of it (`3/m`)."""
    count, sep, per = text.strip().partition("/")
    per = per.strip()
    if not sep or not per:
        raise ValueError(f"{text!r} is not a rate like 3/1m (count per duration)")
    return _positive_int(count), parse_duration(per if per[0].isdigit() else f"1{per}")


def _positive_float(text: str) -> float:
    value = float(text.strip())
    if not value > 0:
        raise ValueError(f"{text!r} must be a positive number")
    return value


def _port(text: str) -> int:
    value = int(text.strip())
    if not 1 <= value <= 65535:
        raise ValueError(f"{text!r} is not a TCP port (1-65535)")
    return value


def _port_or_off(text: str) -> int:
    return 0 if text.strip() == "0" else _port(text)


def _switch(text: str) -> bool:
    value = text.strip().lower()
    if value not in ("true", "false", "1", "0", "yes", "no", "on", "off"):
        raise ValueError(f"{text!r} is not a switch (true or false)")
    return value in ("true", "1", "yes", "on")


def _origins(text: str) -> tuple[str, ...]:
    origins = []
    for item in text.split(","):
        if not item.strip():
            continue
        origin = normalize_origin(item)
        parts = urlsplit(item.strip())
        # `*` is refused: credentials may only be shared with origins named one by one.
        if origin is None or parts.path not in ("", "/") or parts.query or parts.username:
            raise ValueError(f"{item.strip()!r} is not an origin like https://chat.example.com")
        origins.append(origin)
    return tuple(origins)


def _http_url(text: str) -> str:
    url = text.strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{url!r} is not an http:// or https:// URL")
    return url


def _choice(*allowed: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        value = text.strip().lower()
        if value not in allowed:
            raise ValueError(f"{text!r} is not one of {', '.join(allowed)}")
        return value

    return parse


def _read(env: Mapping[str, str], name: str, parse: Callable[[str], T], default: T) -> T:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return parse(raw)
    except ValueError as exc:
        detail = str(exc)
        if detail.startswith("invalid literal"):
            detail = f"{raw!r} is not a whole number"
        elif detail.startswith("could not convert"):
            detail = f"{raw!r} is not a number"
        raise SettingsError(name, detail) from None


def _redis_url(env: Mapping[str, str], default: str) -> str:
    url = env.get("REDIS_URL", "").strip()
    if url:
        if not url.startswith(("redis://", "rediss://", "unix://")):
            raise SettingsError(
                "REDIS_URL", f"{url!r} must start with redis://, rediss:// or unix://"
            )
        return url
    addr = env.get("REDIS_ADDR", "").strip()
    if not addr:
        return default
    host, sep, port = addr.rpartition(":")
    if (
        not sep
        or not host
        or not (port.isascii() and port.isdigit())
        or not 1 <= int(port) <= 65535
    ):
        raise SettingsError("REDIS_ADDR", f"{addr!r} is not host:port")
    db = _read(env, "REDIS_DB", lambda s: int(s.strip()), 0)
    if db < 0:
        raise SettingsError("REDIS_DB", f"{db} must be 0 or more")
    password = env.get("REDIS_PASSWORD", "")
    auth = f":{quote(password, safe='')}@" if password else ""
    return f"redis://{auth}{host}:{port}/{db}"


def _dashboard_default(environment: str, token: str | None) -> str:
    """Behind the token when one is given, else open on a developer's machine and off
    elsewhere: a production server shows its figures to nobody until told to."""
    if token is not None:
        return "token"
    return "open" if environment in DEV_ENVIRONMENTS else "off"


def load_settings(env: Mapping[str, str]) -> Settings:
    """Read and check every variable; raise SettingsError naming the first bad one."""
    d = Settings()
    environment = _read(env, "ENV", _choice(*sorted(KNOWN_ENVIRONMENTS)), d.env)
    database_url = env.get("DATABASE_URL", "").strip() or d.database_url
    token = env.get("DASHBOARD_TOKEN", "").strip() or d.dashboard_token
    if not database_url.startswith(("postgres://", "postgresql://")):
        raise SettingsError("DATABASE_URL", "must start with postgresql:// or postgres://")
    settings = Settings(
        env=environment,
        server_host=env.get("SERVER_HOST", "").strip() or d.server_host,
        server_port=_read(env, "SERVER_PORT", _port, d.server_port),
        database_url=database_url,
        redis_url=_redis_url(env, d.redis_url),
        jwt_secret=env.get("JWT_SECRET", "") or d.jwt_secret,
        jwt_access_expiry=_read(env, "JWT_ACCESS_EXPIRY", parse_duration, d.jwt_access_expiry),
        jwt_refresh_expiry=_read(env, "JWT_REFRESH_EXPIRY", parse_duration, d.jwt_refresh_expiry),
        log_level=_read(
            env, "LOG_LEVEL", _choice("trace", "debug", "info", "warning", "error"), "info"
        ).upper(),
        log_format=_read(env, "LOG_FORMAT", _choice("text", "json"), d.log_format),
        argon2_time_cost=_read(env, "ARGON2_TIME_COST", _positive_int, d.argon2_time_cost),
        argon2_memory_kib=_read(env, "ARGON2_MEMORY_KIB", _positive_int, d.argon2_memory_kib),
        argon2_parallelism=_read(env, "ARGON2_PARALLELISM", _positive_int, d.argon2_parallelism),
        password_hash_threads=_read(
            env, "PASSWORD_HASH_THREADS", _positive_int, d.password_hash_threads
        ),
        login_limit_per_account=_read(
            env, "LOGIN_LIMIT_PER_ACCOUNT", _positive_int, d.login_limit_per_account
        ),
        login_limit_per_address=_read(
            env, "LOGIN_LIMIT_PER_ADDRESS", _positive_int, d.login_limit_per_address
        ),
        register_limit_per_address=_read(
            env, "REGISTER_LIMIT_PER_ADDRESS", _positive_int, d.register_limit_per_address
        ),
        rate_limit_window=_read(env, "RATE_LIMIT_WINDOW", parse_duration, d.rate_limit_window),
        contact_request_limit=_read(
            env, "CONTACT_REQUEST_LIMIT", _positive_int, d.contact_request_limit
        ),
        contact_request_window=_read(
            env, "CONTACT_REQUEST_WINDOW", parse_duration, d.contact_request_window
        ),
        broadcast_rate=_read(env, "BROADCAST_RATE", _rate, d.broadcast_rate),
        db_pool_max=_read(env, "DB_POOL_MAX", _positive_int, d.db_pool_max),
        stream_partitions=_read(env, "STREAM_PARTITIONS", _positive_int, d.stream_partitions),
        ws_send_queue=_read(env, "WS_SEND_QUEUE", _positive_int, d.ws_send_queue),
        ws_resume_hold=_read(env, "WS_RESUME_HOLD", parse_duration, d.ws_resume_hold),
        ws_rate=_read(env, "WS_RATE", _positive_float, d.ws_rate),
        ws_burst=_read(env, "WS_BURST", _positive_int, d.ws_burst),
        ws_ping_interval=_read(env, "WS_PING_INTERVAL", parse_duration, d.ws_ping_interval),
        ws_per_message_deflate=_read(
            env, "WS_PER_MESSAGE_DEFLATE", _switch, d.ws_per_message_deflate
        ),
        presence_ttl=_read(env, "PRESENCE_TTL", parse_duration, d.presence_ttl),
        presence_heartbeat=_read(env, "PRESENCE_HEARTBEAT", parse_duration, d.presence_heartbeat),
        recent_cache_max=_read(env, "RECENT_CACHE_MAX", _positive_int, d.recent_cache_max),
        group_max_members=_read(env, "GROUP_MAX_MEMBERS", _positive_int, d.group_max_members),
        envelope_named_max=_read(env, "ENVELOPE_NAMED_MAX", _positive_int, d.envelope_named_max),
        delivery_flush_interval=_read(
            env, "DELIVERY_FLUSH_INTERVAL", parse_duration, d.delivery_flush_interval
        ),
        worker_batch_size=_read(env, "WORKER_BATCH_SIZE", _positive_int, d.worker_batch_size),
        worker_claim_idle=_read(env, "WORKER_CLAIM_IDLE", parse_duration, d.worker_claim_idle),
        worker_retry_max=_read(env, "WORKER_RETRY_MAX", parse_duration, d.worker_retry_max),
        worker_max_deliveries=_read(
            env, "WORKER_MAX_DELIVERIES", _positive_int, d.worker_max_deliveries
        ),
        worker_metrics_port=_read(env, "WORKER_METRICS_PORT", _port_or_off, d.worker_metrics_port),
        cookie_secure=_read(env, "COOKIE_SECURE", _switch, environment not in DEV_ENVIRONMENTS),
        cookie_samesite=_read(
            env, "COOKIE_SAMESITE", _choice("lax", "strict", "none"), d.cookie_samesite
        ),
        cookie_domain=env.get("COOKIE_DOMAIN", "").strip() or d.cookie_domain,
        cors_origins=_read(env, "CORS_ORIGINS", _origins, d.cors_origins),
        dashboard=_read(
            env, "DASHBOARD", _choice(*DASHBOARD_MODES), _dashboard_default(environment, token)
        ),
        dashboard_token=token,
        notify_webhook_url=_read(env, "NOTIFY_WEBHOOK_URL", _http_url, d.notify_webhook_url),
        notify_webhook_secret=env.get("NOTIFY_WEBHOOK_SECRET", "") or d.notify_webhook_secret,
        notify_webhook_timeout=_read(
            env, "NOTIFY_WEBHOOK_TIMEOUT", parse_duration, d.notify_webhook_timeout
        ),
        notify_webhook_give_up=_read(
            env, "NOTIFY_WEBHOOK_GIVE_UP", parse_duration, d.notify_webhook_give_up
        ),
        notify_webhook_metrics_port=_read(
            env, "NOTIFY_WEBHOOK_METRICS_PORT", _port_or_off, d.notify_webhook_metrics_port
        ),
        notify_webhook_max_queued=_read(
            env, "NOTIFY_WEBHOOK_MAX_QUEUED", _positive_int, d.notify_webhook_max_queued
        ),
        media_dir=env.get("MEDIA_DIR", "").strip() or d.media_dir,
        media_backend=_read(env, "MEDIA_BACKEND", _choice("local", "s3"), d.media_backend),
        media_max_bytes=_read(env, "MEDIA_MAX_BYTES", _positive_int, d.media_max_bytes),
        media_quota_bytes=_read(env, "MEDIA_QUOTA_BYTES", _positive_int, d.media_quota_bytes),
        media_upload_rate=_read(env, "MEDIA_UPLOAD_RATE", _rate, d.media_upload_rate),
        media_max_pixels=_read(env, "MEDIA_MAX_PIXELS", _positive_int, d.media_max_pixels),
        media_thumbnail_workers=_read(
            env, "MEDIA_THUMBNAIL_WORKERS", _positive_int, d.media_thumbnail_workers
        ),
        media_unattached_ttl=_read(
            env, "MEDIA_UNATTACHED_TTL", parse_duration, d.media_unattached_ttl
        ),
        media_cleanup_interval=_read(
            env, "MEDIA_CLEANUP_INTERVAL", parse_duration, d.media_cleanup_interval
        ),
        media_s3_endpoint=_read(env, "MEDIA_S3_ENDPOINT", _http_url, d.media_s3_endpoint),
        media_s3_bucket=env.get("MEDIA_S3_BUCKET", "").strip() or d.media_s3_bucket,
        media_s3_region=env.get("MEDIA_S3_REGION", "").strip() or d.media_s3_region,
        media_s3_access_key_id=env.get("MEDIA_S3_ACCESS_KEY_ID", "").strip()
        or d.media_s3_access_key_id,
        media_s3_secret_access_key=env.get("MEDIA_S3_SECRET_ACCESS_KEY", "")
        or d.media_s3_secret_access_key,
        media_s3_url_ttl=_read(env, "MEDIA_S3_URL_TTL", parse_duration, d.media_s3_url_ttl),
    )
    if settings.media_backend == "s3" and settings.media_s3_bucket is None:
        raise SettingsError("MEDIA_S3_BUCKET", "must be set with MEDIA_BACKEND=s3")
    if settings.jwt_access_expiry >= settings.jwt_refresh_expiry:
        raise SettingsError("JWT_ACCESS_EXPIRY", "must be shorter than JWT_REFRESH_EXPIRY")
    if settings.presence_heartbeat >= settings.presence_ttl:
        # Entries would expire between two refreshes: live users would flicker offline.
        raise SettingsError("PRESENCE_HEARTBEAT", "must be shorter than PRESENCE_TTL")
    if settings.argon2_memory_kib < 8 * settings.argon2_parallelism:
        raise SettingsError("ARGON2_MEMORY_KIB", "must be at least 8 × ARGON2_PARALLELISM")
    if settings.cookie_samesite == "none" and not settings.cookie_secure:
        # Browsers drop a SameSite=None cookie that is not Secure.
        raise SettingsError("COOKIE_SAMESITE", "none requires COOKIE_SECURE=true")
    if settings.dashboard == "token":
        if settings.dashboard_token is None:
            raise SettingsError("DASHBOARD_TOKEN", "must be set with DASHBOARD=token")
        if len(settings.dashboard_token) < MIN_DASHBOARD_TOKEN_CHARS:
            raise SettingsError(
                "DASHBOARD_TOKEN", f"must be at least {MIN_DASHBOARD_TOKEN_CHARS} characters"
            )
    if settings.notify_webhook_url is not None:
        secret = settings.notify_webhook_secret
        if secret is None:
            raise SettingsError("NOTIFY_WEBHOOK_SECRET", "must be set with NOTIFY_WEBHOOK_URL")
        if len(secret) < MIN_WEBHOOK_SECRET_CHARS:
            raise SettingsError(
                "NOTIFY_WEBHOOK_SECRET", f"must be at least {MIN_WEBHOOK_SECRET_CHARS} characters"
            )
    if not settings.is_dev:
        if settings.jwt_secret == DEFAULT_JWT_SECRET:
            raise SettingsError(
                "JWT_SECRET", f"the built-in development secret is refused with ENV={environment}"
            )
        if len(settings.jwt_secret.encode()) < MIN_JWT_SECRET_BYTES:
            raise SettingsError(
                "JWT_SECRET",
                f"must be at least {MIN_JWT_SECRET_BYTES} bytes with ENV={environment}",
            )
    return settings
