-- Delivery status (usecases/delivery_marks.py): beside the read mark, how far a device of
-- the member has received the conversation. A watermark per member, never a row per message.
ALTER TABLE conversation_members ADD COLUMN delivered_seq bigint NOT NULL DEFAULT 0;
