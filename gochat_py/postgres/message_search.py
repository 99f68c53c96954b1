"""Message search in PostgreSQL: the matches of a search in the caller's conversations,
newest first, in keyset pages on (sent_at, id).

A search matches either words (`Words`: a tsquery against the generated `tsv` column) or
a piece of text anywhere in the content (`Substring`: ILIKE, for scripts written without
spaces between words, whose runs the text-search parser keeps as one word). System
messages are never matched; a deleted message's content is empty, so it has nothing to
match.

A page is found one of two ways:
- candidates: every match in the conversations, from the words index, taken only when
  there are at most CANDIDATES_MAX of them; then sorted, they hold the page exactly. A
  selective term is answered here whatever the table's size. A GIN index reads a key's
  whole list whatever the LIMIT, once per conversation, so words the planner's statistics
  count as common (COMMON_SHARE, `message_search_share` in migration 0007) skip this way.
- recent: each conversation walked from the cursor down, newest first, at most a window
  of rows each (`messages_search_recent_idx`), the matches kept. A common term fills the
  page from the newest rows. When a conversation's window runs out first, the page ends
  at the highest such stop (everything above it was seen in every conversation), short or
  even empty, and its cursor resumes from there: paging to the end lists every match once.
Each request therefore reads at most CANDIDATES_MAX + 1 candidates and a bounded window
per conversation, however many rows the table or the common term has.
"""

from __future__ import annotations

import datetime
import re
import uuid
from collections.abc import Sequence
from typing import Annotated

import asyncpg
import msgspec

from gochat_py import times
from gochat_py.ids import ConversationId, UserId
from gochat_py.messages import Message
from gochat_py.postgres.conversations import message_columns, message_from_row
from gochat_py.postgres.user_search import like_pattern

# Words the planner expects in more than this share of all messages are too common for the
# words index: its list for them is long, and is read once per conversation searched. A
# word outside the statistics' most common ones is estimated at half the rarest of them.
COMMON_SHARE = 0.01
# Candidates a page takes from an index at most. Past it the term is common in the
# caller's conversations, and their newest rows hold a page's matches.
CANDIDATES_MAX = 1000
# Rows the recent way reads in all for one request, split between the conversations
# searched: a few milliseconds of index and heap reads.
RECENT_BUDGET = 4000
# Rows each conversation's walk reads at least, however many conversations share the
# budget: fewer would end most pages after a handful of rows.
RECENT_MIN = 50
# Marks around the matched words in ts_headline's excerpt: private-use characters, split
# into fragments before the client sees them.
MARK_START, MARK_END = "\ue000", "\ue001"
_HEADLINE_OPTIONS = (
    f"StartSel={MARK_START}, StopSel={MARK_END}, MaxWords=30, MinWords=12, ShortWord=1,"
    ' MaxFragments=2, FragmentDelimiter=" … "'
)
# Above every sent_at and id: the first page's bound.
TOP = (datetime.datetime.max.replace(tzinfo=datetime.UTC), uuid.UUID(int=(1 << 128) - 1))
EXCERPT_BEFORE = 40  # characters of a substring match's context shown before it
EXCERPT_MAX = 240  # characters of a substring match's excerpt


class Term(msgspec.Struct, frozen=True):
    """One thing a search asks for: a word or a phrase (several words in order), a word
    prefix, or a word or phrase that must not occur."""

    text: str
    prefix: bool = False
    excluded: bool = False


class Words(msgspec.Struct, frozen=True):
    terms: tuple[Term, ...]  # at least one not excluded


class Substring(msgspec.Struct, frozen=True):
    text: str


Match = Words | Substring


class Position(msgspec.Struct, frozen=True, array_like=True, forbid_unknown_fields=True):
    """A message's place in the search's order, newest first: the cursor's content."""

    # Unix microseconds, PostgreSQL's precision: a bound equal to the row it came from.
    sent_at: Annotated[int, msgspec.Meta(ge=0, le=253402300799999999)]
    id: uuid.UUID


class Fragment(msgspec.Struct, frozen=True):
    text: str
    match: bool  # the words (or the text) searched for


class Found(msgspec.Struct, frozen=True):
    message: Message
    highlight: list[Fragment]  # the matched part of the content and its context, in order


class Searched(msgspec.Struct, frozen=True):
    """One request's matches, newest first, and where the next page starts: after the last
    match when more followed, at the stop of a walk that ran out first, or None."""

    found: list[Found]
    resume_at: Position | None


def _quoted(text: str) -> str:
    """A tsquery operand that is `text` and nothing else: quotes and backslashes escaped,
    so no operator, weight or prefix mark inside it is read as one."""
    return "'" + text.replace("\\", "\\\\").replace("'", "''") + "'"


