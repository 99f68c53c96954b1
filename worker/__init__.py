"""The persist worker: drains the message streams with a consumer group into PostgreSQL."""
