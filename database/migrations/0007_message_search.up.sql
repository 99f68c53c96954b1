-- Message search (gochat_py/postgres/message_search.py). Words: a tsvector of the content,
-- generated (the two-argument to_tsvector is immutable, the one-argument one is not) and
-- indexed beside conversation_id (btree_gin), so one index scan answers "these words in
-- this conversation". Newest-first walks of one conversation, for terms too common for the
-- index to narrow and for text without spaces between words (CJK, matched by ILIKE): a
-- btree on (conversation_id, sent_at, id), the search's order. No trigram index: it would
-- cost every stored message more than these two together. System messages are never
-- found: they are in neither index.
-- A deleted message's content is '' (messages_deleted_is_empty): it has no words to find.
CREATE EXTENSION IF NOT EXISTS btree_gin;

ALTER TABLE messages
    ADD COLUMN tsv tsvector GENERATED ALWAYS AS (to_tsvector('simple', content)) STORED;

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
