"""Keys of the items in the jobs table, and the index attributes a job carries.

| item            | PK                     | SK            |
|-----------------|------------------------|---------------|
| job             | JOB#<id>               | JOB           |
| message         | JOB#<id>               | MSG#<at>      |
| unique guard    | UNIQ#<type>#<ref_id>   | UNIQ          |
| idempotency key | IDEM#<n>:<principal>#<key> | IDEM      |
| queue           | QUEUES                 | <type>        |
| schedule        | SCHEDULES              | <name>        |
| queue history   | H#<type>               | <minute>      |
| redrive/purge run | RUN#<kind>#<hash>    | RUN           |

A job and its messages share a partition key, so the stream keeps their order.
"""

from __future__ import annotations

import hashlib
import json
import zlib
from typing import Any

from .model import DEFAULT_PRIORITY, PRIORITIES, JobState

JOB_SK = "JOB"
HISTORY_PREFIX = "H#"
GUARD_SK = "UNIQ"
MESSAGE_PREFIX = "MSG#"
QUEUES_PK = "QUEUES"
SCHEDULES_PK = "SCHEDULES"

# Index names, as declared in template.yaml.
QUEUE_INDEX = "queue-level-visible"
OWNER_INDEX = "owner-created"
TYPE_INDEX = "type-created"
REF_INDEX = "ref-created"
ENDED_INDEX = "queue-ended"
ALL_INDEX = "all-created"
SCHEDULE_INDEX = "schedules-due"
# What a claim decides on, from the queue index alone (its projection holds them).
CLAIM_READS = ("id", "state", "attempts", "max_retries", "execute_until", "cancel_requested", "depends_on", "expires_at")
# What a redrive needs of each job it retries, from the queue-ended index alone.
REDRIVE_READS = ("id", "type", "ref_id", "unique_key", "execute_until", "expires_at", "completed")
# The attributes of each index's key, with the table's: what a Query page ends at.
INDEX_KEYS: dict[str | None, tuple[str, ...]] = {
    None: ("PK", "SK"),
    QUEUE_INDEX: ("PK", "SK", "QPK", "QSK"),
    OWNER_INDEX: ("PK", "SK", "OPK", "CSK"),
    TYPE_INDEX: ("PK", "SK", "TPK", "CSK"),
    REF_INDEX: ("PK", "SK", "RPK", "CSK"),
    ALL_INDEX: ("PK", "SK", "APK", "CSK"),
    ENDED_INDEX: ("PK", "SK", "TPK", "ESK"),
    SCHEDULE_INDEX: ("PK", "SK", "next_run_at"),
}
# all-created is spread over this many partitions: every job created or deleted lands in that
# index, and one index partition takes about 1,000 writes/s (docs/reliability.md). A listing with no
# owner or type filter reads them all and merges.
ALL_SHARDS = 8
# A queue's jobs may be spread over up to this many partitions of each index keyed by the
# queue (a queue setting, 1 by default; docs/reliability.md "Scale on paper"): 64,000 index
# writes per second, far past what one queue of this service needs.
QUEUE_SHARDS_MAX = 64

# Sorts after every id character, so "<time>#~" bounds all keys of that millisecond.
KEY_HIGH = "~"

INDEX_ATTRIBUTES = ("QPK", "QSK", "OPK", "TPK", "RPK", "APK", "CSK", "ESK")


def job_key(job_id: str) -> dict[str, str]:
    return {"PK": f"JOB#{job_id}", "SK": JOB_SK}


def job_id_of(partition_key: str) -> str:
    """The id in a job's PK (what an index that projects only keys gives of it)."""
    return partition_key.removeprefix("JOB#")


def is_job_key(key: dict[str, Any]) -> bool:
    """Whether a key (plain, or as a stream record gives it) is a job's: a queue or schedule
    may be named "JOB" too, so the partition decides, not the sort key alone."""
    pk, sk = key.get("PK"), key.get("SK")
    pk = pk.get("S") if isinstance(pk, dict) else pk
    sk = sk.get("S") if isinstance(sk, dict) else sk
    return sk == JOB_SK and isinstance(pk, str) and pk.startswith("JOB#")


def schedule_key(name: str) -> dict[str, str]:
    return {"PK": SCHEDULES_PK, "SK": name}


def message_key(job_id: str, at: str) -> dict[str, str]:
    return {"PK": f"JOB#{job_id}", "SK": f"{MESSAGE_PREFIX}{at}"}


def guard_key(job_type: str, ref_id: str) -> dict[str, str]:
    # A type holds no "#": the first "#" after the prefix ends it, whatever ref_id holds.
    return {"PK": f"UNIQ#{job_type}#{ref_id}", "SK": GUARD_SK}


def idempotency_key(principal: str, key: str) -> dict[str, str]:
    """Scoped to its principal without ambiguity: the principal's length comes first, so
    ("svc", "x#y") and ("svc#x", "y") are different records."""
    return {"PK": f"IDEM#{len(principal)}:{principal}#{key}", "SK": "IDEM"}


def queue_name_key(job_type: str) -> dict[str, str]:
    return {"PK": QUEUES_PK, "SK": job_type}


def history_pk(job_type: str) -> str:
    return f"{HISTORY_PREFIX}{job_type}"


