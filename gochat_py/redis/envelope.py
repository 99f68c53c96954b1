"""What travels on a conversation channel: the event's name and `|` (messages carry none),
the recipients, a newline, then the frame.

One pub/sub message per message and process: each process that holds a member's socket
gets the frame once and hands it to the local devices of the recipients. Up to a
conversation size (`Addressing`), the envelope names every recipient: the sender's process
writes the names from the members it authorized the send against, so a receiving process
needs no membership lookup, and nobody who was not named (a member removed meanwhile, a
non-member sharing the process) gets the frame. Above it, naming 10,000 members would cost
every process that holds any of them the whole list per message, so the envelope says
`ROUTED` instead: every local user this process routes the conversation's channel to
(realtime/hub.py keeps those routes from membership changes), less those marked
`EXCLUDED`, plus those marked `LEAVING`, who get this frame and then lose the route. The
event's name lets a process skip the sockets that did not ask for that event
(websocket/negotiation.py) without decoding the frame; a message, which every socket gets,
has no name and no check.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable

from gochat_py.ids import UserId

SEPARATOR = b"\n"  # never inside the ids, so the first one ends the header
ID_SEPARATOR = b","
EVENT_SEPARATOR = b"|"  # never inside the ids nor an event's name
# The routed form's first name; the marks prefix user keys after it. None of these three
# bytes is ever in a user key (hex digits and dashes), nor is either separator.
ROUTED = b"*"
LEAVING = b"!"
EXCLUDED = b"~"


def header(recipients: Iterable[UserId], event: str | None = None) -> bytes:
    """The envelope naming `recipients`, up to and including the separator; the frame
    follows it. `event` is None for a message."""
    return _with_event(ID_SEPARATOR.join(user_key(user) for user in recipients), event)


def routed_header(
    event: str | None = None,
    *,
    leaving: Iterable[UserId] = (),
    excluding: Iterable[UserId] = (),
) -> bytes:
    """The envelope for every member a process routes the conversation to, less
    `excluding`, plus `leaving` (whose routes the process then drops)."""
    names = [ROUTED]
    names += [LEAVING + user_key(user) for user in leaving]
    names += [EXCLUDED + user_key(user) for user in excluding]
    return _with_event(ID_SEPARATOR.join(names), event)


def _with_event(names: bytes, event: str | None) -> bytes:
    return (
        names + SEPARATOR if event is None else event.encode() + EVENT_SEPARATOR + names + SEPARATOR
    )


def seal(recipients: Iterable[UserId], frame: bytes, event: str | None = None) -> bytes:
    return header(recipients, event) + frame


def open_envelope(data: bytes) -> tuple[str | None, list[bytes], bytes]:
    """(the event's name, None for a message; the names: each recipient's user_key, or
    `ROUTED` then the marked keys; the frame)."""
    head, _, frame = data.partition(SEPARATOR)
    event, found, names = head.rpartition(EVENT_SEPARATOR)
    return (event.decode() if found else None), names.split(ID_SEPARATOR), frame


def user_key(user: UserId) -> bytes:
    """How an envelope names a user: the canonical id text, ASCII."""
    return str(user).encode()


class Addressing:
    """Which form a conversation's frames take: named up to `named_max` members (a removed
    member's process drops the frame at once, and the names cost nothing extra), routed
    above (a frame's cost no longer grows with the members)."""

    def __init__(self, named_max: int | None) -> None:
        """`named_max` None: always named."""
        self.named_max = named_max

    def routes(self, members: Collection[UserId]) -> bool:
        """Whether a conversation of `members` is addressed in the routed form."""
        return self.named_max is not None and len(members) > self.named_max

    def header(
        self,
        members: Collection[UserId],
        event: str | None = None,
        *,
        leaving: Collection[UserId] = (),
        excluding: Collection[UserId] = (),
    ) -> bytes:
        """The envelope of a frame for `members` and `leaving`, less `excluding`."""
        if self.routes(members):
            return routed_header(event, leaving=leaving, excluding=excluding)
        if not leaving and not excluding:
            return header(members, event)
        return header(sorted({*members, *leaving} - set(excluding)), event)
