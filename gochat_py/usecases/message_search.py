"""Finding messages in the caller's conversations: the search text's syntax, pages and
their cursors.

The syntax is web search's: words (all of them required), "a phrase" in quotes, `-word`
or `-"a phrase"` left out, `word*` for words that start with it. Text in a script written
without spaces between words (Chinese, Japanese, Korean, Thai, …) is looked for as it is,
anywhere in a message. Only what the worker has stored in PostgreSQL is searched, and a
message whose edit or delete the worker has not stored yet is left out until it has.
"""

from __future__ import annotations

import asyncio
import re

import msgspec

from gochat_py import cursors, messages
from gochat_py.errors import ValidationFailed
from gochat_py.ids import ConversationId, UserId
from gochat_py.postgres.message_search import (
    Found,
    Match,
    MessageSearch,
    Position,
    Substring,
    Term,
    Words,
)
from gochat_py.realtime.membership import NotAMember
from gochat_py.redis.recent import RecentCache

MAX_QUERY = 200  # characters: a sentence or two; longer is pasted text, not a search
MAX_TERMS = 16  # words and phrases: each one more index lookup
DEFAULT_PAGE = 20
MAX_PAGE = 50
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# Scripts written without spaces between words: the text-search parser keeps a run of them
# as one word, so their words are searched for as text anywhere in a message.
_UNSPACED = re.compile(
    "[\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff"
    "\uac00-\ud7af\uf900-\ufaff\uff66-\uff9f]"
)
# A term: optionally `-`, then "a phrase" (the closing quote optional) or a run without
# spaces or quotes.
_TERM = re.compile(r'(-?)(?:"([^"]*)"?|([^\s"]+))')


class SearchPage(msgspec.Struct, frozen=True):
    results: list[Found]  # newest first
    # None once every match was listed. A page may be short, even empty, and still have one:
    # a request reads a bounded part of each conversation (postgres/message_search.py).
    next_cursor: str | None


def _invalid(message: str) -> ValidationFailed:
    return ValidationFailed(message, code="invalid_query", field="q")


def parse(raw: str | None) -> Match:
    """The search `raw` asks for; ValidationFailed when it asks for nothing or too much."""
    q = (raw or "").strip()
    if not q:
        raise _invalid("q must not be empty")
    if len(q) > MAX_QUERY:
        raise _invalid(f"q must have at most {MAX_QUERY} characters")
    if _CONTROL.search(q):
        raise _invalid("q must not hold control characters")
    if _UNSPACED.search(q):  # all of q as one text, without its quotes
        return Substring(" ".join(q.replace('"', " ").split()))
    terms = []
    for sign, phrase, word in _TERM.findall(q):
        quoted = word == ""  # `"…"`, maybe empty
        text = phrase.strip() if quoted else word.rstrip("*")
        if text:
            prefix = not quoted and word.endswith("*")
            terms.append(Term(text, prefix=prefix, excluded=sign == "-"))
    if not any(not term.excluded for term in terms):
        raise _invalid("q must have a word to look for that is not excluded with -")
    if len(terms) > MAX_TERMS:
        raise _invalid(f"q may have at most {MAX_TERMS} words and phrases")
    return Words(tuple(terms))


class MessageFinder:
    def __init__(self, search: MessageSearch, recent: RecentCache) -> None:
        self._search = search
        self._recent = recent

    async def page(
        self,
        caller: UserId,
        q: str | None,
        conversation_id: ConversationId | None,
        limit: int,
        cursor: str | None,
    ) -> SearchPage:
        """Messages matching `q` in the caller's conversations (or in `conversation_id`,
        NotAMember unless the caller is in it), newest first, after `cursor` if given."""
        match = parse(q)
        after = cursors.decode(cursor, Position) if cursor is not None else None
        # Membership now, not as any cache remembers it: one who left finds nothing there.
        conversations = await self._search.conversations(caller, conversation_id)
        if conversation_id is not None and not conversations:
            raise NotAMember("conversation not found")
        searched = await self._search.page(conversations, match, after, limit)
        resume = cursors.encode(searched.resume_at) if searched.resume_at else None
        return SearchPage(await self._unchanged(searched.found), resume)

    async def _unchanged(self, found: list[Found]) -> list[Found]:
        """`found` less the messages changed since PostgreSQL stored them: an edit or a
        delete still only in the recent cache. A deleted message's old text must not be
        shown, and an edited one's excerpt is of text it no longer has."""
        lowest: dict[ConversationId, int] = {}
        for result in found:
            conversation_id = ConversationId(result.message.conversation_id)
            seq = result.message.seq
            lowest[conversation_id] = min(lowest.get(conversation_id, seq), seq)
        batches = await asyncio.gather(
            *(self._recent.changes_above(c, seq) for c, seq in lowest.items())
        )
        # Each conversation's changes in log order: all apply_changes needs of them.
        changes = [change for batch in batches for change in batch]
        if not changes:
            return found
        current = messages.apply_changes([result.message for result in found], changes)
        return [
            result
            for result, now in zip(found, current, strict=True)
            if not now.deleted and now.content == result.message.content
        ]
