-- People: profiles, friend requests and contacts, blocks, notifications.

ALTER TABLE users
    ADD COLUMN display_name  text    CHECK (display_name IS NULL OR length(display_name) BETWEEN 1 AND 64),
    ADD COLUMN bio           text    CHECK (bio IS NULL OR length(bio) <= 500),
    ADD COLUMN dm_policy     text    NOT NULL DEFAULT 'everyone' CHECK (dm_policy IN ('everyone', 'contacts')),
    ADD COLUMN show_presence boolean NOT NULL DEFAULT true,
    -- When the user's last socket closed; Redis knows whether one is open now.
    ADD COLUMN last_seen_at  timestamptz;

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
