-- One ordered log per conversation: edits and deletes take a seq of their own and are
-- applied to the message they change (worker/persist.py). changed_seq is the seq of the
-- last one applied (NULL: never changed), so an older one arriving late or twice changes
-- nothing; a deleted message keeps no text and is never changed again.
ALTER TABLE messages
    ADD COLUMN edited_at   timestamptz,
    ADD COLUMN deleted_at  timestamptz,
    ADD COLUMN changed_seq bigint CHECK (changed_seq IS NULL OR changed_seq > seq),
    ADD COLUMN system      jsonb,
    ADD COLUMN reply_to    jsonb,
    ADD COLUMN mentions    uuid[],
    ADD CONSTRAINT messages_deleted_is_empty CHECK (deleted_at IS NULL OR content = '');
