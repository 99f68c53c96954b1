"""PostgreSQL storage: users, conversations and their members, messages, migrations."""
