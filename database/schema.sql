-- The whole current schema of gochat-py, equal to applying every file in migrations/.
-- A test applies both and compares them; change a migration and this file together.

CREATE TABLE users (
    id            uuid PRIMARY KEY,
    email         text        NOT NULL CHECK (length(email) BETWEEN 3 AND 254),
    username      text        NOT NULL CHECK (username ~ '^[A-Za-z0-9_]{3,32}$'),
    password_hash text        NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX users_email_key ON users (lower(email));
CREATE UNIQUE INDEX users_username_key ON users (lower(username));

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
    PRIMARY KEY (conversation_id, user_id)
);
CREATE INDEX conversation_members_user_idx ON conversation_members (user_id, conversation_id);

CREATE TABLE messages (
    id              uuid PRIMARY KEY,
    conversation_id uuid        NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    seq             bigint      NOT NULL CHECK (seq > 0),
    sender_id       uuid        NOT NULL REFERENCES users (id),
    type            text        NOT NULL DEFAULT 'text' CHECK (type IN ('text', 'system')),
    content         text        NOT NULL,
    client_msg_id   text        CHECK (client_msg_id IS NULL OR length(client_msg_id) <= 64),
    sent_at         timestamptz NOT NULL,
    persisted_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT messages_conversation_seq_key UNIQUE (conversation_id, seq)
);
