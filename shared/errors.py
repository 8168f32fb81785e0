"""One error hierarchy for every service and one renderer for its JSON shape."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """Base of every error a client may see; subclasses pick the HTTP status and code."""

    status_code = 400
    code = "bad_request"

    def __init__(self, message: str, *, details: Any = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details
        if code is not None:
            self.code = code

    def to_body(self) -> dict[str, Any]:
        """The `{"error": {...}}` body every error response uses."""
        return error_body(self.code, self.message, self.details)


class BadRequest(DomainError):
    """The request cannot be understood (e.g. broken JSON)."""


class Unauthorized(DomainError):
    """Missing, malformed, unknown or revoked credentials."""

    status_code = 401
    code = "unauthorized"


class PermissionDenied(DomainError):
    """Authenticated, but not allowed."""

    status_code = 403
    code = "forbidden"


class NotFound(DomainError):
    """No such resource for this caller (another tenant's id looks exactly the same)."""

    status_code = 404
    code = "not_found"


class Conflict(DomainError):
    """The resource's state does not allow the request."""

    status_code = 409
    code = "conflict"


class InvalidTransition(Conflict):
    """A status change the workflow does not allow."""

    code = "invalid_transition"


class Gone(DomainError):
    """The resource existed but has expired."""

    status_code = 410
    code = "gone"


class PayloadTooLarge(DomainError):
    """The body is over the configured limit."""

    status_code = 413
    code = "payload_too_large"


class ValidationFailed(DomainError):
    """Every problem found in the input, each with its path."""

    status_code = 422
    code = "validation_failed"


class RateLimited(DomainError):
    """Too many requests; retry after `retry_after` seconds."""

    status_code = 429
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: int, details: Any = None) -> None:
        super().__init__(message, details=details)
        self.retry_after = retry_after


class Unavailable(DomainError):
    """A dependency (PostgreSQL, Redis, storage) is down."""

    status_code = 503
    code = "unavailable"


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    """Render the one error shape."""
    return {"error": {"code": code, "message": message, "details": details}}
