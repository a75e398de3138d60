"""Domain errors: one class per error code of the wire contract.

The HTTP layer maps them to responses in one place by their ``status`` and ``code``;
nothing matches on message text.
"""

from __future__ import annotations

from typing import Any


class JobsError(Exception):
    """Base of every error the service reports to a caller."""

    status: int = 500
    code: str = "internal_error"

    def __init__(self, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, Any] = details or {}

    def to_body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, "details": self.details}}


class InvalidRequest(JobsError):
    status = 400
    code = "invalid_request"

    @classmethod
    def fields(cls, problems: dict[str, str], message: str | None = None) -> InvalidRequest:
        """An error naming each bad field: ``details.fields`` maps field to problem."""
        names = ", ".join(sorted(problems))
        return cls(message or f"invalid fields: {names}", {"fields": problems})


class InvalidJson(JobsError):
    status = 400
    code = "invalid_json"


class Unauthorized(JobsError):
    status = 401
    code = "unauthorized"


class Forbidden(JobsError):
    status = 403
    code = "forbidden"


class NotFound(JobsError):
    status = 404
    code = "not_found"


class Conflict(JobsError):
    """Base of the 409 errors."""

    status = 409
    code = "conflict"


class LeaseHeld(Conflict):
    code = "lease_held"


class LeaseLost(Conflict):
    code = "lease_lost"


class NotRunning(Conflict):
    code = "not_running"


class AlreadyFinished(Conflict):
    code = "already_finished"


class NotFinished(Conflict):
    code = "not_finished"


class VersionMismatch(Conflict):
    code = "version_mismatch"


class RetriesExhausted(Conflict):
    code = "retries_exhausted"


class DeadlineExceeded(Conflict):
    code = "deadline_exceeded"


class DependencyFailed(Conflict):
    code = "dependency_failed"


class DependencyPending(Conflict):
    code = "dependency_pending"


class NotRetryable(Conflict):
    code = "not_retryable"


class Duplicate(Conflict):
    code = "duplicate"


class QueuePaused(Conflict):
    code = "queue_paused"


class FifoSharded(Conflict):
    """A fifo queue takes one shard: strict order cannot hold over several."""

    code = "fifo_sharded"


class BatchConflict(Conflict):
    code = "batch_conflict"


class PayloadTooLarge(JobsError):
    status = 413
    code = "payload_too_large"


class Throttled(JobsError):
    status = 429
    code = "throttled"

    def __init__(self, message: str, retry_after_s: int = 1, details: dict[str, Any] | None = None) -> None:
        super().__init__(message, details)
        self.retry_after_s = retry_after_s


class ServiceUnavailable(JobsError):
    """A dependency failed transiently after retries; nothing was written."""

    status = 503
    code = "unavailable"


ERRORS_BY_CODE: dict[str, type[JobsError]] = {
    cls.code: cls
    for cls in (
        InvalidRequest,
        InvalidJson,
        Unauthorized,
        Forbidden,
        NotFound,
        LeaseHeld,
        LeaseLost,
        NotRunning,
        AlreadyFinished,
        NotFinished,
        VersionMismatch,
        RetriesExhausted,
        DeadlineExceeded,
        DependencyFailed,
        DependencyPending,
        NotRetryable,
        Duplicate,
        QueuePaused,
        FifoSharded,
        BatchConflict,
        PayloadTooLarge,
        Throttled,
        ServiceUnavailable,
    )
}
