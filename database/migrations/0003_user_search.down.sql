DROP INDEX users_display_name_trgm_idx;
DROP INDEX users_username_trgm_idx;
DROP INDEX users_display_name_prefix_idx;
DROP INDEX users_username_prefix_idx;
DROP EXTENSION pg_trgm;
