"""Conversations and their members in PostgreSQL: create, list, details, read marks."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

import asyncpg
import msgspec

from gochat_py import media, times
from gochat_py.broadcasts import SkipReason
from gochat_py.direct_policy import CONTACTS_ONLY, Blocked, PairStanding, Roster, refusal, refuse
from gochat_py.errors import ValidationFailed
from gochat_py.ids import ConversationId, UserId, uuid7
from gochat_py.media import MediaInfo
from gochat_py.messages import MemberRole, Message, Quote, SystemEvent
from gochat_py.postgres.groups import require_role
from gochat_py.postgres.users import ACTIVE, Email

# The default of GROUP_MAX_MEMBERS. Past ENVELOPE_NAMED_MAX members a frame no longer names
# its recipients (envelope.py), so a message costs the same in a group of any size; what
# grows is a membership change's reload of the roster, one query on the next send.
MAX_GROUP_MEMBERS = 10_000
UNKNOWN_SHOWN = 10  # unknown ids an error names; the rest are counted
# No U+0000: PostgreSQL's text cannot hold it.
GroupName = Annotated[str, msgspec.Meta(min_length=1, max_length=100, pattern=r"^[^\x00]*$")]
MAX_DESCRIPTION_CHARS = 500  # a paragraph about the group; the column's CHECK says the same
Description = Annotated[str, msgspec.Meta(max_length=MAX_DESCRIPTION_CHARS, pattern=r"^[^\x00]*$")]


class CreateConversation(msgspec.Struct, frozen=True):
    """`{participant_id}` or `{participant_email}` for a direct conversation; `{name}` with
    `participant_ids`, `participant_emails` or both (their union) for a group."""

    participant_id: uuid.UUID | None = None
    participant_email: Email | None = None
    name: GroupName | None = None
    participant_ids: list[uuid.UUID] | None = None
    participant_emails: list[Email] | None = None


class Participant(msgspec.Struct, frozen=True):
    """A member as the other members see them: no email."""

    id: uuid.UUID
    username: str
    role: MemberRole
    joined_at: int  # unix milliseconds
    is_active: bool
    created_at: int  # the account's, unix milliseconds
    avatar_url: str | None = None  # their picture's URL: anyone may read it


class Conversation(msgspec.Struct, frozen=True):
    id: uuid.UUID
    type: Literal["direct", "group"]
    name: str | None
    description: str | None  # a group's, set by its owner or an admin; null: none
    avatar_url: str | None  # a group's picture, set by its owner or an admin
    created_by: uuid.UUID
    created_at: int
    updated_at: int  # gochat's name for the last activity: equal to last_activity_at
    last_seq: int
    last_activity_at: int


class ConversationView(msgspec.Struct, frozen=True):
    """One conversation as a member sees it, in gochat's shape: the conversation itself
    beside its participants, last message and the member's unread count."""

    conversation: Conversation
    participants: list[Participant]
    last_message: Message | None
    unread_count: int


class ConversationRow(msgspec.Struct, frozen=True):
    """What PostgreSQL knows of one conversation, as one member sees it."""

    id: uuid.UUID
    kind: Literal["direct", "group"]
    name: str | None
    description: str | None
    avatar_media_id: uuid.UUID | None
    created_by: uuid.UUID
    created_at: datetime
    last_seq: int
    last_activity_at: datetime
    last_read_seq: int
    last_message: Message | None
    unread_count: int


_MESSAGE_COLUMNS = (
    "id",
    "conversation_id",
    "sender_id",
    "content",
    "type",
    "sent_at",
    "client_msg_id",
    "seq",
    "edited_at",
    "deleted_at",
    "system",
    "reply_to",
    "mentions",
    "media",
)


def message_columns(table: str, users: str, prefix: str = "") -> str:
    """The select-list message_from_row reads: `table` a messages alias, `users` the
    sender's users alias."""
    columns = [f"{table}.{name} AS {prefix}{name}" for name in _MESSAGE_COLUMNS]
    return ", ".join([*columns, f"{users}.username AS {prefix}sender_username"])


