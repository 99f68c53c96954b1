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

-- Image and file messages: the media as the message showed it.
ALTER TABLE messages DROP CONSTRAINT messages_type_check;
ALTER TABLE messages ADD CONSTRAINT messages_type_check
    CHECK (type IN ('text', 'system', 'image', 'file'));
ALTER TABLE messages ADD COLUMN media jsonb;
