"""The route table: every URL the server answers, as data, each with its OpenAPI description."""

from __future__ import annotations

from starlette.routing import BaseRoute

from gochat_py.broadcasts import BroadcastRequest, BroadcastResult
from gochat_py.dashboard.stats import DashboardStats
from gochat_py.media import MEDIA_PATH, UploadedMedia
from gochat_py.messages import MAX_SEQ, Message, MessageChange, SendRequest
from gochat_py.postgres.blocks import Block
from gochat_py.postgres.contacts import ContactRequest
from gochat_py.postgres.conversations import ConversationView, CreateConversation
from gochat_py.postgres.profiles import Profile, PublicProfile
from gochat_py.postgres.users import User
from gochat_py.rest import (
    auth,
    blocks,
    broadcasts,
    contacts,
    conversations,
    dashboard,
    health,
    media,
    notifications,
    paging,
    presence,
    query,
    search,
    users,
)
from gochat_py.rest.openapi import ApiRoute, Operation, QueryParam
from gochat_py.usecases import message_search, user_search
from gochat_py.usecases import notifications as notices
from gochat_py.usecases.auth import AuthResult, LoginRequest, RefreshRequest, RegisterRequest
from gochat_py.usecases.delivery_marks import ConversationReceipts
from gochat_py.usecases.group_lifecycle import GroupUpdate
from gochat_py.usecases.history import DEFAULT_PAGE, MAX_PAGE, Page
from gochat_py.usecases.profiles import ProfileUpdate

API = "/api/v1"
# The WebSocket endpoint (websocket/endpoint.py) is served ahead of this table: app.SocketsFirst.
SOCKET_PATH = "/ws"

CONVERSATION = f"{API}/conversations/{{conversation_id:uuid}}"

USERS = f"{API}/users"
MEDIA = f"{MEDIA_PATH}/{{media_id:uuid}}"
# A download's other answers: part of it (a Range request), not modified (If-None-Match),
# and, from the S3 store, a redirect to a signed URL.
DOWNLOAD_ANSWERS: dict[int, type | None] = {206: None, 304: None, 307: None}
MEDIA_NAME = QueryParam(
    "name",
    {"type": "string"},
    "the file's name, for a raw body (a form's `file` field carries its own); shown, never"
    " used as a path",
)


DASHBOARD = "/dashboard"
DASHBOARD_TOKEN = QueryParam(
    "token", {"type": "string"}, "DASHBOARD_TOKEN, when DASHBOARD=token (or a bearer header)"
)

REQUEST = f"{API}/contacts/requests/{{request_id:uuid}}"
PEOPLE_LIMIT = query.limit_param(paging.DEFAULT_LIMIT, paging.MAX_LIMIT)
DIRECTION = QueryParam(
    "direction",
    {"type": "string", "enum": list(contacts.DIRECTIONS), "default": "incoming"},
    "the requests you received (incoming) or sent (outgoing)",
)

CURSOR = QueryParam("cursor", {"type": "string"}, "the `next_cursor` of the previous page")
SEARCH_TEXT = QueryParam(
    "q",
    {"type": "string", "minLength": user_search.MIN_QUERY, "maxLength": user_search.MAX_QUERY},
    "what to look for in usernames and display names, case-insensitive (required;"
    " with three letters or digits in a row it is also matched inside them, not only at the"
    " start)",
)
MESSAGE_SEARCH_TEXT = QueryParam(
    "q",
    {"type": "string", "minLength": 1, "maxLength": message_search.MAX_QUERY},
    'what to look for (required): words, all of them; "a phrase" in quotes; -word or'
    ' -"a phrase" to leave out; word* for words starting with it. Text in a script'
    " written without spaces (Chinese, Japanese, Korean, Thai) is found anywhere in a message",
)
IN_CONVERSATION = QueryParam(
    "conversation_id",
    {"type": "string", "format": "uuid"},
    "only this conversation (one you are a member of)",
)
AFTER_SEQ = QueryParam(
    "after_seq",
    {"type": "integer", "minimum": 0, "maximum": MAX_SEQ},
    "the messages after this seq, oldest first (not with `cursor`)",
)
UNREAD_ONLY = QueryParam(
    "unread_only", {"type": "boolean", "default": False}, "only the unread ones"
)