def message_from_row(row: asyncpg.Record, prefix: str = "") -> Message:
    edited_at, system, reply_to, media = (
        row[f"{prefix}edited_at"],
        row[f"{prefix}system"],
        row[f"{prefix}reply_to"],
        row[f"{prefix}media"],
    )
    return Message(
        id=row[f"{prefix}id"],
        conversation_id=row[f"{prefix}conversation_id"],
        sender_id=row[f"{prefix}sender_id"],
        sender_username=row[f"{prefix}sender_username"],
        content=row[f"{prefix}content"],
        type=row[f"{prefix}type"],
        sent_at=times.unix_ms(row[f"{prefix}sent_at"]),
        client_msg_id=row[f"{prefix}client_msg_id"],
        system=None if system is None else _system_decoder.decode(system),
        reply_to=None if reply_to is None else _quote_decoder.decode(reply_to),
        mentions=row[f"{prefix}mentions"],
        edited_at=None if edited_at is None else times.unix_ms(edited_at),
        deleted=row[f"{prefix}deleted_at"] is not None,
        media=None if media is None else _media_decoder.decode(media),
        seq=row[f"{prefix}seq"],
    )


# asyncpg hands jsonb over as its text.
_system_decoder = msgspec.json.Decoder(SystemEvent)
_quote_decoder = msgspec.json.Decoder(Quote)
_media_decoder = msgspec.json.Decoder(MediaInfo)


def _standing_columns(low: str, high: str) -> str:
    """Select-list columns `blocked` and `contacts` for the pair `low`, `high` (SQL
    expressions): what direct_policy.py decides by, beside the pair's dm_policy."""
    return (
        f"EXISTS (SELECT 1 FROM blocks b WHERE (b.blocker_id = {low} AND b.blocked_id = {high})"
        f" OR (b.blocker_id = {high} AND b.blocked_id = {low})) AS blocked,"
        f" EXISTS (SELECT 1 FROM contacts k WHERE k.user_id = {low} AND k.contact_id = {high})"
        " AS contacts"
    )


# One query per cache miss: the members and the permission together (a group's pair
# columns are NULL, so its probes find nothing at once).
_ROSTER = f"""
SELECT m.conversation_id, m.user_id, u.dm_policy, c.kind,
       {_standing_columns("c.direct_user_low", "c.direct_user_high")}
FROM conversation_members m
JOIN conversations c ON c.id = m.conversation_id
JOIN users u ON u.id = m.user_id
"""

# Unread counts stop at this: a badge says "999+", and counting further costs a longer scan.
UNREAD_CAP = 1000

_LIST = f"""
SELECT c.id, c.kind, c.name, c.description, c.avatar_media_id, c.created_by, c.created_at,
       c.last_seq, c.last_activity_at, m.last_read_seq,
       {message_columns("lm", "lu", "lm_")},
       (SELECT count(*) FROM (
            SELECT 1 FROM messages u
            WHERE u.conversation_id = c.id AND u.seq > m.last_read_seq AND u.sender_id <> $1
              AND u.type <> 'system'
            LIMIT {UNREAD_CAP}) AS capped) AS unread_count
FROM conversation_members m
JOIN conversations c ON c.id = m.conversation_id
LEFT JOIN LATERAL (
    SELECT * FROM messages x WHERE x.conversation_id = c.id ORDER BY x.seq DESC LIMIT 1
) lm ON true
LEFT JOIN users lu ON lu.id = lm.sender_id
WHERE m.user_id = $1
"""


def _conversation_row(row: asyncpg.Record) -> ConversationRow:
    return ConversationRow(
        id=row["id"],
        kind=row["kind"],
        name=row["name"],
        description=row["description"],
        avatar_media_id=row["avatar_media_id"],
        created_by=row["created_by"],
        created_at=row["created_at"],
        last_seq=row["last_seq"],
        last_activity_at=row["last_activity_at"],
        last_read_seq=row["last_read_seq"],
        last_message=message_from_row(row, "lm_") if row["lm_id"] is not None else None,
        unread_count=row["unread_count"],
    )


# Each of the users $2 that exists, with what decides whether $1 may write to them and
# their direct conversation with $1, if any.
_OPENINGS = f"""
SELECT u.id AS user_id, u.dm_policy, d.id AS conversation_id,
       {_standing_columns("least($1::uuid, u.id)", "greatest($1::uuid, u.id)")}
FROM users u
LEFT JOIN conversations d ON d.kind = 'direct'
    AND d.direct_user_low = least($1::uuid, u.id) AND d.direct_user_high = greatest($1::uuid, u.id)
WHERE u.id = ANY($2::uuid[]) AND u.id <> $1
"""


