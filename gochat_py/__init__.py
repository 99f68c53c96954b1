"""gochat-py: a real-time chat backend."""