def tsquery_source(terms: Sequence[Term]) -> str:
    """The input of to_tsquery('simple', …) for `terms`, all of them required. Each term is
    one quoted operand, which to_tsquery normalizes as documents are (a phrase's words
    joined by <->, punctuation dropped); only the operators written here are operators."""
    operands = []
    for term in terms:
        operand = _quoted(term.text) + (":*" if term.prefix else "")
        operands.append(f"!{operand}" if term.excluded else operand)
    return " & ".join(operands)


def _condition(match: Match) -> str:
    """The SQL condition of a match on the row `m`, its query text being $2."""
    if isinstance(match, Words):
        return "m.tsv @@ $2::tsquery"
    return "m.content ILIKE $2"


_MEMBER_OF = "SELECT conversation_id FROM conversation_members WHERE user_id = $1"
_MEMBER_OF_ONE = _MEMBER_OF + " AND conversation_id = $2"
# The words query normalized once (PostgreSQL's own tsquery text, passed back as $2 of the
# statements below), whether an index can answer it (one that only excludes cannot: it
# matches nothing rather than read every row), and how common the planner expects it.
NORMALIZED = (
    "SELECT q::text AS query, querytree(q) <> 'T' AS indexable,"
    " CASE WHEN querytree(q) <> 'T' THEN message_search_share(q) END AS share"
    " FROM to_tsquery('simple', $1) AS q"
)


def candidates_sql(match: Match) -> str:
    """Parameters: $1 the conversations, $2 the match, $3 and $4 the bound, $5 the limit.
    Matches at or past the bound are left out of the page, not of the count: as a scan
    condition the planner could read the bound's range instead of the index."""
    return (
        "SELECT id, sent_at, candidates FROM (SELECT *, count(*) OVER () AS candidates FROM"
        f" (SELECT m.id, m.sent_at FROM messages m WHERE m.conversation_id = ANY($1::uuid[])"
        f" AND {_condition(match)} AND m.type <> 'system' LIMIT {CANDIDATES_MAX + 1}) m) m"
        f" WHERE (sent_at, id) < ($3, $4) OR candidates > {CANDIDATES_MAX}"
        " ORDER BY sent_at DESC, id DESC LIMIT $5"
    )


def recent_sql(match: Match) -> str:
    """Parameters: $1 the conversations, $2 the match, $3 and $4 the bound, $5 the window
    of each conversation, $6 the limit. Each conversation is walked for its matches below
    the bound, up to the limit, and the window's last row, matched or not, so that a walk
    that ran out says where (row_number() streams: a walk stops once its page is full).
    A walk that stopped short of its conversation's end, full or out of window, stopped at
    its last row; the highest such stop is where the page ends (everything above it was
    read in every conversation). Returned: the matches at or above it, up to the limit, and
    the stop itself (`stop`), so that only a page's rows leave the database."""
    walk = (
        "SELECT * FROM (SELECT s.*, row_number() OVER (ORDER BY s.sent_at DESC, s.id DESC)"
        f" AS scanned FROM (SELECT m.id, m.sent_at, {_condition(match)} AS hit"
        " FROM messages m WHERE m.conversation_id = c.id AND m.type <> 'system'"
        " AND (m.sent_at, m.id) < ($3, $4) ORDER BY m.sent_at DESC, m.id DESC LIMIT $5) s) s"
        " WHERE s.hit OR s.scanned = $5 LIMIT $6"
    )
    return (
        "WITH walked AS MATERIALIZED (SELECT w.*, count(*) OVER (PARTITION BY c.id) AS taken,"
        " max(w.scanned) OVER (PARTITION BY c.id) AS last"
        f" FROM unnest($1::uuid[]) AS c(id) CROSS JOIN LATERAL ({walk}) w),"
        " stop AS (SELECT sent_at, id FROM walked"
        " WHERE scanned = last AND (taken = $6 OR scanned = $5)"
        " ORDER BY sent_at DESC, id DESC LIMIT 1)"
        " SELECT * FROM (SELECT w.id, w.sent_at, false AS stop FROM walked w WHERE w.hit"
        " AND NOT EXISTS (SELECT 1 FROM stop WHERE (w.sent_at, w.id) < (stop.sent_at, stop.id))"
        " ORDER BY w.sent_at DESC, w.id DESC LIMIT $6) hits"
        " UNION ALL SELECT id, sent_at, true FROM stop"
    )


def page_sql(match: Match) -> str:
    """The page's messages by id ($1), each with its words' excerpt ($2: the match)."""
    headline = (
        f"ts_headline('simple', m.content, $2::tsquery, '{_HEADLINE_OPTIONS}')"
        if isinstance(match, Words)
        else "NULL::text"
    )
    return (
        f"SELECT {message_columns('m', 'u')}, {headline} AS headline"
        " FROM messages m JOIN users u ON u.id = m.sender_id WHERE m.id = ANY($1::uuid[])"
    )


