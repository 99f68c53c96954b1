ALTER TABLE messages DROP COLUMN media;
DELETE FROM messages WHERE type IN ('image', 'file');
ALTER TABLE messages DROP CONSTRAINT messages_type_check;
ALTER TABLE messages ADD CONSTRAINT messages_type_check CHECK (type IN ('text', 'system'));
ALTER TABLE conversations DROP COLUMN avatar_media_id;
ALTER TABLE users DROP COLUMN avatar_media_id;
DROP TABLE media_posts;
DROP TABLE media;
