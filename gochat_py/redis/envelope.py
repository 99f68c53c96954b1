"""What travels on a conversation channel: the event's name and `|` (messages carry none),
the recipients' ids, a newline, then the frame.

One pub/sub message per message and process: each process that holds a member's socket
gets the frame once and hands it to the local devices of the users the envelope names.
The sender's process writes the names from the members it authorized the send against,
so a receiving process needs no membership lookup, and nobody who was not named (a
member removed meanwhile, a non-member sharing the process) gets the frame. The event's
name lets a process skip the sockets that did not ask for that event
(websocket/negotiation.py) without decoding the frame; a message, which every socket gets,
has no name and no check.
"""

from __future__ import annotations

from collections.abc import Iterable

from gochat_py.ids import UserId

SEPARATOR = b"\n"  # never inside the ids, so the first one ends the header
ID_SEPARATOR = b","
EVENT_SEPARATOR = b"|"  # never inside the ids nor an event's name


def header(recipients: Iterable[UserId], event: str | None = None) -> bytes:
    """The envelope up to and including the separator; the frame follows it. `event` is
    None for a message."""
    names = ID_SEPARATOR.join(user_key(user) for user in recipients) + SEPARATOR
    return names if event is None else event.encode() + EVENT_SEPARATOR + names


def seal(recipients: Iterable[UserId], frame: bytes, event: str | None = None) -> bytes:
    return header(recipients, event) + frame


def open_envelope(data: bytes) -> tuple[str | None, list[bytes], bytes]:
    """(the event's name, None for a message; each recipient's user_key; the frame)."""
    head, _, frame = data.partition(SEPARATOR)
    event, found, names = head.rpartition(EVENT_SEPARATOR)
    return (event.decode() if found else None), names.split(ID_SEPARATOR), frame


def user_key(user: UserId) -> bytes:
    """How an envelope names a user: the canonical id text, ASCII."""
    return str(user).encode()