class DirectOpening(msgspec.Struct, frozen=True):
    """The direct conversation of a sender with `recipient`, or why the sender may not write
    to them (`refused`: `self`, `unknown_user`, or direct_policy.py's `blocked`,
    `not_a_contact`)."""

    recipient: UserId
    conversation_id: ConversationId | None = None
    created: bool = False  # by this call: its members must be announced
    refused: SkipReason | None = None


async def _create_directs(
    conn: asyncpg.Connection, sender: UserId, others: list[UserId]
) -> dict[UserId, ConversationId]:
    """The sender's direct conversation with each of `others` that this call creates: one
    statement per table. A pair's conversation created meanwhile by another call is left
    out (ON CONFLICT DO NOTHING)."""
    if not others:
        return {}
    rows = await conn.fetch(
        "INSERT INTO conversations (id, kind, created_by, direct_user_low, direct_user_high)"
        " SELECT t.id, 'direct', $1, least($1::uuid, t.other), greatest($1::uuid, t.other)"
        " FROM unnest($2::uuid[], $3::uuid[]) AS t(id, other)"
        " ON CONFLICT (direct_user_low, direct_user_high) WHERE kind = 'direct' DO NOTHING"
        " RETURNING id, direct_user_low, direct_user_high",
        sender, [uuid7() for _ in others], others,
    )  # fmt: skip
    created = {_other_of(row, sender): ConversationId(row["id"]) for row in rows}
    await conn.execute(
        "INSERT INTO conversation_members (conversation_id, user_id, role)"
        " SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[])",
        [c for c in created.values() for _ in range(2)],
        [u for other in created for u in (sender, other)],
        ["owner", "member"] * len(created),
    )
    return created


async def _directs_with(
    conn: asyncpg.Connection, sender: UserId, others: list[UserId]
) -> dict[UserId, ConversationId]:
    """The sender's existing direct conversations with `others`."""
    if not others:
        return {}
    rows = await conn.fetch(
        "SELECT id, direct_user_low, direct_user_high FROM conversations"
        " WHERE kind = 'direct' AND (direct_user_low, direct_user_high) IN"
        " (SELECT least($1::uuid, o), greatest($1::uuid, o) FROM unnest($2::uuid[]) AS o)",
        sender,
        others,
    )
    return {_other_of(row, sender): ConversationId(row["id"]) for row in rows}


def _other_of(row: asyncpg.Record, user: UserId) -> UserId:
    """The user of a direct conversation's pair who is not `user`."""
    low, high = row["direct_user_low"], row["direct_user_high"]
    return UserId(high if low == user else low)


def _roster(rows: list[asyncpg.Record]) -> Roster:
    """A conversation's roster from its _ROSTER rows."""
    members = frozenset(UserId(row["user_id"]) for row in rows)
    if len(rows) != 2 or rows[0]["kind"] != "direct":
        return Roster(members)
    standing = _standing(rows[0], rows)
    first, second = (UserId(row["user_id"]) for row in rows)
    refused = {
        sender: reason
        for sender, recipient in ((first, second), (second, first))
        if (reason := refusal(standing, sender, recipient)) is not None
    }
    return Roster(members, refused)


def _standing(pair: asyncpg.Record, users: list[asyncpg.Record]) -> PairStanding:
    """The standing from a row carrying `blocked` and `contacts`, and the users' rows, each
    with its `user_id` and `dm_policy`."""
    return PairStanding(
        blocked=pair["blocked"],
        contacts=pair["contacts"],
        contacts_only=frozenset(
            UserId(row["user_id"]) for row in users if row["dm_policy"] == CONTACTS_ONLY
        ),
    )


