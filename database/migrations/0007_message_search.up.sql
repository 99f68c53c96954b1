-- Message search (gochat_py/postgres/message_search.py). Words: a tsvector of the content,
-- generated (the two-argument to_tsvector is immutable, the one-argument one is not) and
-- indexed beside conversation_id (btree_gin), so one index scan answers "these words in
-- this conversation". Text without spaces between words (CJK) and parts of words: trigrams
-- of the content, also beside conversation_id. Newest-first walks of one conversation, for
-- terms too common for either index to narrow: a btree on (conversation_id, sent_at, id),
-- the search's order. System messages are never found: they are in none of the three.
-- A deleted message's content is '' (messages_deleted_is_empty): it has no words to find.
CREATE EXTENSION IF NOT EXISTS btree_gin;

ALTER TABLE messages
    ADD COLUMN tsv tsvector GENERATED ALWAYS AS (to_tsvector('simple', content)) STORED;

CREATE INDEX messages_search_words_idx ON messages USING gin (conversation_id, tsv)
    WHERE type <> 'system';
CREATE INDEX messages_search_trgm_idx ON messages USING gin (conversation_id, content gin_trgm_ops)
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
