"""The contract's errors as exceptions: one class per error code, each carrying the code,
message, details, HTTP status and correlation id of the response."""

from __future__ import annotations

from typing import Any


class JobsClientError(Exception):
    """Base of everything this package raises."""


class TransportError(JobsClientError):
    """The service could not be reached, or answered with something that is not the contract
    (a gateway's own page, a timeout); retried for idempotent calls only."""

    def __init__(self, message: str, *, url: str | None = None, unreachable: bool = False) -> None:
        super().__init__(message)
        self.url = url  # the base URL that was tried
        self.unreachable = unreachable  # no connection at all (refused, unknown host)


class ApiError(JobsClientError):
    """An error response in the contract's shape."""

    code = "error"

    def __init__(
        self,
        message: str,
        *,
        status: int,
        code: str | None = None,
        details: dict[str, Any] | None = None,
        correlation_id: str | None = None,
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        if code is not None:
            self.code = code
        self.details: dict[str, Any] = details or {}
        self.correlation_id = correlation_id
        self.retry_after_s = retry_after_s

    def __str__(self) -> str:
        suffix = f" (correlation id {self.correlation_id})" if self.correlation_id else ""
        return f"{self.code}: {self.message}{suffix}"


class InvalidRequest(ApiError):
    code = "invalid_request"


class InvalidJson(ApiError):
    code = "invalid_json"


class Unauthorized(ApiError):
    code = "unauthorized"


class Forbidden(ApiError):
    code = "forbidden"


class NotFound(ApiError):
    code = "not_found"


class Conflict(ApiError):
    """Base of the 409 errors."""

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


class QueuePaused(Conflict):
    code = "queue_paused"


class FifoSharded(Conflict):
    """A fifo queue takes one shard: shards above 1 on a fifo queue, or fifo on a sharded one."""

    code = "fifo_sharded"


class NotRetryable(Conflict):
    code = "not_retryable"


class Duplicate(Conflict):
    """A unique job's type+ref_id is taken by another unfinished job (details.existing_id)."""

    code = "duplicate"

    @property
    def existing_id(self) -> str | None:
        value = self.details.get("existing_id")
        return str(value) if value is not None else None


class BatchConflict(Conflict):
    code = "batch_conflict"

    @property
    def failures(self) -> list[dict[str, Any]]:
        return list(self.details.get("failures") or [])


class PayloadTooLarge(ApiError):
    code = "payload_too_large"


class Throttled(ApiError):
    code = "throttled"


class Unavailable(ApiError):
    code = "unavailable"


class InternalError(ApiError):
    code = "internal_error"


ERRORS_BY_CODE: dict[str, type[ApiError]] = {
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
        QueuePaused,
        FifoSharded,
        NotRetryable,
        Duplicate,
        BatchConflict,
        PayloadTooLarge,
        Throttled,
        Unavailable,
        InternalError,
    )
}
FALLBACK_BY_STATUS: dict[int, type[ApiError]] = {
    400: InvalidRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    413: PayloadTooLarge,
    429: Throttled,
    503: Unavailable,
}


def error_for(status: int, body: Any, *, correlation_id: str | None = None, retry_after_s: float | None = None) -> ApiError:
    """The exception for an error response (its code decides; the status when it has none)."""
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict) and isinstance(error.get("code"), str):
        code = str(error["code"])
        cls = ERRORS_BY_CODE.get(code) or FALLBACK_BY_STATUS.get(status, ApiError)
        return cls(
            str(error.get("message") or code),
            status=status,
            code=code,
            details=error.get("details") if isinstance(error.get("details"), dict) else {},
            correlation_id=correlation_id,
            retry_after_s=retry_after_s,
        )
    cls = FALLBACK_BY_STATUS.get(status, ApiError)
    return cls(f"HTTP {status}", status=status, correlation_id=correlation_id, retry_after_s=retry_after_s)
