"""User search in PostgreSQL: the matches of a query in four tiers, each one indexed query.

A user is in exactly one tier, the first that holds:
    0 EXACT             username equals q
    1 USERNAME_PREFIX   username starts with q
    2 DISPLAY_PREFIX    display name starts with q
    3 SUBSTRING         username or display name contains q (q with three letters or digits
                        in a row only: trigram indexes cannot narrow anything shorter)
all case-insensitive. Within a tier the order is its sort key, then id: the case-folded
username in tiers 0 and 1 (unique), the case-folded display name in tier 2, and in tier 3
the id alone (key ""). (tier, key, id) is a total order, so a page resumes after its last
row with nothing skipped or repeated.

A tier is a keyset page over its own index: the prefix tiers walk a btree range in "C"
order (bytewise, so that a prefix is one contiguous range whatever the database's collation),
the substring tier walks the primary key or asks the trigram indexes for candidates.
Every condition is written with the query as a parameter and no LIKE prefix the planner
must see as a constant: asyncpg's prepared statements get generic plans after five runs,
and a generic plan can use an index only for conditions it can evaluate at run time.
"""

from __future__ import annotations

import enum
import re
import uuid
from typing import Annotated

import asyncpg
import msgspec

from gochat_py.ids import UserId
from gochat_py.postgres.profiles import PUBLIC_COLUMNS, PublicProfile, public_profile

USERNAME_KEY = 'lower(u.username) COLLATE "C"'
DISPLAY_KEY = 'lower(u.display_name) COLLATE "C"'
# The largest code point: every string that starts with a prefix p lies in [p, p || U+10FFFF),
# except one that has U+10FFFF itself right after p (a noncharacter, never in real names;
# such a display name falls to the substring tier).
BELOW_PREFIX_END = "lower($2) || chr(1114111)"
USERNAME_HAS_PREFIX = "starts_with(lower(u.username), lower($2))"
DISPLAY_HAS_PREFIX = f"({DISPLAY_KEY} >= lower($2) AND {DISPLAY_KEY} < {BELOW_PREFIX_END})"
# Substring matching needs a run of three ASCII letters or digits: that run is a trigram
# every candidate must hold, in any locale. Anything less selective would make the trigram
# index return most of the table.
SUBSTRING_NEEDS = re.compile(r"[A-Za-z0-9]{3}")
# Nothing sorts before it: a tier read from its start.
FIRST_KEY = ""
FIRST_ID = uuid.UUID(int=0)

_VISIBLE = (
    "u.id <> $1"
    " AND NOT EXISTS (SELECT 1 FROM blocks b WHERE b.blocker_id = u.id AND b.blocked_id = $1)"
)


class Tier(enum.IntEnum):
    EXACT = 0
    USERNAME_PREFIX = 1
    DISPLAY_PREFIX = 2
    SUBSTRING = 3


def _select(key: str, where: str, order: str, limit_param: str) -> str:
    return (
        f"SELECT {PUBLIC_COLUMNS}, {key} AS key FROM users u"
        f" WHERE {where} AND {_VISIBLE} ORDER BY {order} LIMIT {limit_param}"
    )


# Parameters: $1 the caller, $2 q, then the tier's own (see tier_query).
_SQL = {
    Tier.EXACT: _select(
        USERNAME_KEY,
        f"lower(u.username) = lower($2) AND {USERNAME_KEY} > $3",
        USERNAME_KEY,
        "$4",
    ),
    Tier.USERNAME_PREFIX: _select(
        USERNAME_KEY,
        f"{USERNAME_KEY} >= lower($2) AND {USERNAME_KEY} < {BELOW_PREFIX_END}"
        f" AND lower(u.username) <> lower($2) AND {USERNAME_KEY} > $3",
        USERNAME_KEY,
        "$4",
    ),
    # The row comparison alone bounds the range from below (a scalar bound beside it would
    # leave the btree positioning on the weaker of the two): the tier starts at q itself.
    Tier.DISPLAY_PREFIX: _select(
        DISPLAY_KEY,
        f'({DISPLAY_KEY}, u.id) > (greatest($3 COLLATE "C", lower($2)), $4)'
        f" AND {DISPLAY_KEY} < {BELOW_PREFIX_END} AND NOT {USERNAME_HAS_PREFIX}",
        f"{DISPLAY_KEY}, u.id",
        "$5",
    ),
}
_SUBSTRING_MATCH = (
    "(lower(u.username) LIKE lower($3) OR lower(u.display_name) LIKE lower($3))"
    f" AND NOT {USERNAME_HAS_PREFIX} AND NOT coalesce({DISPLAY_HAS_PREFIX}, false)"
)
# The substring tier is in id order: ids are random (uuid4), so any run of users in id
# order is a fair sample of all of them. The tier has two ways, and the planner cannot tell
# which one is cheap (it does not know how many candidates the prefix tiers took). First the
# next SUBSTRING_WINDOW users by id are read and filtered: when matches are common (more than
# one user in SUBSTRING_WINDOW / limit) that fills the page for a bounded cost. Only when it
# does not are the candidates taken from the trigram indexes: a bitmap scan (ordered index
# scans switched off, since an ordered scan filtered for rare matches reads the whole
# table), sorted. Its cost grows with the candidates, which are few when matches are rare.
SUBSTRING_WINDOW = 1000
_SUBSTRING_WINDOW_SQL = (
    f"SELECT * FROM (SELECT {PUBLIC_COLUMNS}, '' AS key FROM users u"
    f" WHERE u.id > $4 ORDER BY u.id LIMIT {SUBSTRING_WINDOW}) u"
    f" WHERE {_SUBSTRING_MATCH} AND {_VISIBLE} ORDER BY u.id LIMIT $5"
)
_SUBSTRING_CANDIDATES_SQL = _select("''", f"{_SUBSTRING_MATCH} AND u.id > $4", "u.id", "$5")
BITMAP_ONLY = "SET LOCAL enable_indexscan = off; SET LOCAL enable_seqscan = off"


