"""Settings of the engine, read from the environment the template gives each function."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

DAY_MS = 24 * 3600 * 1000


@dataclass(frozen=True)
class Limits:
    """Sizes enforced before any write (413 payload_too_large); see docs/architecture.md.

    A DynamoDB item holds at most 400 KB: params and result together stay well below it,
    with room for the rest of the job.
    """

    params_bytes: int = 128 * 1024
    result_bytes: int = 128 * 1024
    error_message_chars: int = 4096
    message_chars: int = 4096
    status_chars: int = 1024
    title_chars: int = 512
    name_chars: int = 256  # type, ref_id, owner, worker, codes
    speeds: int = 16
    depends: int = 25
    batch_ops: int = 100
    timeout_ms_max: int = 12 * 3600 * 1000
    delay_ms_max: int = 365 * DAY_MS
    wait_ms_max: int = 20_000
    list_limit_max: int = 100
    list_limit_default: int = 20


@dataclass(frozen=True)
class Settings:
    table_name: str
    retention_ms: int = 7 * DAY_MS
    default_max_retries: int | None = 5
    message_retention_ms: int = 30 * DAY_MS
    idempotency_ttl_ms: int = DAY_MS
    # Claims pick at random among this many of the oldest visible jobs, so concurrent
    # workers rarely collide on the head of the queue.
    claim_candidates: int = 16
    # A claim gives up ("none") after this many index pages whose candidates all went to
    # other workers. Pages of jobs it quarantines do not count: it reads on past them, up
    # to claim_retire_budget quarantined jobs in one call, so a poisoned head never makes a
    # claim answer "none" while claimable jobs wait behind it.
    claim_max_pages: int = 8
    claim_retire_budget: int = 1000
    backoff_base_ms: int = 1000
    backoff_cap_ms: int = 15 * 60 * 1000
    # How long a job whose dependencies are unfinished is put back before it is looked at again.
    dependency_poll_ms: int = 5000
    # Long polls re-query at this interval while the queue is empty.
    poll_interval_ms: int = 500
    limits: Limits = Limits()

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
        )
