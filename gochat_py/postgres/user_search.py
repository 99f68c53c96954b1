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
No tier reads more than a window of index entries for one request: a page may stop short
(even empty) where a window ran out, and the next one resumes after the last row read,
matched or not, so that paging to the end lists every match once, in order.
Every condition is written with the query as a parameter and no LIKE prefix the planner
must see as a constant: asyncpg's prepared statements get generic plans after five runs,
and a generic plan can use an index only for conditions it can evaluate at run time.
"""

from __future__ import annotations

import enum
import re
import uuid
from collections.abc import Iterable
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
# Index entries one tier reads for one request at most, matches or not. A tier whose
# entries are mostly skipped (the "Anna …" display names of users already listed by their
# usernames) would otherwise read all of them for one page; bounded, the page comes back
# short and its cursor resumes after the last entry read. A thousand random heap rows are
# about a millisecond.
WINDOW = 1000
# Trigram candidates the substring tier takes at most. More means matches inside names are
# common, or were mostly listed by the prefix tiers: then the tier walks its window of ids.
CANDIDATES_MAX = 1000


class Tier(enum.IntEnum):
    EXACT = 0
    USERNAME_PREFIX = 1
    DISPLAY_PREFIX = 2
    SUBSTRING = 3


def _window(key: str, scanned: str, order: str, hit: str, limit_param: str) -> str:
    """A tier's page read from its next WINDOW index entries (`scanned`, in `order`): the
    rows that match (`hit`), up to the limit, and the window's last row whether it matches
    or not, so that a short page knows where it stopped. Rows are read only as far as the
    page needs: row_number() streams."""
    return (
        f"SELECT * FROM (SELECT u.*, ({hit}) AS hit,"
        f" row_number() OVER (ORDER BY {order}) AS scanned"
        f" FROM (SELECT {PUBLIC_COLUMNS}, {key} AS key FROM users u WHERE {scanned}"
        f" ORDER BY {order} LIMIT {WINDOW}) u) u"
        f" WHERE hit OR scanned = {WINDOW} ORDER BY {order} LIMIT {limit_param}"
    )


# Parameters: $1 the caller, $2 q, then the tier's own (see tier_query).
_SQL = {
    Tier.EXACT: _window(
        USERNAME_KEY,
        f"{USERNAME_KEY} = lower($2) AND {USERNAME_KEY} > $3",
        "key",
        _VISIBLE,
        "$4",
    ),
    Tier.USERNAME_PREFIX: _window(
        USERNAME_KEY,
        f"{USERNAME_KEY} >= lower($2) AND {USERNAME_KEY} < {BELOW_PREFIX_END}"
        f" AND {USERNAME_KEY} > $3",
        "key",
        f"lower(u.username) <> lower($2) AND {_VISIBLE}",
        "$4",
    ),
    # The row comparison alone bounds the range from below (a scalar bound beside it would
    # leave the btree positioning on the weaker of the two): the tier starts at q itself.
    Tier.DISPLAY_PREFIX: _window(
        DISPLAY_KEY,
        f'({DISPLAY_KEY}, u.id) > (greatest($3 COLLATE "C", lower($2)), $4)'
        f" AND {DISPLAY_KEY} < {BELOW_PREFIX_END}",
        "key, id",
        f"NOT {USERNAME_HAS_PREFIX} AND {_VISIBLE}",
        "$5",
    ),
}
_INSIDE = "(lower(u.username) LIKE lower($3) OR lower(u.display_name) LIKE lower($3))"
_NOT_PREFIXED = f"NOT {USERNAME_HAS_PREFIX} AND NOT coalesce({DISPLAY_HAS_PREFIX}, false)"
# The substring tier is in id order: ids are random (uuid4), so any run of users in id
# order is a fair sample of all of them. The tier has two ways, and the planner cannot tell
# which one is cheap (it does not know how many candidates the prefix tiers took). First its
# window: the next WINDOW users by id, filtered. When matches are common (more than one user
# in WINDOW / limit) that fills the page. Only when it does not are the candidates taken from
# the trigram indexes, at most CANDIDATES_MAX + 1 of them in a bitmap scan (an ordered scan
# filtered for rare matches would read the whole table). When there are no more than
# CANDIDATES_MAX, they hold every match: sorted, those after the cursor are the page. When
# there are more, the window's page stands, short, and the next request walks on: q is then
# common inside names, or its candidates were mostly listed by the prefix tiers already.
# The cursor is part of `hit`, not of the candidates' scan: as a condition, the planner may
# prefer a bitmap of the primary key's range filtered for the match, which reads the range.
_SUBSTRING_WINDOW_SQL = _window(
    "''", "u.id > $4", "id", f"{_INSIDE} AND {_NOT_PREFIXED} AND {_VISIBLE}", "$5"
)
# Only the page's matches come back, sorted, each with the count of candidates read; when
# there are too many, any rows at all, so that the count is seen.
_SUBSTRING_CANDIDATES_SQL = (
    "SELECT * FROM (SELECT *, count(*) OVER () AS candidates FROM"
    f" (SELECT {PUBLIC_COLUMNS}, '' AS key, (u.id > $4 AND {_NOT_PREFIXED} AND {_VISIBLE}) AS hit"
    f" FROM users u WHERE {_INSIDE} LIMIT {CANDIDATES_MAX + 1}) u) u"
    f" WHERE hit OR candidates > {CANDIDATES_MAX} ORDER BY id LIMIT $5"
)
# A window is a bound only when it is read in index order: given the choice, the planner
# reads a small range whole in a bitmap scan and sorts it, and its guess of "small" may be
# stale or, for a generic plan, a default. So the search runs on connections of its own
# whose planner may not use bitmap or sequential scans (set at connect: the RESET ALL of a
# pool's release returns to them, and no request pays a round trip to set them); only the
# substring candidates switch to bitmap scans, in a transaction of their own.
PLANNER_SETTINGS = {"enable_bitmapscan": "off", "enable_seqscan": "off"}
BITMAP_ONLY = (
    "SET LOCAL enable_bitmapscan = on; SET LOCAL enable_indexscan = off;"
    " SET LOCAL enable_seqscan = off"
)


class Position(msgspec.Struct, frozen=True, array_like=True, forbid_unknown_fields=True):
    """Where a page ended: its last row's tier, sort key and id. The cursor's content."""

    tier: Annotated[int, msgspec.Meta(ge=int(Tier.EXACT), le=int(Tier.SUBSTRING))]
    key: Annotated[str, msgspec.Meta(max_length=512)]
    id: uuid.UUID


class Found(msgspec.Struct, frozen=True):
    profile: PublicProfile
    position: Position


class Searched(msgspec.Struct, frozen=True):
    """What one request found, best first, and, when a tier's window ran out before the
    page was full, the last row it read: where the next page resumes."""

    found: list[Found]
    stopped_at: Position | None


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
    """The SQL and arguments of one tier's window, after `after` when it is in this tier."""
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