class Position(msgspec.Struct, frozen=True, array_like=True, forbid_unknown_fields=True):
    """Where a page ended: its last row's tier, sort key and id. The cursor's content."""

    tier: Annotated[int, msgspec.Meta(ge=int(Tier.EXACT), le=int(Tier.SUBSTRING))]
    key: Annotated[str, msgspec.Meta(max_length=512)]
    id: uuid.UUID


class Found(msgspec.Struct, frozen=True):
    profile: PublicProfile
    position: Position


def like_pattern(q: str) -> str:
    """`%q%` with q's own `%`, `_` and `\\` matching only themselves."""
    escaped = q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def tiers_for(q: str) -> list[Tier]:
    """The tiers q can be searched in: the substring tier only with a trigram to narrow it."""
    tiers = [Tier.EXACT, Tier.USERNAME_PREFIX, Tier.DISPLAY_PREFIX]
    if SUBSTRING_NEEDS.search(q):
        tiers.append(Tier.SUBSTRING)
    return tiers


def tier_query(
    tier: Tier, caller: UserId, q: str, after: Position | None, limit: int
) -> tuple[str, list[object]]:
    """The SQL and arguments of one prefix tier's page, after `after` when it is in this tier;
    for the substring tier, its window's."""
    key, after_id = (after.key, after.id) if after and after.tier == tier else (FIRST_KEY, FIRST_ID)
    match tier:
        case Tier.EXACT | Tier.USERNAME_PREFIX:
            return _SQL[tier], [caller, q, key, limit]
        case Tier.DISPLAY_PREFIX:
            return _SQL[tier], [caller, q, key, after_id, limit]
        case Tier.SUBSTRING:
            return _SUBSTRING_WINDOW_SQL, [caller, q, like_pattern(q), after_id, limit]


def substring_candidates_query(
    caller: UserId, q: str, after: Position | None, limit: int
) -> tuple[str, list[object]]:
    """The substring tier's second way: its SQL (to run after BITMAP_ONLY) and arguments."""
    after_id = after.id if after and after.tier == Tier.SUBSTRING else FIRST_ID
    return _SUBSTRING_CANDIDATES_SQL, [caller, q, like_pattern(q), after_id, limit]


class UserSearch:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def page(self, caller: UserId, q: str, after: Position | None, limit: int) -> list[Found]:
        """Up to `limit` matches after `after`, best first: tier by tier until it is full."""
        found: list[Found] = []
        tiers = [t for t in tiers_for(q) if after is None or t >= after.tier]
        async with self._pool.acquire() as conn:
            for tier in tiers:
                wanted = limit - len(found)
                sql, args = tier_query(tier, caller, q, after, wanted)
                rows = await conn.fetch(sql, *args)
                if tier is Tier.SUBSTRING and len(rows) < wanted:
                    rows = await _substring_candidates(conn, caller, q, after, wanted)
                found += [
                    Found(public_profile(row), Position(tier, row["key"], row["id"]))
                    for row in rows
                ]
                if len(found) >= limit:
                    break
        return found


async def _substring_candidates(
    conn: asyncpg.Connection, caller: UserId, q: str, after: Position | None, limit: int
) -> list[asyncpg.Record]:
    sql, args = substring_candidates_query(caller, q, after, limit)
    async with conn.transaction(readonly=True):
        await conn.execute(BITMAP_ONLY)
        rows: list[asyncpg.Record] = await conn.fetch(sql, *args)
    return rows