def history_key(job_type: str, minute: str) -> dict[str, str]:
    """A queue's counts of one minute (created, started, finished, failed, retried)."""
    return {"PK": history_pk(job_type), "SK": minute}


def run_key(kind: str, scope: str) -> dict[str, str]:
    """Where a redrive or purge of many calls has got to (engine/recovery.py)."""
    return {"PK": f"RUN#{kind}#{hashlib.sha256(scope.encode()).hexdigest()[:32]}", "SK": "RUN"}


def _code(text: str) -> str:
    return text.replace("%", "%25").replace("#", "%23")


def ended_prefix(state: str, error_code: str | None = None) -> str:
    """The start of the queue-ended sort key of jobs in a state (and with an error code)."""
    return f"{state}#" if error_code is None else f"{state}#{_code(error_code)}#"


def ended_key(state: str, error_code: str | None, completed: str, job_id: str) -> str:
    """Sort key of the queue-ended index: a job that ended in error or was cancelled, by its
    state, error code and time; redrive reads exactly the jobs it would retry."""
    return f"{state}#{_code(error_code or '-')}#{completed}#{job_id}"


def all_partition(job_id: str) -> str:
    return f"ALL#{zlib.crc32(job_id.encode()) % ALL_SHARDS}"


def all_partitions() -> list[str]:
    return [f"ALL#{shard}" for shard in range(ALL_SHARDS)]


def owner_partition(owner: str) -> str:
    return f"O#{owner}"


def shard_of(job_id: str, shards: int) -> int:
    """The shard of a queue a new job goes to: spread evenly, and the same for a given id."""
    return zlib.crc32(job_id.encode()) % shards if shards > 1 else 0


def shard_in(item: dict[str, Any]) -> int:
    """A job item's shard: written at create and kept for its life (absent: shard 0)."""
    try:
        shard = int(item.get("shard", 0))
    except (TypeError, ValueError, ArithmeticError):
        return 0
    return shard if 0 <= shard < QUEUE_SHARDS_MAX else 0


def _sharded(partition: str, shard: int) -> str:
    # Shard 0 keeps the key of an unsharded queue: sharding a queue needs no migration.
    return f"{partition}#{shard}" if shard else partition


def type_partition(job_type: str, shard: int = 0) -> str:
    """Partition of the type-created and queue-ended indexes (a type holds no "#")."""
    return _sharded(f"T#{job_type}", shard)


def type_partitions(job_type: str, span: int) -> list[str]:
    return [type_partition(job_type, shard) for shard in range(max(1, span))]


def queue_partition(job_type: str, priority: int, shard: int = 0) -> str:
    """Partition of the queue index: one per queue, priority level and shard, so a claim reads
    the most urgent level with work first, and each level (each shard) oldest first."""
    return _sharded(f"Q#{job_type}#{priority}", shard)


def shard_of_partition(partition: str) -> int:
    """The shard a partition key of type_partition or queue_partition names."""
    parts = partition.split("#")
    last = parts[-1] if len(parts) in (3, 4) and parts[0] in ("T", "Q") else ""
    sharded = (parts[0] == "T" and len(parts) == 3) or (parts[0] == "Q" and len(parts) == 4)
    return int(last) if sharded and last.isdigit() and int(last) < QUEUE_SHARDS_MAX else 0


def priority_of(item: dict[str, Any]) -> int:
    """A job item's priority level; the default for one written without (or by hand)."""
    try:
        level = int(item.get("priority", DEFAULT_PRIORITY))
    except (TypeError, ValueError, ArithmeticError):
        return DEFAULT_PRIORITY
    return level if level in PRIORITIES else DEFAULT_PRIORITY


def ref_partition(job_type: str, ref_id: str) -> str:
    return f"R#{job_type}#{ref_id}"


def visible_key(at: str, job_id: str) -> str:
    """Sort key of the queue index: when the job becomes claimable, then its id."""
    return f"{at}#{job_id}"


def created_key(created: str, job_id: str) -> str:
    return f"{created}#{job_id}"


def index_attributes(job: dict[str, Any]) -> dict[str, Any]:
    """The index attributes a job item must carry in its current state (in its shard).

    The queue index (QPK, QSK) is sparse: pending jobs are visible at ``available_at``, running jobs
    at ``locked_until`` (so an expired lease is claimable again), idle and finished jobs
    are absent.
    """
    state = JobState(job["state"])
    shard = shard_in(job)
    attrs: dict[str, Any] = {
        "TPK": type_partition(job["type"], shard),
        "QPK": queue_partition(job["type"], priority_of(job), shard),
        "APK": all_partition(job["id"]),
        "CSK": created_key(job["created"], job["id"]),
    }
    if state is JobState.PENDING:
        attrs["QSK"] = visible_key(job["available_at"], job["id"])
    elif state is JobState.RUNNING:
        attrs["QSK"] = visible_key(job["locked_until"], job["id"])
    if state in (JobState.ERROR, JobState.CANCELLED) and job.get("completed"):
        code = json.loads(job["error"]).get("code") if isinstance(job.get("error"), str) else None
        attrs["ESK"] = ended_key(state.value, code if state is JobState.ERROR else None, job["completed"], job["id"])
    if job.get("owner"):
        attrs["OPK"] = owner_partition(job["owner"])
    if job.get("ref_id"):
        attrs["RPK"] = ref_partition(job["type"], job["ref_id"])
    return attrs
