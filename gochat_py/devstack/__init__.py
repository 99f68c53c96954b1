"""The local development stack: PostgreSQL and Redis as child processes, the runner, seeds.

Never imported by the server or the worker."""
