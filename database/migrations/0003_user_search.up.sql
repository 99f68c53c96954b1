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
