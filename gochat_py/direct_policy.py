"""Who may write to whom in a direct conversation: the one rule that starting a direct
conversation and every send into one both apply.

A block refuses both of the pair, whichever of them blocked: neither writes to the other
until it is lifted (the blocked user learns nothing beyond the code `blocked`). A user whose
`dm_policy` is `contacts` hears only from their contacts. Groups answer to neither rule.
"""

from __future__ import annotations

import msgspec

from gochat_py.errors import Forbidden
from gochat_py.ids import UserId

CONTACTS_ONLY = "contacts"  # users.dm_policy: direct messages from contacts only


class Blocked(Forbidden):
    """One of the pair blocked the other; which one stays untold."""

    code = "blocked"


class NotAContact(Forbidden):
    code = "not_a_contact"


Refusal = type[Blocked] | type[NotAContact]


class PairStanding(msgspec.Struct, frozen=True):
    """What PostgreSQL knows of two users that decides whether each may write to the other."""

    blocked: bool  # either blocked the other
    contacts: bool
    contacts_only: frozenset[UserId]  # those of the two whose dm_policy is "contacts"


class Roster(msgspec.Struct, frozen=True):
    """A conversation's members, and those of them refused a send now, with the reason
    (only a direct conversation refuses anyone): what realtime/membership.py caches."""

    members: frozenset[UserId]
    refused: dict[UserId, Refusal] = {}


def refusal(standing: PairStanding, sender: UserId, recipient: UserId) -> Refusal | None:
    """Why `sender` may not write to `recipient`, or None when they may."""
    if standing.blocked:
        return Blocked
    if recipient in standing.contacts_only and not standing.contacts:
        return NotAContact
    return None


def refuse(reason: Refusal) -> Forbidden:
    """The error a refused sender gets, with the same words whichever side blocked."""
    if reason is Blocked:
        return Blocked("you cannot message this user")
    return NotAContact("this user accepts direct messages from their contacts only")
