"""Settings: every limit, every tunable, and the only module that reads the environment.

The template gives each function its environment; `from_env` reads it once per container,
when the wiring builds what the function needs (never at import).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from msgspec import Struct, field

DAY_MS = 24 * 3600 * 1000


class Limits(Struct, frozen=True):
    """Every size and range a request is held to, in one place: a batch operation obeys
    exactly the limits of the single-job route it mirrors, since both parse with these.

    A DynamoDB item holds at most 400 KB: params and result together stay well below it.
    Key attributes (type, ref_id, owner) are bounded in UTF-8 bytes too: a GSI key holds at
    most 1,024 (sort) or 2,048 (partition) bytes.
    """

    params_bytes: int = 128 * 1024
    result_bytes: int = 128 * 1024
    error_message_chars: int = 4096
    message_chars: int = 4096
    status_chars: int = 1024
    title_chars: int = 512
    name_chars: int = 256  # type, ref_id, owner, worker, error codes
    name_bytes: int = 512  # the same, in UTF-8 bytes (index keys)
    token_chars: int = 64  # lease tokens
    speeds: int = 16
    depends: int = 25
    batch_ops: int = 100
    ids_per_get: int = 100
    timeout_ms_max: int = 12 * 3600 * 1000
    delay_ms_max: int = 365 * DAY_MS
    wait_ms_max: int = 20_000
    list_limit_max: int = 100
    list_limit_default: int = 20
    max_retries_max: int = 1000
    # Any JSON a caller sends: nesting depth and the digits of one number. JSON numbers past
    # these are refused at the edge (Python's int() has its own limit at 4,300 digits).
    json_depth: int = 64
    number_digits: int = 40
    # Numbers stored as DynamoDB numbers (versions, counts): DynamoDB holds 38 digits.
    version_max: int = 2**53
    body_bytes: int = 4 * 1024 * 1024  # a transaction carries at most 4 MB
    cursor_chars: int = 2048
    idempotency_key_chars: int = 256
    correlation_id_chars: int = 128


class Settings(Struct, frozen=True):
    """The engine's settings (JobsTable and everything that acts on jobs)."""

    table_name: str
    retention_ms: int = 7 * DAY_MS
    default_max_retries: int | None = 5
    message_retention_ms: int = 30 * DAY_MS
    idempotency_ttl_ms: int = DAY_MS
    # Claims pick at random among this many of the oldest visible jobs, so concurrent
    # workers rarely collide on the head of the queue.
    claim_candidates: int = 16
    # A claim gives up ("none") after this many index pages whose candidates all went to
    # other workers or were passed by (its own max_retries). Pages of jobs it quarantines do
    # not count: it reads on past them, up to claim_retire_budget quarantined jobs in one
    # call, so a poisoned head never makes a claim answer "none" while claimable jobs wait.
    claim_max_pages: int = 8
    claim_retire_budget: int = 1000
    backoff_base_ms: int = 1000
    backoff_cap_ms: int = 15 * 60 * 1000
    # How long a job whose dependencies are unfinished is put back before it is looked at again.
    dependency_poll_ms: int = 5000
    # Long polls re-query at this interval while the queue is empty.
    poll_interval_ms: int = 500
    # Seals list cursors (HMAC): from JOBS_CURSOR_KEY, else derived from the SSM parameter
    # named by JOBS_CURSOR_SECRET_PARAMETER (the wiring reads it).
    cursor_key: bytes = b""
    cursor_secret_parameter: str | None = None
    dynamodb_endpoint: str | None = None
    limits: Limits = field(default_factory=Limits)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        source = os.environ if env is None else env
        table = source.get("JOBS_TABLE_NAME")
        if not table:
            raise RuntimeError("JOBS_TABLE_NAME is not set")
        retries = source.get("JOBS_DEFAULT_MAX_RETRIES", "5")
        return cls(
            table_name=table,
            retention_ms=int(float(source.get("JOBS_RETENTION_DAYS", "7")) * DAY_MS),
            default_max_retries=int(retries) if retries not in ("", "none") else None,
            cursor_key=source.get("JOBS_CURSOR_KEY", "").encode(),
            cursor_secret_parameter=source.get("JOBS_CURSOR_SECRET_PARAMETER") or None,
            dynamodb_endpoint=source.get("JOBS_DYNAMODB_ENDPOINT") or None,
        )


# API Gateway's limits for one WebSocket frame and one @connections post.
MAX_MESSAGE_BYTES = 128 * 1024


class LiveSettings(Struct, frozen=True):
    """The WebSocket side: connections, subscriptions, the fan-out."""

    connections_table: str
    websocket_endpoint: str | None = None
    max_subscriptions: int = 50
    max_message_bytes: int = MAX_MESSAGE_BYTES
    # Posts of one change run in parallel on this many threads.
    post_parallelism: int = 32

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> LiveSettings:
        source = os.environ if env is None else env
        table = source.get("JOBS_CONNECTIONS_TABLE_NAME")
        if not table:
            raise RuntimeError("JOBS_CONNECTIONS_TABLE_NAME is not set")
        return cls(connections_table=table, websocket_endpoint=source.get("JOBS_WEBSOCKET_ENDPOINT") or None)


class AuthSettings(Struct, frozen=True):
    """How the authorizer checks tokens: a shared secret (or the SSM parameter holding it),
    and optionally an identity provider's JWKS."""

    secret: str | None = None
    secret_parameter: str | None = None
    jwks_url: str | None = None
    issuer: str | None = None
    audience: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> AuthSettings:
        source = os.environ if env is None else env
        return cls(
            secret=source.get("JOBS_JWT_SECRET") or None,
            secret_parameter=source.get("JOBS_JWT_SECRET_PARAMETER") or None,
            jwks_url=source.get("JOBS_JWKS_URL") or None,
            issuer=source.get("JOBS_JWT_ISSUER") or None,
            audience=source.get("JOBS_JWT_AUDIENCE") or None,
        )


class ObservabilitySettings(Struct, frozen=True):
    """Logs, metrics and traces: read by observability.py when it first makes them."""

    service_name: str = "jobs"
    metrics_namespace: str = "Jobs"
    # Creating a Tracer costs ~350 ms even disabled: only where X-Ray is really there.
    tracing: bool = False

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ObservabilitySettings:
        source = os.environ if env is None else env
        return cls(
            service_name=source.get("POWERTOOLS_SERVICE_NAME", "jobs"),
            metrics_namespace=source.get("POWERTOOLS_METRICS_NAMESPACE", "Jobs"),
            tracing=bool(source.get("AWS_XRAY_DAEMON_ADDRESS")) and source.get("POWERTOOLS_TRACE_DISABLED", "").lower() != "true",
        )
