ALTER TABLE conversation_members DROP COLUMN delivered_seq;
