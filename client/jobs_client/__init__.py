"""The jobs service's Python client, worker runtime and command line."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("jobs-client")
except PackageNotFoundError:  # imported from a source tree, not installed
    __version__ = "0+unknown"

from .client import JobsClient, RetryPolicy
from .errors import (
    AlreadyFinished,
    ApiError,
    BatchConflict,
    Conflict,
    DeadlineExceeded,
    DependencyFailed,
    DependencyPending,
    Duplicate,
    Forbidden,
    InvalidJson,
    InvalidRequest,
    JobsClientError,
    LeaseHeld,
    LeaseLost,
    NotFinished,
    NotFound,
    NotRetryable,
    NotRunning,
    PayloadTooLarge,
    QueuePaused,
    RetriesExhausted,
    Throttled,
    TransportError,
    Unauthorized,
    Unavailable,
    VersionMismatch,
)
from .live import SubscriptionRefused, subscribe
from .models import BatchResult, Job, JobError, JobState, Message, Page, Progress, Speed, TaskUpdate
from .tokens import mint_token
from .worker import JobContext, JobStopped, NonRetryableError, Worker

__all__ = [
    "AlreadyFinished",
    "ApiError",
    "BatchConflict",
    "BatchResult",
    "Conflict",
    "DeadlineExceeded",
    "DependencyFailed",
    "DependencyPending",
    "Duplicate",
    "Forbidden",
    "InvalidJson",
    "InvalidRequest",
    "Job",
    "JobContext",
    "JobError",
    "JobState",
    "JobStopped",
    "JobsClient",
    "JobsClientError",
    "LeaseHeld",
    "LeaseLost",
    "Message",
    "NonRetryableError",
    "NotFinished",
    "NotFound",
    "NotRetryable",
    "NotRunning",
    "Page",
    "PayloadTooLarge",
    "Progress",
    "QueuePaused",
    "RetriesExhausted",
    "RetryPolicy",
    "Speed",
    "SubscriptionRefused",
    "TaskUpdate",
    "Throttled",
    "TransportError",
    "Unauthorized",
    "Unavailable",
    "VersionMismatch",
    "Worker",
    "mint_token",
    "subscribe",
]
