"""One signed POST of an event to the receiver, bounded in time, and what came of it."""

from __future__ import annotations

import asyncio
import hashlib
import hmac

import httpx

SIGNATURE_HEADER = "X-Gochat-Signature"
EVENT_ID_HEADER = "X-Gochat-Event-Id"


def signature(secret: str, body: bytes) -> str:
    """`sha256=` and the hex HMAC-SHA256 of the exact body, keyed with the shared secret."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class Poster:
    def __init__(self, client: httpx.AsyncClient, url: str, secret: str, timeout: float) -> None:
        self._client = client
        self._url = url
        self._secret = secret
        self._timeout = timeout

    async def post(self, event_id: str, body: bytes) -> str | None:
        """None when the receiver took the event (any 2xx); else what went wrong, for the
        log and the dead letter (never the secret, the URL or the body)."""
        headers = {
            "Content-Type": "application/json",
            EVENT_ID_HEADER: event_id,
            SIGNATURE_HEADER: signature(self._secret, body),
        }
        try:
            # httpx's timeouts bound each phase; this bounds the whole attempt, which the
            # retry schedule relies on (deliver.py: an event in flight is never claimed).
            async with asyncio.timeout(self._timeout):
                # Streamed and closed unread: only the status matters, whatever the body.
                request = self._client.stream("POST", self._url, content=body, headers=headers)
                async with request as response:
                    status = response.status_code
        except TimeoutError:
            return f"no answer within {self._timeout:g}s"
        except httpx.HTTPError as exc:
            return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        return None if 200 <= status < 300 else f"HTTP {status}"