def _found(tier: Tier, rows: Iterable[asyncpg.Record]) -> list[Found]:
    return [Found(public_profile(row), Position(tier, row["key"], row["id"])) for row in rows]


class UserSearch:
    def __init__(self, pool: asyncpg.Pool) -> None:
        """`pool`: connections opened with PLANNER_SETTINGS as their server settings."""
        self._pool = pool

    async def page(self, caller: UserId, q: str, after: Position | None, limit: int) -> Searched:
        """Up to `limit` matches after `after`, best first: tier by tier until the page is
        full or a tier's window runs out first."""
        found: list[Found] = []
        tiers = [t for t in tiers_for(q) if after is None or t >= after.tier]
        async with self._pool.acquire() as conn:
            for tier in tiers:
                wanted = limit - len(found)
                sql, args = tier_query(tier, caller, q, after, wanted)
                rows = await conn.fetch(sql, *args)
                hits = [row for row in rows if row["hit"]]
                last = rows[-1] if rows and rows[-1]["scanned"] == WINDOW else None
                if tier is Tier.SUBSTRING and last is not None and len(hits) < wanted:
                    every = await _substring_candidates(conn, caller, q, after, wanted)
                    if every is not None:
                        hits, last = every, None
                found += _found(tier, hits)
                if len(found) >= limit:
                    break
                if last is not None:
                    return Searched(found, Position(tier, last["key"], last["id"]))
        return Searched(found, None)


async def _substring_candidates(
    conn: asyncpg.Connection, caller: UserId, q: str, after: Position | None, limit: int
) -> list[asyncpg.Record] | None:
    """Up to `limit` matches of the substring tier after `after`, in id order: all there
    are. None when the trigram indexes hold more than CANDIDATES_MAX candidates for q."""
    sql, args = substring_candidates_query(caller, q, after, limit)
    async with conn.transaction(readonly=True):
        await conn.execute(BITMAP_ONLY)
        rows: list[asyncpg.Record] = await conn.fetch(sql, *args)
    if rows and rows[0]["candidates"] > CANDIDATES_MAX:
        return None
    return rows
