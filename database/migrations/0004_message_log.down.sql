ALTER TABLE messages
    DROP CONSTRAINT messages_deleted_is_empty,
    DROP COLUMN mentions,
    DROP COLUMN reply_to,
    DROP COLUMN system,
    DROP COLUMN changed_seq,
    DROP COLUMN deleted_at,
    DROP COLUMN edited_at;
