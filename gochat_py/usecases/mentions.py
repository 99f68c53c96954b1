"""@username mentions: the members a message names, resolved when it is sent into
`mentions`, and the `mention` notification each of them gets.

Only a message with an '@' costs anything (the caller tests for one before calling): one
lookup of the conversation's usernames, kept per conversation for as long as its member
set stays the same. Usernames never change, and a join or a leave makes the membership
cache hand out a new member set, so a kept directory is never stale. Edits keep the
mentions the message was sent with and notify nobody (usecases/editing.py).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable

import asyncpg
from loguru import logger

from gochat_py.ids import ConversationId, UserId
from gochat_py.messages import Message, preview
from gochat_py.notifications import MentionNotice
from gochat_py.outages import POSTGRES_DOWN
from gochat_py.usecases.notifications import Notifications

# A username as registration allows it (usecases/auth.py), after an '@' that does not end
# a word (an email address names nobody) and not followed by more of a name (a longer run
# is not a username cut short).
MENTION = re.compile(r"(?<![A-Za-z0-9_])@([A-Za-z0-9_]{3,32})(?![A-Za-z0-9_])")
# Conversations whose usernames are kept; past this, start over (a directory of a
# 10,000-member group is about 1 MB, most are a few hundred bytes).
DIRECTORIES_MAX = 10_000

UsernamesOf = Callable[[list[UserId]], Awaitable[dict[UserId, str]]]
NameOf = Callable[[ConversationId], Awaitable[str | None]]


def named(content: str) -> list[str]:
    """The usernames `content` names with '@', in lower case (usernames are unique whatever
    their case), in order of first appearance, each once."""
    return list(dict.fromkeys(name.lower() for name in MENTION.findall(content)))


class Mentions:
    def __init__(
        self, usernames_of: UsernamesOf, name_of: NameOf, notifications: Notifications
    ) -> None:
        self._usernames_of = usernames_of
        self._name_of = name_of
        self._notifications = notifications
        # Per conversation: the member set the directory was read for, and it (lower-case
        # username → member).
        self._directories: dict[ConversationId, tuple[frozenset[UserId], dict[str, UserId]]] = {}

    async def resolve(
        self,
        conversation_id: ConversationId,
        members: frozenset[UserId],
        sender: UserId,
        content: str,
    ) -> list[uuid.UUID] | None:
        """The members other than `sender` that `content` names, in order of first
        appearance; None when it names none (a non-member's name is no mention)."""
        names = named(content)
        if not names:
            return None
        directory = await self._directory(conversation_id, members)
        found: list[uuid.UUID] = [
            member
            for name in names
            if (member := directory.get(name)) is not None and member != sender
        ]
        return found or None

    async def notify(self, message: Message) -> None:
        """A `mention` notification to each member the sent message names. The message is
        sent already: PostgreSQL failing the notifications is logged, not raised, so a
        client does not resend what was delivered."""
        if not message.mentions:
            return
        try:
            notice = MentionNotice(
                conversation_id=message.conversation_id,
                conversation_name=await self._name_of(ConversationId(message.conversation_id)),
                message_id=message.id,
                seq=message.seq,
                preview=preview(message.content),
            )
            await self._notifications.notify_many(
                [UserId(m) for m in message.mentions],
                "mention",
                UserId(message.sender_id),
                notice,
            )
        except (asyncpg.PostgresError, *POSTGRES_DOWN) as exc:
            logger.warning(
                "mention_notifications_failed",
                message_id=str(message.id),
                error=type(exc).__name__,
            )

    async def _directory(
        self, conversation_id: ConversationId, members: frozenset[UserId]
    ) -> dict[str, UserId]:
        kept = self._directories.get(conversation_id)
        # The membership cache hands out the same set while nothing changes: the identity
        # test is the usual answer; an equal set read again after its TTL keeps it too.
        if kept is not None and (kept[0] is members or kept[0] == members):
            if kept[0] is not members:
                self._directories[conversation_id] = (members, kept[1])
            return kept[1]
        usernames = await self._usernames_of(list(members))
        directory = {name.lower(): user for user, name in usernames.items()}
        if len(self._directories) >= DIRECTORIES_MAX:
            self._directories.clear()
        self._directories[conversation_id] = (members, directory)
        return directory
