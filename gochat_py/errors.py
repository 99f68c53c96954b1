"""The errors a client can see: each has a stable code and an HTTP status."""

from __future__ import annotations


class ApiError(Exception):
    """An error reported to the client as `{"error": {"code", "message"}}`."""

    status = 400
    code = "bad_request"
    retry_after: float | None = None  # seconds, for errors that pass if the client waits

    def __init__(self, message: str, *, code: str | None = None, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.field = field


class BadRequest(ApiError):
    status = 400
    code = "bad_request"


class Unauthorized(ApiError):
    status = 401
    code = "unauthorized"


class Forbidden(ApiError):
    status = 403
    code = "forbidden"


class NotFound(ApiError):
    status = 404
    code = "not_found"


class Conflict(ApiError):
    status = 409
    code = "conflict"


class PayloadTooLarge(ApiError):
    status = 413
    code = "payload_too_large"


class UnsupportedMediaType(ApiError):
    status = 415
    code = "unsupported_media_type"


class ValidationFailed(ApiError):
    status = 422
    code = "validation_failed"


class InsufficientStorage(ApiError):
    """The caller's storage quota is used up: nothing more is kept until they free some."""

    status = 507
    code = "insufficient_storage"


class MediaQuotaExceeded(InsufficientStorage):
    code = "media_quota_exceeded"

    def __init__(self, used: int, quota: int) -> None:
        super().__init__(
            f"your uploads take {used:,} of your {quota:,} bytes; this one does not fit"
        )


class RateLimited(ApiError):
    status = 429
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Unavailable(ApiError):
    status = 503
    code = "unavailable"


class Backlogged(Unavailable):
    """A conversation's messages wait for the worker past what Redis may hold for them.

    Nothing was sent: the client resends (same client_msg_id) after `retry_after` seconds.
    """

    code = "backlogged"

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after