class Conversations:
    def __init__(self, pool: asyncpg.Pool, group_max_members: int = MAX_GROUP_MEMBERS) -> None:
        self._pool = pool
        self.group_max_members = group_max_members

    async def create_direct(
        self, creator: UserId, other: UserId, field: str = "participant_id"
    ) -> tuple[ConversationId, bool]:
        """The pair's conversation and whether this call created it (either user may ask);
        `field` names where the request gave `other`, for the errors."""
        if creator == other:
            raise ValidationFailed(
                "a direct conversation needs another user", code="cannot_message_self",
                field=field,
            )  # fmt: skip
        low, high = sorted((creator, other))
        async with self._pool.acquire() as conn, conn.transaction():
            await self._require_users(conn, [other], field)
            # Asked whether the conversation exists or not: opening it is writing to them.
            await self._require_writable(conn, creator, other)
            conversation_id = await conn.fetchval(
                "INSERT INTO conversations"
                " (id, kind, created_by, direct_user_low, direct_user_high)"
                " VALUES ($1, 'direct', $2, $3, $4)"
                " ON CONFLICT (direct_user_low, direct_user_high) WHERE kind = 'direct'"
                " DO NOTHING RETURNING id",
                uuid7(), creator, low, high,
            )  # fmt: skip
            if conversation_id is None:
                existing = await conn.fetchval(
                    "SELECT id FROM conversations WHERE kind = 'direct'"
                    " AND direct_user_low = $1 AND direct_user_high = $2",
                    low,
                    high,
                )
                return ConversationId(existing), False
            await conn.executemany(
                "INSERT INTO conversation_members (conversation_id, user_id, role)"
                " VALUES ($1, $2, $3)",
                [(conversation_id, creator, "owner"), (conversation_id, other, "member")],
            )
        return ConversationId(conversation_id), True

    async def create_group(
        self,
        creator: UserId,
        name: str,
        participant_ids: list[uuid.UUID],
        field: str = "participant_ids",
    ) -> ConversationId:
        """A group of the creator (its owner) and the participants; `field` names where the
        request gave them, for the errors."""
        if not name.strip():
            raise ValidationFailed("name must not be blank", code="invalid_name", field="name")
        others = [p for p in participant_ids if p != creator]
        if len(set(others)) != len(others):
            raise ValidationFailed(
                f"{field} lists a user twice", code="duplicate_participants",
                field=field,
            )  # fmt: skip
        if not others:
            raise ValidationFailed(
                "a group needs at least one other participant", code="no_participants",
                field=field,
            )  # fmt: skip
        self._require_room(len(others) + 1, field)
        async with self._pool.acquire() as conn, conn.transaction():
            await self._require_users(conn, others, field)
            conversation_id = uuid7()
            await conn.execute(
                "INSERT INTO conversations (id, kind, name, created_by)"
                " VALUES ($1, 'group', $2, $3)",
                conversation_id,
                name.strip(),
                creator,
            )
            # One statement however many: thousands of members are one round trip.
            await conn.execute(
                "INSERT INTO conversation_members (conversation_id, user_id, role)"
                " SELECT $1, u, CASE WHEN u = $2 THEN 'owner' ELSE 'member' END"
                " FROM unnest($3::uuid[]) AS u",
                conversation_id,
                creator,
                [creator, *others],
            )
        return ConversationId(conversation_id)

    def _require_room(self, members: int, field: str) -> None:
        if members > self.group_max_members:
            raise ValidationFailed(
                f"a group has at most {self.group_max_members} members",
                code="too_many_participants",
                field=field,
            )

    async def add_members(
        self, actor: UserId, conversation_id: ConversationId, user_ids: list[uuid.UUID]
    ) -> list[UserId]:
        """Add users to a group (owner or admin only); returns those newly added."""
        async with self._pool.acquire() as conn, conn.transaction():
            # Under the group's lock: a demotion or a deletion committed meanwhile is seen,
            # and two adds at once cannot both pass the limit.
            await require_role(conn, actor, conversation_id, "manager")
            await self._require_users(conn, user_ids, "user_ids")
            count = await conn.fetchval(
                "SELECT count(*) FROM conversation_members WHERE conversation_id = $1",
                conversation_id,
            )
            added = await conn.fetch(
                "INSERT INTO conversation_members (conversation_id, user_id)"
                " SELECT $1, u FROM unnest($2::uuid[]) AS u"
                " ON CONFLICT DO NOTHING RETURNING user_id",
                conversation_id,
                user_ids,
            )
            self._require_room(count + len(added), "user_ids")
        return [UserId(row["user_id"]) for row in added]

    async def manages(self, conversation_id: ConversationId, user: UserId) -> bool:
        """Whether `user` is an owner or admin of the group (never so in a direct one)."""
        role = await self._pool.fetchval(
            "SELECT m.role FROM conversation_members m"
            " JOIN conversations c ON c.id = m.conversation_id"
            " WHERE m.conversation_id = $1 AND m.user_id = $2 AND c.kind = 'group'",
            conversation_id,
            user,
        )
        return role in ("owner", "admin")

    async def roster(self, conversation_id: ConversationId) -> Roster:
        """The members, and in a direct conversation who of the two may not send now."""
        return _roster(
            await self._pool.fetch(_ROSTER + " WHERE m.conversation_id = $1", conversation_id)
        )

    async def rosters(self, conversation_ids: list[ConversationId]) -> dict[ConversationId, Roster]:
        """`roster` of each conversation, in one query (an unknown id: absent)."""
        rows = await self._pool.fetch(
            _ROSTER + " WHERE m.conversation_id = ANY($1::uuid[])", conversation_ids
        )
        by_conversation: dict[ConversationId, list[asyncpg.Record]] = {}
        for row in rows:
            by_conversation.setdefault(ConversationId(row["conversation_id"]), []).append(row)
        return {c: _roster(found) for c, found in by_conversation.items()}

    async def open_directs(self, sender: UserId, others: list[UserId]) -> list[DirectOpening]:
        """For each of `others`, in order: the sender's direct conversation with them,
        created where missing, or why the sender may not write to them (the same rule as
        create_direct, asked in the same transaction as the creation). Creating any number
        of them is one INSERT per table."""
        async with self._pool.acquire() as conn, conn.transaction():
            found = {
                UserId(row["user_id"]): row for row in await conn.fetch(_OPENINGS, sender, others)
            }
            refused: dict[UserId, SkipReason] = {}
            existing: dict[UserId, ConversationId] = {}
            for other in others:
                row = found.get(other)
                if other == sender:
                    refused[other] = "self"
                elif row is None:
                    refused[other] = "unknown_user"
                elif (reason := refusal(_standing(row, [row]), sender, other)) is not None:
                    refused[other] = "blocked" if reason is Blocked else "not_a_contact"
                elif row["conversation_id"] is not None:
                    existing[other] = ConversationId(row["conversation_id"])
            missing = [o for o in others if o not in refused and o not in existing]
            created = await _create_directs(conn, sender, missing)
            # A pair whose conversation another call created since the first query.
            existing |= await _directs_with(conn, sender, [o for o in missing if o not in created])
        return [
            DirectOpening(o, refused=refused[o])
            if o in refused
            else DirectOpening(o, created.get(o) or existing[o], created=o in created)
            for o in others
        ]

    async def direct_ids(self, user: UserId, other: UserId | None) -> list[ConversationId]:
        """The direct conversations of `user` (with `other` only, when given)."""
        if other is not None:
            low, high = sorted((user, other))
            found = await self._pool.fetchval(
                "SELECT id FROM conversations WHERE kind = 'direct'"
                " AND direct_user_low = $1 AND direct_user_high = $2",
                low,
                high,
            )
            return [] if found is None else [ConversationId(found)]
        rows = await self._pool.fetch(
            "SELECT c.id FROM conversation_members m JOIN conversations c"
            " ON c.id = m.conversation_id WHERE m.user_id = $1 AND c.kind = 'direct'",
            user,
        )
        return [ConversationId(row["id"]) for row in rows]

    async def ids_of_members(self, users: list[UserId]) -> dict[UserId, list[ConversationId]]:
        """The conversations each of `users` belongs to (none: absent)."""
        rows = await self._pool.fetch(
            "SELECT user_id, conversation_id FROM conversation_members"
            " WHERE user_id = ANY($1::uuid[])",
            users,
        )
        listing: dict[UserId, list[ConversationId]] = {}
        for row in rows:
            listing.setdefault(UserId(row["user_id"]), []).append(
                ConversationId(row["conversation_id"])
            )
        return listing

    async def stored_seqs(
        self, user: UserId, conversation_ids: list[ConversationId]
    ) -> dict[ConversationId, int]:
        """Of `conversation_ids`, those `user` is a member of, each with the highest seq
        PostgreSQL holds: a resume's members-only check and its floor when Redis knows
        nothing of a conversation, in one query."""
        rows = await self._pool.fetch(
            "SELECT c.id, c.last_seq FROM conversation_members m"
            " JOIN conversations c ON c.id = m.conversation_id"
            " WHERE m.user_id = $1 AND m.conversation_id = ANY($2::uuid[])",
            user,
            conversation_ids,
        )
        return {ConversationId(row["id"]): int(row["last_seq"]) for row in rows}

    async def participants(
        self, conversation_ids: list[ConversationId]
    ) -> dict[ConversationId, list[Participant]]:
        rows = await self._pool.fetch(
            "SELECT m.conversation_id, u.id, u.username, m.role, m.joined_at, u.created_at,"
            " u.avatar_media_id"
            " FROM conversation_members m JOIN users u ON u.id = m.user_id"
            " WHERE m.conversation_id = ANY($1::uuid[]) ORDER BY m.joined_at, u.username",
            conversation_ids,
        )
        found: dict[ConversationId, list[Participant]] = {c: [] for c in conversation_ids}
        for row in rows:
            found[ConversationId(row["conversation_id"])].append(
                Participant(
                    id=row["id"],
                    username=row["username"],
                    role=row["role"],
                    joined_at=times.unix_ms(row["joined_at"]),
                    is_active=ACTIVE,
                    created_at=times.unix_ms(row["created_at"]),
                    avatar_url=media.avatar_url(row["avatar_media_id"]),
                )
            )
        return found

    async def one(self, user: UserId, conversation_id: ConversationId) -> ConversationRow | None:
        row = await self._pool.fetchrow(_LIST + " AND c.id = $2", user, conversation_id)
        return _conversation_row(row) if row else None

    async def page(
        self, user: UserId, limit: int, before: tuple[datetime, uuid.UUID] | None
    ) -> list[ConversationRow]:
        """The user's conversations, most recently active first, after a keyset cursor."""
        if before is None:
            rows = await self._pool.fetch(
                _LIST + " ORDER BY c.last_activity_at DESC, c.id DESC LIMIT $2", user, limit
            )
        else:
            rows = await self._pool.fetch(
                _LIST + " AND (c.last_activity_at, c.id) < ($3, $4)"
                " ORDER BY c.last_activity_at DESC, c.id DESC LIMIT $2",
                user, limit, before[0], before[1],
            )  # fmt: skip
        return [_conversation_row(row) for row in rows]

    async def mark_read(self, user: UserId, conversation_id: ConversationId, seq: int) -> int:
        """Move the user's read mark forward (never back); returns the mark now stored."""
        mark = await self._pool.fetchval(
            "UPDATE conversation_members SET last_read_seq = GREATEST(last_read_seq, $3)"
            " WHERE conversation_id = $1 AND user_id = $2 RETURNING last_read_seq",
            conversation_id,
            user,
            seq,
        )
        return int(mark or 0)

    async def name(self, conversation_id: ConversationId) -> str | None:
        """A group's name as it is now; None for a direct conversation."""
        name: str | None = await self._pool.fetchval(
            "SELECT name FROM conversations WHERE id = $1", conversation_id
        )
        return name

    async def highest_seq(self, conversation_id: ConversationId) -> int:
        """The highest seq PostgreSQL holds: the floor when Redis lost the counter."""
        value = await self._pool.fetchval(
            "SELECT GREATEST((SELECT last_seq FROM conversations WHERE id = $1),"
            " (SELECT max(seq) FROM messages WHERE conversation_id = $1))",
            conversation_id,
        )
        return int(value or 0)

    @staticmethod
    async def _require_writable(conn: asyncpg.Connection, sender: UserId, other: UserId) -> None:
        """Blocked or NotAContact when `sender` may not write to `other` (direct_policy.py)."""
        rows = await conn.fetch(
            f"SELECT u.id AS user_id, u.dm_policy, {_standing_columns('$1::uuid', '$2::uuid')}"
            " FROM users u WHERE u.id = ANY(ARRAY[$1::uuid, $2::uuid])",
            *sorted((sender, other)),
        )
        reason = refusal(_standing(rows[0], rows), sender, other)
        if reason is not None:
            raise refuse(reason)

    @staticmethod
    async def _require_users(
        conn: asyncpg.Connection, user_ids: list[uuid.UUID], field: str
    ) -> None:
        rows = await conn.fetch("SELECT id FROM users WHERE id = ANY($1::uuid[])", user_ids)
        missing = sorted(str(u) for u in set(user_ids) - {row["id"] for row in rows})
        if missing:
            # A list of thousands is cut: the message stays readable, the first few say which.
            shown = ", ".join(missing[:UNKNOWN_SHOWN])
            more = (
                f" and {len(missing) - UNKNOWN_SHOWN} more" if len(missing) > UNKNOWN_SHOWN else ""
            )
            raise ValidationFailed(
                f"unknown user id(s): {shown}{more}", code="unknown_users", field=field
            )
