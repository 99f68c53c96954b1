"""System messages: every change to a group recorded in its conversation's own log.

A system message is a message of `type: "system"` sent by whoever made the change: it takes
the next seq, reaches every member's devices live, is stored by the worker and shown in
history, so a timeline (and a resume) sees joins and leaves between the right messages.
`system` says what happened for clients to put in their own words; `content` is a short
English line for those that do not.
"""

from __future__ import annotations

from collections.abc import Sequence

from gochat_py.ids import ConversationId, UserId
from gochat_py.messages import MemberRole, Message, SystemAction, SystemEvent
from gochat_py.postgres.users import Users
from gochat_py.realtime.membership import Membership
from gochat_py.redis.publish import Publisher

# A line names this many people at most, then "and N others".
NAMED_AT_MOST = 5


class SystemMessages:
    def __init__(self, users: Users, membership: Membership, publisher: Publisher) -> None:
        self._users = users
        self._membership = membership
        self._publisher = publisher

    async def record(
        self,
        conversation_id: ConversationId,
        actor: UserId,
        action: SystemAction,
        targets: Sequence[UserId] = (),
        *,
        name: str | None = None,
        role: MemberRole | None = None,
        leaving: Sequence[UserId] = (),
    ) -> Message:
        """Append the change to the log, for the members as they are now and for `leaving`
        (those who just left or were removed: they see it happen too)."""
        names = await self._users.usernames([actor, *targets])
        actor_name = names.get(actor, "someone")
        content = describe(
            action, actor_name, [names.get(t, "someone") for t in targets], name, role
        )
        members = await self._membership.members(conversation_id)
        event = SystemEvent(
            action=action,
            actor_id=actor,
            target_ids=list(targets),
            name=name,
            role=role,
        )
        sent = await self._publisher.send(
            conversation_id,
            members,
            actor,
            actor_name,
            content,
            None,
            system=event,
            leaving=frozenset(leaving),
        )
        return sent.message


def describe(
    action: SystemAction,
    actor: str,
    targets: list[str],
    name: str | None,
    role: MemberRole | None,
) -> str:
    """The line a client without its own wording shows."""
    match action:
        case "created":
            return f'{actor} created the group "{name}"'
        case "member_added":
            return f"{actor} added {_people(targets)}"
        case "member_left":
            return f"{actor} left"
        case "member_removed":
            return f"{actor} removed {_people(targets)}"
        case "renamed":
            return f'{actor} renamed the group to "{name}"'
        case "description_changed":
            return f"{actor} changed the group's description"
        case "role_changed":
            article = "an" if role == "admin" else "a"
            return f"{actor} made {_people(targets)} {article} {role}"
        case "ownership_transferred":
            return f"{actor} made {_people(targets)} the owner"


def _people(names: list[str]) -> str:
    if len(names) > NAMED_AT_MOST:
        shown = names[: NAMED_AT_MOST - 1]
        return f"{', '.join(shown)} and {len(names) - len(shown)} others"
    if len(names) <= 1:
        return "".join(names)
    return f"{', '.join(names[:-1])} and {names[-1]}"
