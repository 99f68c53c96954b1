-- A group's description (PATCH /conversations/{id}): optional, at most 500 characters.
ALTER TABLE conversations
    ADD COLUMN description text CHECK (description IS NULL OR length(description) <= 500);
