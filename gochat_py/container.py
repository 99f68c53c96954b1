"""The composition root: the one place that knows how the parts are built and wired."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Iterator

import asyncpg
from dependency_injector import containers, providers
from redis.asyncio import BlockingConnectionPool, Redis

from gochat_py.blobs.configured import media_store, staging_dir
from gochat_py.blobs.images import Thumbnailer
from gochat_py.blobs.store import BlobStore
from gochat_py.dashboard.assets import load_assets
from gochat_py.dashboard.stats import Dashboard
from gochat_py.metrics import Metrics
from gochat_py.postgres import user_search
from gochat_py.postgres.blocks import Blocks
from gochat_py.postgres.contacts import Contacts
from gochat_py.postgres.conversations import Conversations
from gochat_py.postgres.groups import Groups
from gochat_py.postgres.media import MediaRecords
from gochat_py.postgres.message_search import MessageSearch
from gochat_py.postgres.messages import Messages
from gochat_py.postgres.notifications import StoredNotifications
from gochat_py.postgres.presence import PresenceDirectory
from gochat_py.postgres.profiles import Profiles
from gochat_py.postgres.receipts import Receipts
from gochat_py.postgres.user_search import UserSearch
from gochat_py.postgres.users import Users
from gochat_py.realtime.events import Announcer
from gochat_py.realtime.expiry import Expiry, warning_lead
from gochat_py.realtime.hub import Hub
from gochat_py.realtime.membership import Membership
from gochat_py.realtime.presence import PresenceTracker
from gochat_py.realtime.revocation import Revocations
from gochat_py.redis.broadcasts import BroadcastLedger
from gochat_py.redis.envelope import Addressing
from gochat_py.redis.presence import PresenceStore
from gochat_py.redis.publish import Publisher
from gochat_py.redis.ratelimit import RateLimiter
from gochat_py.redis.recent import RecentCache
from gochat_py.redis.replay import ReplayReader
from gochat_py.redis.sequences import Sequences
from gochat_py.redis.sessions import Sessions
from gochat_py.redis.webhook_queue import WebhookQueue
from gochat_py.rest.health import readiness_checks
from gochat_py.settings import Settings
from gochat_py.usecases.attachments import Attachments
from gochat_py.usecases.auth import Auth
from gochat_py.usecases.broadcasting import Broadcasting
from gochat_py.usecases.conversation_views import ConversationViews
from gochat_py.usecases.delivery_flush import DeliveryFlusher
from gochat_py.usecases.delivery_marks import DeliveryMarks
from gochat_py.usecases.editing import Editing
from gochat_py.usecases.group_lifecycle import GroupLifecycle
from gochat_py.usecases.history import History
from gochat_py.usecases.media_access import MediaAccess
from gochat_py.usecases.members import Members
from gochat_py.usecases.mentions import Mentions
from gochat_py.usecases.message_lookup import MessageLookup
from gochat_py.usecases.message_search import MessageFinder
from gochat_py.usecases.notifications import Notifications
from gochat_py.usecases.passwords import Passwords
from gochat_py.usecases.presence import Presence
from gochat_py.usecases.profiles import UserProfiles
from gochat_py.usecases.read_marks import ReadMarks
from gochat_py.usecases.relationships import Relationships
from gochat_py.usecases.resumption import Resumption
from gochat_py.usecases.sending import Sending
from gochat_py.usecases.system_messages import SystemMessages
from gochat_py.usecases.tokens import TokenCodec
from gochat_py.usecases.typing_notices import TypingNotices
from gochat_py.usecases.uploads import Uploads
from gochat_py.usecases.user_search import PeopleSearch
from gochat_py.websocket.dialects import GochatDialect
from gochat_py.websocket.renewal import Renewal
from gochat_py.websocket.throttle import Throttle

REDIS_CONNECT_TIMEOUT = 2.0  # fail fast: a request should not hang on a dead Redis
# Sends beyond this many in flight wait for a connection instead of failing; more
# connections would only queue inside Redis, which runs one command at a time.
REDIS_POOL_MAX = 64
REDIS_POOL_WAIT = 5.0  # seconds a command may wait for a free connection
# A search holds its connection for about a millisecond: four serve thousands a second.
SEARCH_POOL_MAX = 4


async def open_pg_pool(settings: Settings) -> AsyncIterator[asyncpg.Pool]:
    # min_size=0: the server starts (and answers liveness) while PostgreSQL is down;
    # readiness reports it and connections open as soon as it is back.
    pool = await asyncpg.create_pool(
        settings.database_url, min_size=0, max_size=settings.db_pool_max
    )
    try:
        yield pool
    finally:
        await pool.close()


async def open_search_pool(settings: Settings) -> AsyncIterator[asyncpg.Pool]:
    """User search's own connections: their planner reads index ranges in order only
    (postgres/user_search.py), which the other queries must not be held to."""
    pool = await asyncpg.create_pool(
        settings.database_url,
        min_size=0,
        max_size=SEARCH_POOL_MAX,
        server_settings=user_search.PLANNER_SETTINGS,
    )
    try:
        yield pool
    finally:
        await pool.close()


async def open_redis(settings: Settings) -> AsyncIterator[Redis]:
    pool = BlockingConnectionPool.from_url(
        settings.redis_url,
        max_connections=REDIS_POOL_MAX,
        timeout=REDIS_POOL_WAIT,
        socket_connect_timeout=REDIS_CONNECT_TIMEOUT,
        health_check_interval=30,
    )
    redis = Redis(connection_pool=pool)
    try:
        yield redis
    finally:
        await redis.aclose()
        await pool.aclose()


async def running_hub(
    redis: Redis,
    membership: Membership,
    metrics: Metrics,
    conversations: Conversations,
    partitions: int,
    revocations: Revocations,
) -> AsyncIterator[Hub]:
    hub = Hub(redis, membership, metrics, conversations.ids_of_members, partitions, revocations)
    await hub.start()
    try:
        yield hub
    finally:
        await hub.stop()


async def running_expiry(access_ttl: float) -> AsyncIterator[Expiry]:
    expiry = Expiry(warning_lead(access_ttl))
    expiry.start()
    try:
        yield expiry
    finally:
        await expiry.stop()


async def running_presence(
    store: PresenceStore,
    directory: PresenceDirectory,
    announcer: Announcer,
    membership: Membership,
    metrics: Metrics,
) -> AsyncIterator[Presence]:
    presence = Presence(store, directory, announcer, membership, metrics)
    try:
        yield presence
    finally:
        await presence.close()


async def running_presence_tracker(
    store: PresenceStore, presence: Presence, heartbeat: float, metrics: Metrics
) -> AsyncIterator[PresenceTracker]:
    tracker = PresenceTracker(store, presence.announce, heartbeat, metrics)
    tracker.start()
    try:
        yield tracker
    finally:
        await tracker.stop()


async def running_delivery_flusher(
    pg_pool: asyncpg.Pool, redis: Redis, membership: Membership, settings: Settings
) -> AsyncIterator[DeliveryFlusher]:
    # Built from the pool and the client themselves: the container shuts a resource down
    # before those it takes directly, so the last flush still finds them open.
    partitions = settings.stream_partitions
    flusher = DeliveryFlusher(
        Receipts(pg_pool),
        RecentCache(redis, partitions),
        membership,
        Announcer(redis, partitions),
        settings.delivery_flush_interval,
    )
    flusher.start()
    try:
        yield flusher
    finally:
        await flusher.stop()


def _dashboard(
    hub: Hub,
    metrics: Metrics,
    redis: Redis,
    recent: RecentCache,
    pg_pool: asyncpg.Pool,
    settings: Settings,
) -> Dashboard:
    def probe() -> Awaitable[dict[str, str]]:
        return readiness_checks(pg_pool, redis)

    return Dashboard(hub, metrics, redis, recent, settings.stream_partitions, probe)


def _webhook_queue(redis: Redis, settings: Settings) -> WebhookQueue | None:
    """The queue of the webhook for offline users; None while NOTIFY_WEBHOOK_URL is unset."""
    return (
        WebhookQueue(redis, settings.notify_webhook_max_queued)
        if settings.notify_webhook_url
        else None
    )


def _passwords(settings: Settings) -> Iterator[Passwords]:
    passwords = Passwords(
        settings.argon2_time_cost,
        settings.argon2_memory_kib,
        settings.argon2_parallelism,
        settings.password_hash_threads,
    )
    try:
        yield passwords
    finally:
        passwords.close()


def _resumption(
    conversations: Conversations, redis: Redis, settings: Settings, delivery: DeliveryMarks
) -> Resumption:
    # Half the send queue: the replay and the frames held meanwhile fit in it together.
    # A resume counts as delivery, as a `received` frame does.
    return Resumption(
        conversations,
        ReplayReader(redis, settings.stream_partitions),
        replay_max=max(1, settings.ws_send_queue // 2),
        delivered=delivery.received,
    )


def _uploads(records: MediaRecords, store: BlobStore, redis: Redis, settings: Settings) -> Uploads:
    count, window = settings.media_upload_rate
    return Uploads(
        records,
        store,
        staging_dir(settings),
        Thumbnailer(settings.media_max_pixels, settings.media_thumbnail_workers),
        RateLimiter(redis, window),
        count,
        settings.media_max_bytes,
        settings.media_quota_bytes,
    )


class Container(containers.DeclarativeContainer):
    settings = providers.Dependency(instance_of=Settings)

    metrics = providers.Singleton(Metrics)
    pg_pool = providers.Resource(open_pg_pool, settings)
    redis = providers.Resource(open_redis, settings)
    passwords = providers.Resource(_passwords, settings)

    tokens = providers.Singleton(
        TokenCodec,
        secret=settings.provided.jwt_secret,
        access_ttl=settings.provided.jwt_access_expiry,
        refresh_ttl=settings.provided.jwt_refresh_expiry,
    )
    users = providers.Singleton(Users, pg_pool)
    sessions = providers.Singleton(Sessions, redis, settings.provided.jwt_refresh_expiry)
    limiter = providers.Singleton(RateLimiter, redis, settings.provided.rate_limit_window)
    auth = providers.Singleton(
        Auth,
        users=users,
        passwords=passwords,
        tokens=tokens,
        sessions=sessions,
        limiter=limiter,
        login_limit_per_account=settings.provided.login_limit_per_account,
        login_limit_per_address=settings.provided.login_limit_per_address,
        register_limit_per_address=settings.provided.register_limit_per_address,
    )

    conversations = providers.Singleton(Conversations, pg_pool, settings.provided.group_max_members)
    addressing = providers.Singleton(Addressing, settings.provided.envelope_named_max)
    membership = providers.Singleton(
        Membership,
        conversations.provided.roster,
        redis,
        conversations.provided.direct_ids,
        load_many=conversations.provided.rosters,
    )
    stored_messages = providers.Singleton(Messages, pg_pool)
    recent = providers.Singleton(RecentCache, redis, settings.provided.stream_partitions)
    history = providers.Singleton(History, stored_messages, recent, membership)
    revocations = providers.Singleton(Revocations, sessions)
    hub = providers.Resource(
        running_hub,
        redis,
        membership,
        metrics,
        conversations,
        settings.provided.stream_partitions,
        revocations,
    )
    expiry = providers.Resource(running_expiry, settings.provided.jwt_access_expiry)
    renewal = providers.Singleton(Renewal, auth, revocations, expiry)
    publisher = providers.Singleton(
        Publisher,
        redis,
        settings.provided.stream_partitions,
        conversations.provided.highest_seq,
        recent_max=settings.provided.recent_cache_max,
        addressing=addressing,
    )
    throttle = providers.Singleton(Throttle, settings.provided.ws_rate, settings.provided.ws_burst)
    announcer = providers.Singleton(
        Announcer, redis, settings.provided.stream_partitions, addressing
    )
    stored_notifications = providers.Singleton(StoredNotifications, pg_pool)
    webhook_queue = providers.Singleton(_webhook_queue, redis, settings)
    notifications = providers.Singleton(
        Notifications, stored_notifications, announcer, metrics, webhook_queue
    )
    system_messages = providers.Singleton(SystemMessages, users, membership, publisher)
    groups = providers.Singleton(Groups, pg_pool)
    media_records = providers.Singleton(MediaRecords, pg_pool)
    attachments = providers.Singleton(Attachments, media_records)
    group_lifecycle = providers.Singleton(
        GroupLifecycle, groups, membership, system_messages, announcer, recent, attachments
    )
    members = providers.Singleton(
        Members,
        conversations,
        users,
        membership,
        notifications,
        system_messages,
        groups,
        group_lifecycle,
    )
    conversation_views = providers.Singleton(ConversationViews, conversations, recent)
    message_lookup = providers.Singleton(MessageLookup, stored_messages, recent)
    mentions = providers.Singleton(
        Mentions, users.provided.usernames, conversations.provided.name, notifications
    )
    sending = providers.Singleton(
        Sending, membership, publisher, metrics, message_lookup, mentions, attachments
    )
    editing = providers.Singleton(Editing, membership, conversations, message_lookup, publisher)
    receipts = providers.Singleton(Receipts, pg_pool)
    delivery_flusher = providers.Resource(
        running_delivery_flusher, pg_pool, redis, membership, settings
    )
    delivery_marks = providers.Singleton(
        DeliveryMarks,
        membership,
        conversations,
        providers.Singleton(Sequences, redis, settings.provided.stream_partitions),
        receipts,
        delivery_flusher,
    )
    read_marks = providers.Singleton(
        ReadMarks, membership, conversations, announcer, delivery_marks
    )
    broadcasting = providers.Singleton(
        Broadcasting,
        conversations,
        membership,
        sending,
        providers.Singleton(Sequences, redis, settings.provided.stream_partitions),
        providers.Singleton(BroadcastLedger, redis),
        providers.Singleton(RateLimiter, redis, settings.provided.broadcast_rate[1]),
        settings.provided.broadcast_rate[0],
    )
    typing_notices = providers.Singleton(TypingNotices, membership, announcer)
    resumption = providers.Singleton(_resumption, conversations, redis, settings, delivery_marks)
    search_pool = providers.Resource(open_search_pool, settings)
    people_search = providers.Singleton(PeopleSearch, providers.Singleton(UserSearch, search_pool))
    message_search = providers.Singleton(
        MessageFinder, providers.Singleton(MessageSearch, pg_pool), recent
    )
    presence_store = providers.Singleton(PresenceStore, redis, settings.provided.presence_ttl)
    presence_directory = providers.Singleton(PresenceDirectory, pg_pool)
    presence = providers.Resource(
        running_presence, presence_store, presence_directory, announcer, membership, metrics
    )
    profiles = providers.Singleton(
        UserProfiles, providers.Singleton(Profiles, pg_pool), membership, presence, attachments
    )
    relationships = providers.Singleton(
        Relationships,
        providers.Singleton(Contacts, pg_pool),
        providers.Singleton(Blocks, pg_pool),
        membership,
        announcer,
        providers.Singleton(RateLimiter, redis, settings.provided.contact_request_window),
        settings.provided.contact_request_limit,
        notifications,
        presence,
    )
    presence_tracker = providers.Resource(
        running_presence_tracker,
        presence_store,
        presence,
        settings.provided.presence_heartbeat,
        metrics,
    )
    media_store = providers.Singleton(media_store, settings)
    uploads = providers.Singleton(_uploads, media_records, media_store, redis, settings)
    media_access = providers.Singleton(MediaAccess, media_records, media_store)
    gochat_dialect = providers.Singleton(GochatDialect)
    dashboard = providers.Singleton(_dashboard, hub, metrics, redis, recent, pg_pool, settings)
    dashboard_assets = providers.Singleton(load_assets)
