DROP FUNCTION message_search_share(tsquery);
DROP INDEX messages_search_recent_idx;
DROP INDEX messages_search_words_idx;
ALTER TABLE messages DROP COLUMN tsv;
DROP EXTENSION btree_gin;
