"""The exceptions that mean a backing service is unreachable: an outage to wait out and
retry, never a bug. The HTTP door answers them with 503, the WebSocket door with an
`unavailable` error frame (or 1013 at the handshake), the worker backs off (its
`worker/persist.py` classify reads POSTGRES_DOWN too: one list, so the two cannot drift)."""

from __future__ import annotations

import asyncpg
from redis import exceptions as redis_errors

# Redis unreachable, restarting (LOADING) or timing out; OSError covers the raw socket.
REDIS_DOWN = (redis_errors.ConnectionError, redis_errors.TimeoutError, OSError)
POSTGRES_DOWN = (
    asyncpg.PostgresConnectionError,  # SQLSTATE class 08
    asyncpg.InsufficientResourcesError,  # class 53: too many connections, disk full
    # Class 57: shutting down, starting up (CannotConnectNowError), statement cancelled.
    asyncpg.OperatorInterventionError,
    asyncpg.InterfaceError,
    # A connection PostgreSQL dropped mid-operation can leave asyncpg's protocol state
    # confused ("another operation is in progress"): seen when it shuts down under traffic.
    asyncpg.InternalClientError,
    OSError,  # refused, reset, unreachable; TimeoutError is one too
)
DEPENDENCY_DOWN = (*REDIS_DOWN, *POSTGRES_DOWN)