USER_IDS = QueryParam(
    "user_ids",
    {"type": "string"},
    f"comma-separated user ids, at most {presence.MAX_USER_IDS} (required)",
)

routes: list[BaseRoute] = [
    ApiRoute(
        f"{API}/health",
        health.health,
        "GET",
        Operation("Liveness: the process answers", health.Liveness, auth=False),
    ),
    ApiRoute(
        f"{API}/health/ready",
        health.ready,
        "GET",
        Operation(
            "Readiness: PostgreSQL and Redis answer",
            health.Readiness,
            auth=False,
            also={503: health.NotReady},
        ),
    ),
    ApiRoute(
        "/metrics",
        health.metrics,
        "GET",
        Operation("Prometheus metrics", str, auth=False, media_type="text/plain; version=0.0.4"),
    ),
    ApiRoute(
        DASHBOARD,
        dashboard.page,
        "GET",
        Operation(
            "The live dashboard page (401 in plain text without the token when DASHBOARD=token)",
            str,
            query=(DASHBOARD_TOKEN,),
            auth=False,
            errors=(404,),
            media_type="text/html",
        ),
    ),
    ApiRoute(
        f"{DASHBOARD}/stats",
        dashboard.stats,
        "GET",
        Operation(
            "The figures the dashboard polls: sockets, delivery latency, backlog, health",
            DashboardStats,
            query=(DASHBOARD_TOKEN,),
            auth=False,
            errors=(401, 404),
        ),
    ),
    ApiRoute(
        f"{DASHBOARD}/dashboard.css",
        dashboard.stylesheet,
        "GET",
        Operation(
            "The dashboard's stylesheet", str, auth=False, errors=(404,), media_type="text/css"
        ),
    ),
    ApiRoute(
        f"{DASHBOARD}/dashboard.js",
        dashboard.script,
        "GET",
        Operation(
            "The dashboard's script", str, auth=False, errors=(404,), media_type="text/javascript"
        ),
    ),
    ApiRoute(
        f"{API}/auth/register",
        auth.register,
        "POST",
        Operation(
            "Create an account and log in",
            AuthResult,
            201,
            RegisterRequest,
            auth=False,
            errors=(403, 409, 429, 503),  # 403: csrf_rejected, from a foreign page
        ),
    ),
    ApiRoute(
        f"{API}/auth/login",
        auth.login,
        "POST",
        Operation(
            "Log in: a new session",
            AuthResult,
            request=LoginRequest,
            auth=False,
            errors=(401, 403, 429, 503),  # 403: csrf_rejected, from a foreign page
        ),
    ),
    ApiRoute(
        f"{API}/auth/refresh",
        auth.refresh,
        "POST",
        Operation(
            "A new token pair (and cookies); the refresh token, or the refresh cookie, is spent",
            AuthResult,
            request=RefreshRequest,
            request_optional=True,
            auth=False,
            errors=(401, 503),
        ),
    ),
    ApiRoute(
        f"{API}/auth/logout",
        auth.logout,
        "POST",
        Operation(
            "End the session of a refresh token, or of the refresh cookie (cleared)",
            None,
            204,
            RefreshRequest,
            request_optional=True,
            auth=False,
            errors=(401, 503),
        ),
    ),
    ApiRoute(
        f"{API}/auth/me",
        auth.me,
        "GET",
        Operation("The caller", User, errors=(503,)),
    ),
    ApiRoute(
        f"{API}/conversations",
        conversations.create,
        "POST",
        Operation(
            "Start a direct conversation (200 when it exists) or a group, by ids or emails",
            conversations.CreatedConversation,
            201,
            CreateConversation,
            errors=(403, 404, 503),
            also={200: conversations.CreatedConversation},
        ),
    ),
    ApiRoute(
        f"{API}/conversations",
        conversations.list_conversations,
        "GET",
        Operation(
            "Your conversations, most recently active first",
            conversations.ConversationPage,
            query=(query.limit_param(conversations.LIST_DEFAULT_PAGE, MAX_PAGE), CURSOR),
            errors=(400, 503),
        ),
    ),
    ApiRoute(
        CONVERSATION,
        conversations.details,
        "GET",
        Operation("One conversation with its participants", ConversationView, errors=(404, 503)),
    ),
    ApiRoute(
        CONVERSATION,
        conversations.update_group,
        "PATCH",
        Operation(
            "Rename a group or change its description (owner or admin): a system message each",
            ConversationView,
            request=GroupUpdate,
            errors=(403, 404, 409, 503),
        ),
    ),
    ApiRoute(
        CONVERSATION,
        conversations.delete_group,
        "DELETE",
        Operation(
            "Delete a group and its history (owner): its members lose it at once",
            None,
            204,
            errors=(403, 404, 409, 503),
        ),
    ),
    ApiRoute(
        f"{CONVERSATION}/owner",
        conversations.transfer_ownership,
        "POST",
        Operation(
            "Hand the group to another member (owner); you stay an admin",
            ConversationView,
            request=conversations.OwnerTransfer,
            errors=(403, 404, 409, 503),
        ),
    ),
    ApiRoute(
        f"{CONVERSATION}/messages",
        conversations.messages,
        "GET",
        Operation(
            "A page of history: newest first, or after a seq oldest first",
            Page,
            query=(query.limit_param(DEFAULT_PAGE, MAX_PAGE), CURSOR, AFTER_SEQ),
            errors=(400, 404, 503),
        ),
    ),
    ApiRoute(
        f"{CONVERSATION}/messages",
        conversations.send_message,
        "POST",
        Operation(
            "Send a message, perhaps a reply (200 for a resend with the same client_msg_id)",
            Message,
            201,
            SendRequest,
            errors=(403, 404, 503),
            also={200: Message},
        ),
    ),
    ApiRoute(
        f"{CONVERSATION}/messages/{{message_id:uuid}}",
        conversations.edit_message,
        "PATCH",
        Operation(
            "Edit a message you sent: a message_updated entry of the conversation's log",
            MessageChange,
            request=conversations.EditBody,
            errors=(403, 404, 409, 503),
        ),
    ),
    ApiRoute(
        f"{CONVERSATION}/messages/{{message_id:uuid}}",
        conversations.delete_message,
        "DELETE",
        Operation(
            "Delete a message (its sender, or a group's owner or admin); it stays a tombstone",
            None,
            204,
            errors=(403, 404, 503),
        ),
    ),
    ApiRoute(
        f"{CONVERSATION}/read",
        conversations.mark_read,
        "POST",
        Operation(
            "Move your read mark forward",
            conversations.ReadMark,
            request=conversations.MarkRead,
            errors=(404, 503),
        ),
    ),
    ApiRoute(
        f"{CONVERSATION}/receipts",
        conversations.receipts,
        "GET",
        Operation(
            "Each member's delivered and read marks (seqs)",
            ConversationReceipts,
            errors=(404, 503),
        ),
    ),
    ApiRoute(
        f"{CONVERSATION}/members",
        conversations.add_members,
        "POST",
        Operation(
            "Add members to a group (owner or admin)",
            conversations.Added,
            request=conversations.AddMembers,
            errors=(403, 404, 409, 503),
        ),
    ),
    ApiRoute(
        f"{CONVERSATION}/members/{{user_id:uuid}}",
        conversations.remove_member,
        "DELETE",
        Operation(
            "Leave a group (an owner hands it over first), or remove a member (owner or admin)",
            None,
            204,
            errors=(403, 404, 409, 422, 503),
        ),
    ),
    ApiRoute(
        f"{CONVERSATION}/members/{{user_id:uuid}}",
        conversations.change_role,
        "PATCH",
        Operation(
            "Make a member an admin or a plain member (owner)",
            ConversationView,
            request=conversations.RoleChange,
            errors=(403, 404, 409, 503),
        ),
    ),
    ApiRoute(
        f"{API}/broadcasts",
        broadcasts.broadcast,
        "POST",
        Operation(
            "One message to each recipient, in your direct conversation with them (created"
            " when missing); each result is `sent` or `skipped` with the reason. 200 for a"
            " repeat of the same client_broadcast_id, which sends nothing",
            BroadcastResult,
            201,
            BroadcastRequest,
            errors=(409, 429, 503),
            also={200: BroadcastResult},
        ),
    ),
    ApiRoute(
        f"{API}/notifications",
        notifications.list_notifications,
        "GET",
        Operation(
            "Your notifications, newest first, with how many are unread",
            notices.NotificationPage,
            query=(query.limit_param(notices.DEFAULT_PAGE, notices.MAX_PAGE), UNREAD_ONLY, CURSOR),
            errors=(400, 503),
        ),
    ),
    ApiRoute(
        f"{API}/notifications/read",
        notifications.mark_notifications_read,
        "POST",
        Operation(
            "Mark some of your notifications ({ids}) or all of them ({all: true}) read",
            notices.Marked,
            request=notifications.MarkNotificationsRead,
            errors=(503,),
        ),
    ),
    ApiRoute(
        f"{API}/contacts/requests",
        contacts.send_request,
        "POST",
        Operation(
            "Ask a user to be your contact (200: they had asked you, so you are contacts now)",
            ContactRequest,
            201,
            contacts.UserTarget,
            errors=(403, 404, 409, 429, 503),
            also={200: ContactRequest},
        ),
    ),
    ApiRoute(
        f"{API}/contacts/requests",
        contacts.list_requests,
        "GET",
        Operation(
            "Your pending requests, received or sent, newest first",
            contacts.RequestPage,
            query=(DIRECTION, PEOPLE_LIMIT, CURSOR),
            errors=(400, 503),
        ),
    ),
    ApiRoute(
        f"{REQUEST}/accept",
        contacts.accept,
        "POST",
        Operation(
            "Accept a request you received: you are contacts now",
            ContactRequest,
            errors=(404, 409, 503),
        ),
    ),
    ApiRoute(
        f"{REQUEST}/reject",
        contacts.reject,
        "POST",
        Operation("Reject a request you received", ContactRequest, errors=(404, 409, 503)),
    ),
    ApiRoute(
        REQUEST,
        contacts.cancel,
        "DELETE",
        Operation("Cancel a request you sent", None, 204, errors=(404, 409, 503)),
    ),
    ApiRoute(
        f"{API}/contacts",
        contacts.list_contacts,
        "GET",
        Operation(
            "Your contacts, the newest friendships first",
            contacts.ContactPage,
            query=(PEOPLE_LIMIT, CURSOR),
            errors=(400, 503),
        ),
    ),
    ApiRoute(
        f"{API}/contacts/{{user_id:uuid}}",
        contacts.remove,
        "DELETE",
        Operation("End a friendship, for both of you", None, 204, errors=(404, 503)),
    ),
    ApiRoute(
        f"{API}/blocks",
        blocks.block,
        "POST",
        Operation(
            "Block a user (200: blocked already): ends your friendship and pending requests",
            Block,
            201,
            contacts.UserTarget,
            errors=(404, 503),
            also={200: Block},
        ),
    ),
    ApiRoute(
        f"{API}/blocks",
        blocks.list_blocks,
        "GET",
        Operation(
            "The users you blocked, the newest blocks first",
            blocks.BlockPage,
            query=(PEOPLE_LIMIT, CURSOR),
            errors=(400, 503),
        ),
    ),
    ApiRoute(
        f"{API}/blocks/{{user_id:uuid}}",
        blocks.unblock,
        "DELETE",
        Operation("Lift a block", None, 204, errors=(404, 503)),
    ),
    ApiRoute(
        f"{USERS}/me",
        users.my_profile,
        "GET",
        Operation("Your profile, with your email and settings", Profile, errors=(503,)),
    ),
    ApiRoute(
        f"{USERS}/me",
        users.update_my_profile,
        "PATCH",
        Operation(
            "Change your profile: the fields given (null clears display_name or bio)",
            Profile,
            request=ProfileUpdate,
            errors=(503,),
        ),
    ),
    ApiRoute(
        USERS,
        users.search_users,
        "GET",
        Operation(
            "Find people by username or display name: exact username, then username prefix,"
            " display-name prefix, then anywhere inside. A page may be short, even empty;"
            " keep following next_cursor until it is null",
            user_search.SearchPage,
            query=(
                SEARCH_TEXT,
                query.limit_param(user_search.DEFAULT_PAGE, user_search.MAX_PAGE),
                CURSOR,
            ),
            errors=(400, 422, 503),
        ),
    ),
    ApiRoute(
        f"{API}/search/messages",
        search.search_messages,
        "GET",
        Operation(
            "Find messages in your conversations, newest first (only those the worker has"
            " stored; never deleted or system messages). A page may be short, even empty;"
            " keep following next_cursor until it is null",
            message_search.SearchPage,
            query=(
                MESSAGE_SEARCH_TEXT,
                IN_CONVERSATION,
                query.limit_param(message_search.DEFAULT_PAGE, message_search.MAX_PAGE),
                CURSOR,
            ),
            errors=(400, 404, 422, 503),
        ),
    ),
    ApiRoute(
        f"{USERS}/{{user_id:uuid}}",
        users.user_profile,
        "GET",
        Operation("Someone's public profile", PublicProfile, errors=(404, 503)),
    ),
    ApiRoute(
        f"{CONVERSATION}/online",
        presence.conversation_online,
        "GET",
        Operation(
            "Which members are online (hidden presence shows as offline)",
            presence.ConversationOnline,
            errors=(404, 503),
        ),
    ),
    ApiRoute(
        f"{API}/presence",
        presence.of_users,
        "GET",
        Operation(
            "Online or offline, and last seen, of each user asked; users who hide their "
            "presence, blocked you or do not exist all show offline with no last seen",
            presence.PresenceList,
            query=(USER_IDS,),
            errors=(422, 503),
        ),
    ),
    ApiRoute(
        MEDIA_PATH,
        media.upload,
        "POST",
        Operation(
            "Upload a file, as a multipart form's `file` field or as the raw body. Its type is"
            " read from its bytes (images, PDF, plain text, audio, video, zip); 413 past"
            " MEDIA_MAX_BYTES, 507 past your quota",
            UploadedMedia,
            201,
            query=(MEDIA_NAME,),
            errors=(422, 429, 503, 507),
            file_upload=True,
        ),
    ),
    ApiRoute(
        MEDIA,
        media.download,
        "GET",
        Operation(
            "Download a file: yours, one posted in a conversation you are in, or an avatar."
            " Range requests, ETag/If-None-Match; from S3, a redirect to a signed URL",
            None,
            errors=(404, 503),
            also=DOWNLOAD_ANSWERS,
            media_type="*/*",  # the file's own type
        ),
    ),
    ApiRoute(
        f"{MEDIA}/thumbnail",
        media.thumbnail,
        "GET",
        Operation(
            "An image's thumbnail (WebP, 320 px on the longest side), readable as its file is",
            None,
            errors=(404, 503),
            also=DOWNLOAD_ANSWERS,
            media_type="image/webp",
        ),
    ),
]
