"""What travels on a conversation channel: the recipients' ids, a newline, then the frame.

One pub/sub message per message and process: each process that holds a member's socket
gets the frame once and hands it to the local devices of the users the envelope names.
The sender's process writes the names from the members it authorized the send against,
so a receiving process needs no membership lookup, and nobody who was not named (a
member removed meanwhile, a non-member sharing the process) gets the frame.
"""

from __future__ import annotations

from collections.abc import Iterable

from gochat_py.ids import UserId

SEPARATOR = b"\n"  # never inside the ids, so the first one ends the header
ID_SEPARATOR = b","


def header(recipients: Iterable[UserId]) -> bytes:
    """The envelope up to and including the separator; the frame follows it."""
    return ID_SEPARATOR.join(user_key(user) for user in recipients) + SEPARATOR


def seal(recipients: Iterable[UserId], frame: bytes) -> bytes:
    return header(recipients) + frame


def open_envelope(data: bytes) -> tuple[list[bytes], bytes]:
    """(each recipient's user_key, the frame)."""
    names, _, frame = data.partition(SEPARATOR)
    return names.split(ID_SEPARATOR), frame


def user_key(user: UserId) -> bytes:
    """How an envelope names a user: the canonical id text, ASCII."""
    return str(user).encode()
