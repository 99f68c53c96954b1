-- The whole current schema of gochat-py, equal to applying every file in migrations/.
-- A test applies both and compares them; change a migration and this file together.

CREATE TABLE users (
    id            uuid PRIMARY KEY,
    email         text        NOT NULL CHECK (length(email) BETWEEN 3 AND 254),
    username      text        NOT NULL CHECK (username ~ '^[A-Za-z0-9_]{3,32}$'),
    password_hash text        NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    display_name  text        CHECK (display_name IS NULL OR length(display_name) BETWEEN 1 AND 64),
    bio           text        CHECK (bio IS NULL OR length(bio) <= 500),
    dm_policy     text        NOT NULL DEFAULT 'everyone' CHECK (dm_policy IN ('everyone', 'contacts')),
    show_presence boolean     NOT NULL DEFAULT true,
    -- When the user's last socket closed; Redis knows whether one is open now.
    last_seen_at  timestamptz
);
CREATE UNIQUE INDEX users_email_key ON users (lower(email));
CREATE UNIQUE INDEX users_username_key ON users (lower(username));
-- User search (gochat_py/postgres/user_search.py): prefix tiers walk btree ranges in "C"
-- order (bytewise, so a prefix is one range and keyset order is index order whatever the
-- database's collation); the substring tier finds candidates through trigram indexes.
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE INDEX users_username_prefix_idx ON users ((lower(username) COLLATE "C"));
CREATE INDEX users_display_name_prefix_idx ON users ((lower(display_name) COLLATE "C"), id)
    WHERE display_name IS NOT NULL;
CREATE INDEX users_username_trgm_idx ON users USING gin (lower(username) gin_trgm_ops);
CREATE INDEX users_display_name_trgm_idx ON users USING gin (lower(display_name) gin_trgm_ops)
    WHERE display_name IS NOT NULL;

CREATE TABLE conversations (
    id               uuid PRIMARY KEY,
    kind             text        NOT NULL CHECK (kind IN ('direct', 'group')),
    name             text        CHECK (name IS NULL OR length(name) BETWEEN 1 AND 100),
    created_by       uuid        NOT NULL REFERENCES users (id),
    direct_user_low  uuid        REFERENCES users (id),
    direct_user_high uuid        REFERENCES users (id),
    last_seq         bigint      NOT NULL DEFAULT 0,
    last_activity_at timestamptz NOT NULL DEFAULT now(),
    created_at       timestamptz NOT NULL DEFAULT now(),
    -- A group's description (0006); a direct conversation has none.
    description      text        CHECK (description IS NULL OR length(description) <= 500),
    CONSTRAINT conversations_direct_pair CHECK (
        (kind = 'direct' AND direct_user_low IS NOT NULL AND direct_user_high IS NOT NULL
            AND direct_user_low < direct_user_high)
        OR (kind = 'group' AND direct_user_low IS NULL AND direct_user_high IS NULL
            AND name IS NOT NULL)
    )
);
CREATE UNIQUE INDEX conversations_direct_pair_key
    ON conversations (direct_user_low, direct_user_high) WHERE kind = 'direct';

CREATE TABLE conversation_members (
    conversation_id uuid        NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    user_id         uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role            text        NOT NULL DEFAULT 'member' CHECK (role IN ('owner', 'admin', 'member')),
    joined_at       timestamptz NOT NULL DEFAULT now(),
    last_read_seq   bigint      NOT NULL DEFAULT 0,
    delivered_seq   bigint      NOT NULL DEFAULT 0,  -- a device of the member has everything up to it
    PRIMARY KEY (conversation_id, user_id)
);
CREATE INDEX conversation_members_user_idx ON conversation_members (user_id, conversation_id);

CREATE TABLE messages (
    id              uuid PRIMARY KEY,
    conversation_id uuid        NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    seq             bigint      NOT NULL CHECK (seq > 0),
    sender_id       uuid        NOT NULL REFERENCES users (id),
    type            text        NOT NULL DEFAULT 'text' CHECK (type IN ('text', 'system', 'image', 'file')),
    content         text        NOT NULL,
    client_msg_id   text        CHECK (client_msg_id IS NULL OR length(client_msg_id) <= 64),
    sent_at         timestamptz NOT NULL,
    persisted_at    timestamptz NOT NULL DEFAULT now(),
    -- Edits and deletes (0004): changed_seq is the seq of the last one applied.
    edited_at       timestamptz,
    deleted_at      timestamptz,
    changed_seq     bigint      CHECK (changed_seq IS NULL OR changed_seq > seq),
    system          jsonb,
    reply_to        jsonb,
    mentions        uuid[],
    -- Search (0007): the content's words; a deleted message's content is '', so it has none.
    tsv             tsvector    GENERATED ALWAYS AS (to_tsvector('simple', content)) STORED,
    media           jsonb,  -- image and file messages (0008): the media as the message showed it
    CONSTRAINT messages_conversation_seq_key UNIQUE (conversation_id, seq),
    CONSTRAINT messages_deleted_is_empty CHECK (deleted_at IS NULL OR content = '')
);
-- Message search (gochat_py/postgres/message_search.py): words beside the conversation
-- (btree_gin), and the newest-first walk of one conversation in the search's order.
-- System messages are in neither: search never finds them.
CREATE EXTENSION IF NOT EXISTS btree_gin;
CREATE INDEX messages_search_words_idx ON messages USING gin (conversation_id, tsv)
    WHERE type <> 'system';
CREATE INDEX messages_search_recent_idx ON messages (conversation_id, sent_at, id)
    WHERE type <> 'system';
-- The share of all messages the planner expects a words query to match, from the column's
-- statistics (its most common words): message search walks the newest messages for a
-- common query instead of reading its long lists from the words index. EXECUTE plans with
-- the value itself, never a generic plan's default.
CREATE FUNCTION message_search_share(query tsquery) RETURNS double precision
    LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    plan json;
    total real;
BEGIN
    EXECUTE 'EXPLAIN (FORMAT JSON) SELECT 1 FROM messages WHERE type <> ''system'' AND tsv @@ $1'
        INTO plan USING query;
    SELECT reltuples INTO total FROM pg_class WHERE oid = 'messages'::regclass;
    RETURN (plan -> 0 -> 'Plan' ->> 'Plan Rows')::double precision / greatest(total, 1);
END
$$;

CREATE TABLE contact_requests (
    id         uuid PRIMARY KEY,
    from_user  uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    to_user    uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    status     text        NOT NULL DEFAULT 'pending'
                           CHECK (status IN ('pending', 'accepted', 'rejected', 'cancelled')),
    created_at timestamptz NOT NULL DEFAULT now(),
    decided_at timestamptz,
    CONSTRAINT contact_requests_not_to_self CHECK (from_user <> to_user)
);
-- One pending request per pair, whichever of the two asked.
CREATE UNIQUE INDEX contact_requests_pending_pair_key
    ON contact_requests (least(from_user, to_user), greatest(from_user, to_user))
    WHERE status = 'pending';
CREATE INDEX contact_requests_incoming_idx ON contact_requests (to_user, created_at, id)
    WHERE status = 'pending';
CREATE INDEX contact_requests_outgoing_idx ON contact_requests (from_user, created_at, id)
    WHERE status = 'pending';

-- A friendship is two rows, one per direction: "my contacts" is one index range.
CREATE TABLE contacts (
    user_id    uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    contact_id uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, contact_id),
    CONSTRAINT contacts_not_self CHECK (user_id <> contact_id)
);

