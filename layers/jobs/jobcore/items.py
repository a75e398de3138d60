"""Keys of the items in the jobs table, and the index attributes a job carries.

| item            | PK                     | SK            |
|-----------------|------------------------|---------------|
| job             | JOB#<id>               | JOB           |
| message         | JOB#<id>               | MSG#<at>      |
| unique guard    | UNIQ#<type>#<ref_id>   | UNIQ          |
| idempotency key | IDEM#<principal>#<key> | IDEM          |
| queue name      | QUEUES                 | <type>        |

A job and its messages share a partition key, so the stream keeps their order.
"""

from __future__ import annotations

import zlib
from typing import Any

from .model import JobState

JOB_SK = "JOB"
MESSAGE_PREFIX = "MSG#"
QUEUES_PK = "QUEUES"
# all-created is spread over this many partitions: every job write lands in that index, and
# one index partition takes about 1,000 writes/s (docs/reliability.md). A listing with no
# owner or type filter reads them all and merges.
ALL_SHARDS = 8

# Sorts after every id character, so "<time>#~" bounds all keys of that millisecond.
KEY_HIGH = "~"

INDEX_ATTRIBUTES = ("QSK", "OPK", "TPK", "RPK", "APK", "CSK")


def job_key(job_id: str) -> dict[str, str]:
    return {"PK": f"JOB#{job_id}", "SK": JOB_SK}


def message_key(job_id: str, at: str) -> dict[str, str]:
    return {"PK": f"JOB#{job_id}", "SK": f"{MESSAGE_PREFIX}{at}"}


def guard_key(job_type: str, ref_id: str) -> dict[str, str]:
    return {"PK": f"UNIQ#{job_type}#{ref_id}", "SK": "UNIQ"}


def idempotency_key(principal: str, key: str) -> dict[str, str]:
    return {"PK": f"IDEM#{principal}#{key}", "SK": "IDEM"}


def queue_name_key(job_type: str) -> dict[str, str]:
    return {"PK": QUEUES_PK, "SK": job_type}


def all_partition(job_id: str) -> str:
    return f"ALL#{zlib.crc32(job_id.encode()) % ALL_SHARDS}"


def all_partitions() -> list[str]:
    return [f"ALL#{shard}" for shard in range(ALL_SHARDS)]


def owner_partition(owner: str) -> str:
    return f"O#{owner}"


def type_partition(job_type: str) -> str:
    return f"T#{job_type}"


def ref_partition(job_type: str, ref_id: str) -> str:
    return f"R#{job_type}#{ref_id}"


def visible_key(at: str, job_id: str) -> str:
    """Sort key of the queue index: when the job becomes claimable, then its id."""
    return f"{at}#{job_id}"


def created_key(created: str, job_id: str) -> str:
    return f"{created}#{job_id}"


def index_attributes(job: dict[str, Any]) -> dict[str, Any]:
    """The index attributes a job item must carry in its current state.

    The queue index (TPK, QSK) is sparse: pending jobs are visible at ``available_at``, running jobs
    at ``locked_until`` (so an expired lease is claimable again), idle and finished jobs
    are absent.
    """
    state = JobState(job["state"])
    attrs: dict[str, Any] = {
        "TPK": type_partition(job["type"]),
        "APK": all_partition(job["id"]),
        "CSK": created_key(job["created"], job["id"]),
    }
    if state is JobState.PENDING:
        attrs["QSK"] = visible_key(job["available_at"], job["id"])
    elif state is JobState.RUNNING:
        attrs["QSK"] = visible_key(job["locked_until"], job["id"])
    if job.get("owner"):
        attrs["OPK"] = owner_partition(job["owner"])
    if job.get("ref_id"):
        attrs["RPK"] = ref_partition(job["type"], job["ref_id"])
    return attrs
