"""Redis key and channel names: the one contract the server and the worker share.

Every key that one script touches carries the same hash tag (`{p<partition>}`), so a
Redis Cluster places them in one slot. A conversation always maps to the same stream
partition, which keeps its messages in order while workers scale out across partitions.
"""

from __future__ import annotations

import uuid
import zlib

PREFIX = "gochat"
CONSUMER_GROUP = "persist"  # the worker's consumer group on every message stream
MEMBERSHIP_CHANNEL = f"{PREFIX}:membership"  # payload: a MembershipChange (membership.py)
# Payload: the id of a login session that was just revoked. Process-wide like the membership
# channel and published from the session scripts with plain PUBLISH, which a cluster
# broadcasts to every node whatever slot the script ran in: it stays out of sharded pub/sub.
REVOCATION_CHANNEL = f"{PREFIX}:revocation"
# Every user with a presence entry, scored by the latest deadline any socket of theirs was
# given (unix ms): the sweepers' index of who may have expired sockets. One key, one slot;
# the scripts on a user's own keys never touch it.
PRESENCE_DEADLINES = f"{PREFIX}:presence-deadlines"

# The webhook for offline users: events waiting to be POSTed, and those given up on. One
# hash tag for both: a give-up moves an event from one to the other in one MULTI.
WEBHOOK_STREAM = f"{PREFIX}:{{webhook}}"
WEBHOOK_DEAD = f"{PREFIX}:{{webhook}}:dead"
WEBHOOK_GROUP = "deliver"  # the webhook deliverers' consumer group on WEBHOOK_STREAM


def partition_of(conversation_id: uuid.UUID, partitions: int) -> int:
    # crc32, not hash(): stable across processes and Python versions.
    return zlib.crc32(conversation_id.bytes) % partitions


def _tag(conversation_id: uuid.UUID, partitions: int) -> str:
    return f"{{p{partition_of(conversation_id, partitions)}}}"


def stream(partition: int) -> str:
    """The write-behind log of one partition: entries `{"m": <message JSON>}`."""
    return f"{PREFIX}:{{p{partition}}}:messages"


def dead_letters(partition: int) -> str:
    """Entries the worker could not persist, with the reason."""
    return f"{PREFIX}:{{p{partition}}}:dead"


def conversation_stream(conversation_id: uuid.UUID, partitions: int) -> str:
    return stream(partition_of(conversation_id, partitions))


def sequence(conversation_id: uuid.UUID, partitions: int) -> str:
    """The last `seq` handed out in a conversation (INCR)."""
    return f"{PREFIX}:{_tag(conversation_id, partitions)}:seq:{conversation_id}"


def recent(conversation_id: uuid.UUID, partitions: int) -> str:
    """Sorted set of the conversation's messages not yet persisted, and the newest persisted
    ones, scored by seq (read-your-writes; the worker trims what PostgreSQL holds)."""
    return f"{PREFIX}:{_tag(conversation_id, partitions)}:recent:{conversation_id}"


def recent_changes(conversation_id: uuid.UUID, partitions: int) -> str:
    """Sorted set of the conversation's edits and deletes not yet persisted, and the newest
    persisted ones, scored by their own seq; apart from `recent`, so a history page reads
    the changes to its messages without walking the messages above them."""
    return f"{PREFIX}:{_tag(conversation_id, partitions)}:changes:{conversation_id}"


def recent_held(partition: int) -> str:
    """How many messages the recent caches of one partition's conversations hold (a gauge
    kept by the send script and the worker's trim, so reading it costs no SCAN)."""
    return f"{PREFIX}:{{p{partition}}}:recent-held"


def idempotency(
    conversation_id: uuid.UUID, partitions: int, sender_id: uuid.UUID, client_msg_id: str
) -> str:
    """The message a sender's `client_msg_id` already produced in a conversation."""
    tag = _tag(conversation_id, partitions)
    return f"{PREFIX}:{tag}:sent:{conversation_id}:{sender_id}:{client_msg_id}"


def conversation_channel(conversation_id: uuid.UUID, partitions: int) -> str:
    """Pub/sub channel of one conversation: every live frame for its members (envelope.py),
    subscribed by each process that holds a socket of a member. Tagged like the send
    script's keys, so that sharded pub/sub (SPUBLISH) keeps it in their slot."""
    return f"{PREFIX}:{_tag(conversation_id, partitions)}:conversation:{conversation_id}"


def user_channel(user_id: uuid.UUID) -> str:
    """Pub/sub channel of one user: the events meant for them alone (presence, notifications,
    contacts), subscribed by each process that holds one of their sockets, for as long as it
    does. Publishing to a user with no socket costs Redis one lookup and no delivery. Tagged
    by the user, so sharded pub/sub spreads users over the slots."""
    return f"{PREFIX}:user:{{{user_id}}}:events"


def presence(user_id: uuid.UUID) -> str:
    """Sorted set of a user's open sockets (ids) on every process, each scored by the deadline
    (unix ms) its process must refresh it by: the user is online while one is in the future."""
    return f"{PREFIX}:presence:{{{user_id}}}"


def presence_seen(user_id: uuid.UUID) -> str:
    """When the user's last socket closed or expired (unix ms); same tag as their sockets."""
    return f"{PREFIX}:presence:{{{user_id}}}:seen"


def session_refresh(session_id: str) -> str:
    """The id (jti) of the one refresh token of a login session that may still be used."""
    return f"{PREFIX}:session:{{{session_id}}}:refresh"


def session_revoked(session_id: str) -> str:
    """Present while a session is revoked (logout or reuse of a spent refresh token)."""
    return f"{PREFIX}:session:{{{session_id}}}:revoked"


def rate_limit(action: str, subject: str) -> str:
    return f"{PREFIX}:ratelimit:{action}:{{{subject}}}"


def broadcast(sender_id: uuid.UUID, client_broadcast_id: str) -> str:
    """A sender's broadcast by its `client_broadcast_id`: a claim while it runs, then its
    result. One key per command, tagged by the sender like their other keys."""
    return f"{PREFIX}:broadcast:{{{sender_id}}}:{client_broadcast_id}"