def fragments(marked: str) -> list[Fragment]:
    """ts_headline's excerpt, its marks turned into fragments."""
    found: list[Fragment] = []
    for i, part in enumerate(re.split(f"[{MARK_START}{MARK_END}]", marked)):
        if part:
            found.append(Fragment(part, match=i % 2 == 1))
    return found


def substring_fragments(content: str, text: str) -> list[Fragment]:
    """The first occurrence of `text` in `content` (case-insensitive) with its context."""
    at = content.lower().find(text.lower())
    if at < 0:
        return [Fragment(content[:EXCERPT_MAX], match=False)]
    start = max(0, at - EXCERPT_BEFORE)
    end = max(at + len(text), min(len(content), start + EXCERPT_MAX))
    parts = [
        Fragment(("…" if start else "") + content[start:at], match=False),
        Fragment(content[at : at + len(text)], match=True),
        Fragment(content[at + len(text) : end] + ("…" if end < len(content) else ""), False),
    ]
    return [part for part in parts if part.text]


def _position(row: asyncpg.Record) -> Position:
    return Position(times.unix_us(row["sent_at"]), row["id"])


def _bound(after: Position | None) -> tuple[datetime.datetime, uuid.UUID]:
    return TOP if after is None else (times.from_unix_us(after.sent_at), after.id)


class MessageSearch:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def conversations(
        self, caller: UserId, only: ConversationId | None
    ) -> list[ConversationId]:
        """The conversations `caller` is a member of now, or of them just `only`."""
        async with self._pool.acquire() as conn:
            if only is None:
                rows = await conn.fetch(_MEMBER_OF, caller)
            else:
                rows = await conn.fetch(_MEMBER_OF_ONE, caller, only)
        return [row["conversation_id"] for row in rows]

    async def page(
        self,
        conversations: Sequence[ConversationId],
        match: Match,
        after: Position | None,
        limit: int,
    ) -> Searched:
        """Up to `limit` matches in `conversations` after `after`, newest first."""
        if not conversations:
            return Searched([], None)
        async with self._pool.acquire() as conn:
            if isinstance(match, Words):
                normalized = await conn.fetchrow(NORMALIZED, tsquery_source(match.terms))
                if not normalized["indexable"]:
                    return Searched([], None)
                argument: str = normalized["query"]
                indexed = normalized["share"] <= COMMON_SHARE
            else:
                # Always walked: a trigram index of every message's content would cost each
                # stored message more than the words index and the walk's btree together.
                argument = like_pattern(match.text)
                indexed = False
            positions, resume_at = await self._positions(
                conn, list(conversations), match, argument, indexed, after, limit
            )
            ids = [p.id for p in positions]
            if not ids:
                return Searched([], resume_at)
            if isinstance(match, Words):
                rows = await conn.fetch(page_sql(match), ids, argument)
            else:
                rows = await conn.fetch(page_sql(match), ids)
        by_id = {row["id"]: row for row in rows}
        found = []
        for position in positions:
            row = by_id.get(position.id)
            if row is None:  # deleted with its conversation meanwhile
                continue
            message = message_from_row(row)
            if isinstance(match, Words):
                highlight = fragments(row["headline"])
            else:
                highlight = substring_fragments(message.content, match.text)
            found.append(Found(message, highlight))
        return Searched(found, resume_at)

    async def _positions(
        self,
        conn: asyncpg.Connection,
        conversations: list[ConversationId],
        match: Match,
        argument: str,
        indexed: bool,
        after: Position | None,
        limit: int,
    ) -> tuple[list[Position], Position | None]:
        """The page's matches in order, and where the next page starts: from the index when
        `indexed` and it holds few enough candidates, otherwise from the newest rows."""
        bound = _bound(after)
        if indexed:
            rows = await conn.fetch(
                candidates_sql(match), conversations, argument, *bound, limit + 1
            )
            if not rows or rows[0]["candidates"] <= CANDIDATES_MAX:
                return _paged([_position(row) for row in rows], limit, None)
        window = max(RECENT_MIN, RECENT_BUDGET // len(conversations))
        rows = await conn.fetch(
            recent_sql(match), conversations, argument, *bound, window, limit + 1
        )
        return _walked(rows, limit)


def _paged(
    matches: list[Position], limit: int, stop: Position | None
) -> tuple[list[Position], Position | None]:
    """The first `limit` of `matches` (sorted), and where the page after them starts."""
    if len(matches) > limit:
        return matches[:limit], matches[limit - 1]
    return matches, stop


def _key(position: Position) -> tuple[int, uuid.UUID]:
    return (position.sent_at, position.id)


def _walked(rows: Sequence[asyncpg.Record], limit: int) -> tuple[list[Position], Position | None]:
    """The walk's page from recent_sql's rows: its matches and its stop, if any."""
    stop = next((_position(row) for row in rows if row["stop"]), None)
    matches = sorted((_position(row) for row in rows if not row["stop"]), key=_key, reverse=True)
    return _paged(matches, limit, stop)
