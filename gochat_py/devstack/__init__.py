"""The local development stack: PostgreSQL and Redis as child processes, the runner that
supervises them with the API server and the worker, seeds.

Never imported by the server or the worker."""
