"""The groups file of the bare protocol (bench/bare_server.py), read once per process.

One JSON object mapping each conversation id to its members' user numbers:
`{"g0": [0, 1, 2, 3], "g1": [4, 5, 6, 7]}`.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from pathlib import Path

# Channels accepts group names of ASCII letters, digits, '-', '_' and '.' under 100 characters.
_PLAIN_ID = re.compile(r"[A-Za-z0-9_.-]{1,90}")


class GroupsFileError(ValueError):
    """The groups file is missing or not in the bare protocol's shape."""


def channels_group(conversation_id: str) -> str:
    """The Channels group of a conversation: its id where Channels allows it, else a digest."""
    if _PLAIN_ID.fullmatch(conversation_id):
        return f"conv.{conversation_id}"
    return f"conv-sha1.{hashlib.sha1(conversation_id.encode()).hexdigest()}"


@functools.cache
def memberships(path: str) -> dict[int, frozenset[str]]:
    """User number -> the conversation ids it belongs to; users in none are absent."""
    try:
        groups = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise GroupsFileError(f"cannot read groups file {path!r}: {exc}") from exc
    if not isinstance(groups, dict):
        raise GroupsFileError(f'{path}: expected {{"<conversation id>": [<user>, ...], ...}}')
    joined: dict[int, set[str]] = {}
    for conversation_id, members in groups.items():
        if not isinstance(members, list) or not all(type(m) is int for m in members):
            raise GroupsFileError(f"{path}: members of {conversation_id!r} must be integers")
        for user in members:
            joined.setdefault(user, set()).add(conversation_id)
    return {user: frozenset(ids) for user, ids in joined.items()}
