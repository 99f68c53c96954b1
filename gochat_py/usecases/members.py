"""Starting conversations and changing who is in them; every change is announced to every
server process, so delivery follows it at once (realtime/membership.py), recorded in the
group's log as a system message (usecases/system_messages.py), and those a manager added
to a group or removed from it are notified (usecases/notifications.py).

An owner who leaves hands the group to the longest-standing admin, else member
(postgres/groups.py): `ownership_transferred`, then `member_left`, in the log. The last
member leaving ends the group, as its deletion would (usecases/group_lifecycle.py).

A committed change is notified, then announced, and announced even when notifying fails:
a notification stored first outlives a Redis outage that fails the announcement (and the
request, after the commit), and an announcement still made keeps delivery true to the
change when PostgreSQL fails the notification."""

from __future__ import annotations

import uuid

from gochat_py.errors import NotFound, ValidationFailed
from gochat_py.ids import ConversationId, UserId
from gochat_py.notifications import ConversationNotice
from gochat_py.postgres.conversations import Conversations, CreateConversation
from gochat_py.postgres.groups import Groups
from gochat_py.postgres.users import Users
from gochat_py.realtime.membership import Membership, MembershipChange
from gochat_py.usecases.group_lifecycle import GroupLifecycle
from gochat_py.usecases.notifications import Notifications
from gochat_py.usecases.system_messages import SystemMessages

# One wording whichever address it was: the answer tells no more than that one is unknown.
UNKNOWN_EMAIL = "no account has an email given"


class Members:
    def __init__(
        self,
        conversations: Conversations,
        users: Users,
        membership: Membership,
        notifications: Notifications,
        system: SystemMessages,
        groups: Groups,
        lifecycle: GroupLifecycle,
    ) -> None:
        self._conversations = conversations
        self._groups = groups
        self._lifecycle = lifecycle
        self._users = users
        self._membership = membership
        self._notifications = notifications
        self._system = system

    async def start(
        self, creator: UserId, request: CreateConversation
    ) -> tuple[ConversationId, bool]:
        """A direct conversation or a group, and whether this call created it (a direct
        conversation exists once per pair)."""
        one = [x for x in (request.participant_id, request.participant_email) if x is not None]
        lists = request.participant_ids is not None or request.participant_emails is not None
        if len(one) == 1 and request.name is None and not lists:
            return await self._start_direct(creator, one[0])
        if not one and request.name is not None and lists:
            return await self._start_group(creator, request.name, request), True
        raise ValidationFailed(
            "send {participant_id} or {participant_email} for a direct conversation, or "
            "{name} with participant_ids, participant_emails or both for a group",
            code="invalid_conversation",
        )

    async def _start_direct(
        self, creator: UserId, participant: uuid.UUID | str
    ) -> tuple[ConversationId, bool]:
        """With the other user named by id, or by email (a str)."""
        if isinstance(participant, str):
            field = "participant_email"
            [other] = await self._accounts_of([participant], field)
        else:
            other, field = UserId(participant), "participant_id"
        conversation_id, created = await self._conversations.create_direct(creator, other, field)
        if created:
            await self._announce(conversation_id, added=[creator, other])
        return conversation_id, created

    async def _start_group(
        self, creator: UserId, name: str, request: CreateConversation
    ) -> ConversationId:
        # Ids and emails may name the same user: the group is their union.
        ids: list[uuid.UUID] = list(request.participant_ids or [])
        listed = set(ids)
        emails = request.participant_emails or []
        ids += [u for u in await self._accounts_of(emails, "participant_emails") if u not in listed]
        field = "participant_ids" if request.participant_ids is not None else "participant_emails"
        conversation_id = await self._conversations.create_group(creator, name, ids, field)
        # The creator may list themself too.
        joined = {creator, *(UserId(p) for p in ids)}
        notice = ConversationNotice(conversation_id=conversation_id, conversation_name=name.strip())
        try:
            await self._notifications.notify_many(
                sorted(joined - {creator}), "added_to_conversation", creator, notice
            )
        finally:
            await self._announce(conversation_id, added=list(joined))
        await self._system.record(
            conversation_id, creator, "created", sorted(joined - {creator}), name=name.strip()
        )
        return conversation_id

    async def _accounts_of(self, emails: list[str], field: str) -> list[UserId]:
        """The account of each email (case-insensitive), in order; NotFound if any has none."""
        lowered = [email.lower() for email in emails]
        if len(set(lowered)) != len(lowered):
            raise ValidationFailed(
                f"{field} lists an email twice", code="duplicate_participants", field=field
            )
        # Checked before the lookup, so no request makes one query of thousands of emails.
        if len(lowered) > (limit := self._conversations.group_max_members):
            raise ValidationFailed(
                f"a group has at most {limit} members",
                code="too_many_participants",
                field=field,
            )
        if not lowered:
            return []
        found = await self._users.ids_by_email(lowered)
        if len(found) != len(lowered):
            # The same code as an unknown id; 404 because the request named the user by an
            # address, and which of several addresses it was stays untold.
            raise NotFound(UNKNOWN_EMAIL, code="unknown_users", field=field)
        return [found[email] for email in lowered]

    async def add(
        self, actor: UserId, conversation_id: ConversationId, user_ids: list[uuid.UUID]
    ) -> list[UserId]:
        """Those newly added (owner or admin only)."""
        added = await self._conversations.add_members(actor, conversation_id, user_ids)
        try:
            if added:  # never the actor: a manager is a member already
                notice = await self._notice(actor, conversation_id)
                await self._notifications.notify_many(added, "added_to_conversation", actor, notice)
        finally:
            await self._announce(conversation_id, added=added)
        if added:
            await self._system.record(conversation_id, actor, "member_added", added)
        return added

    async def remove(self, actor: UserId, conversation_id: ConversationId, user: UserId) -> None:
        """Leave a group (nobody is notified), or remove someone from it as its owner or an
        admin (they are)."""
        departure = await self._groups.remove_member(actor, conversation_id, user)
        if departure.ended:
            await self._lifecycle.ended(conversation_id, actor, [actor])
            return
        try:
            if user != actor:
                notice = await self._notice(actor, conversation_id)
                await self._notifications.notify(user, "removed_from_conversation", actor, notice)
        finally:
            await self._announce(conversation_id, removed=[user])
        if departure.new_owner is not None:
            await self._system.record(
                conversation_id, actor, "ownership_transferred", [departure.new_owner],
                leaving=[user],
            )  # fmt: skip
        if user == actor:
            await self._system.record(conversation_id, actor, "member_left", leaving=[user])
        else:
            await self._system.record(
                conversation_id, actor, "member_removed", [user], leaving=[user]
            )

    async def _notice(self, member: UserId, conversation_id: ConversationId) -> ConversationNotice:
        """What a notification about the conversation says of it, read as `member` sees it."""
        row = await self._conversations.one(member, conversation_id)
        name = row.name if row is not None else None
        return ConversationNotice(conversation_id=conversation_id, conversation_name=name)

    async def _announce(
        self,
        conversation_id: ConversationId,
        added: list[UserId] | None = None,
        removed: list[UserId] | None = None,
    ) -> None:
        change = MembershipChange(
            conversation_id, added=sorted(added or []), removed=sorted(removed or [])
        )
        await self._membership.announce_change(change)