CREATE TABLE blocks (
    blocker_id uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    blocked_id uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (blocker_id, blocked_id),
    CONSTRAINT blocks_not_self CHECK (blocker_id <> blocked_id)
);
-- "Who blocked me": search leaves them out, presence hides them.
CREATE INDEX blocks_blocked_idx ON blocks (blocked_id, blocker_id);

CREATE TABLE notifications (
    id         uuid PRIMARY KEY,
    user_id    uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    type       text        NOT NULL CHECK (type ~ '^[a-z_]{1,40}$'),
    actor_id   uuid        REFERENCES users (id) ON DELETE SET NULL,
    data       jsonb       NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now(),
    read_at    timestamptz
);
-- Newest first, keyset-paged by (created_at, id); ids are UUIDv7, so time-ordered too.
CREATE INDEX notifications_user_idx ON notifications (user_id, created_at DESC, id DESC);
CREATE INDEX notifications_unread_idx ON notifications (user_id, created_at DESC, id DESC)
    WHERE read_at IS NULL;

-- Uploaded files (gochat_py/postgres/media.py). The bytes live in the media store under
-- their sha256 (gochat_py/blobs/): two uploads of the same bytes share one blob.
CREATE TABLE media (
    id            uuid PRIMARY KEY,
    owner_id      uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    sha256        text        NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    content_type  text        NOT NULL,
    size          bigint      NOT NULL CHECK (size >= 0),
    name          text        NOT NULL CHECK (length(name) BETWEEN 1 AND 255),
    width         integer,
    height        integer,
    has_thumbnail boolean     NOT NULL DEFAULT false,
    created_at    timestamptz NOT NULL DEFAULT now(),
    -- Set while in use (a stored message, an avatar), cleared when the last use goes:
    -- the cleanup deletes unattached media past its grace period.
    attached_at   timestamptz
);
CREATE INDEX media_owner_idx ON media (owner_id);
CREATE INDEX media_sha256_idx ON media (sha256);
-- The cleanup's scan: unattached media, oldest first.
CREATE INDEX media_unattached_idx ON media (created_at) WHERE attached_at IS NULL;

-- Where a media was posted: its conversation's members may read it. Written when the
-- message is sent (before the worker stores it), dropped when the message is deleted.
CREATE TABLE media_posts (
    message_id      uuid PRIMARY KEY,
    media_id        uuid NOT NULL REFERENCES media (id) ON DELETE CASCADE,
    conversation_id uuid NOT NULL REFERENCES conversations (id) ON DELETE CASCADE
);
CREATE INDEX media_posts_media_idx ON media_posts (media_id, conversation_id);

ALTER TABLE users ADD COLUMN avatar_media_id uuid REFERENCES media (id) ON DELETE SET NULL;
ALTER TABLE conversations ADD COLUMN avatar_media_id uuid REFERENCES media (id) ON DELETE SET NULL;
CREATE INDEX users_avatar_idx ON users (avatar_media_id) WHERE avatar_media_id IS NOT NULL;
CREATE INDEX conversations_avatar_idx ON conversations (avatar_media_id)
    WHERE avatar_media_id IS NOT NULL;
