"""The job as the contract describes it, and its storage form.

A job is stored as one DynamoDB item. Free-form JSON (params, result, progress, speeds,
error) is stored as JSON text so that floats and deep nesting survive unchanged and no
condition ever looks inside it; everything a condition or an index reads is a plain
attribute.
"""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Any

from msgspec import Struct, field

JsonValue = Any

# Priorities, most urgent first. A job written without one (before 1.1) is of the default.
PRIORITIES = (1, 2, 3, 4)
DEFAULT_PRIORITY = 2


class JobState(StrEnum):
    IDLE = "idle"
    PENDING = "pending"
    RUNNING = "running"
    FINISHED = "finished"
    ERROR = "error"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL_STATES


TERMINAL_STATES = frozenset({JobState.FINISHED, JobState.ERROR, JobState.CANCELLED})


class Role(StrEnum):
    SERVICE = "service"
    USER = "user"
    ADMIN = "admin"


class Principal(Struct, frozen=True):
    """Who calls: the JWT's ``sub`` and ``role``; a scoped service also its ``queues``."""

    sub: str
    role: Role
    # A service token's `queues` claim: names, each exact or a prefix ending in "*". None:
    # every queue. Admins and users are never scoped.
    queues: tuple[str, ...] | None = None

    def reaches(self, job_type: str) -> bool:
        """Whether the caller may see and touch jobs, queues and schedules of this type."""
        if self.queues is None or self.role is not Role.SERVICE:
            return True
        return any(job_type.startswith(p[:-1]) if p.endswith("*") else job_type == p for p in self.queues)

    def sees(self, job: Job) -> bool:
        """A user sees only own jobs; a scoped service only jobs of its queues."""
        return self.may_see(job.owner) and self.reaches(job.type)

    @property
    def scoped(self) -> bool:
        return self.queues is not None and self.role is Role.SERVICE

    @property
    def is_user(self) -> bool:
        return self.role is Role.USER

    def may_see(self, owner: str | None) -> bool:
        """Users see only their own jobs; services and admins see all."""
        return not self.is_user or owner == self.sub


# Attribute names of the item that hold JSON text.
JSON_ATTRIBUTES = ("params", "result", "error", "progress", "speeds")

# Attributes of the item that never reach the wire.
STORAGE_ONLY = frozenset(
    {
        "PK", "SK", "QPK", "QSK", "OPK", "TPK", "RPK", "APK", "CSK",
        "ESK", "lease_token", "expires_at", "unique_key", "msg_count", "last_message", "failed_at", "shard",
    }
)  # fmt: skip


class Job(Struct):
    """The wire view of a job (API.md "The job")."""

    id: str
    type: str
    processor: str
    state: JobState
    attempts: int
    version: int
    created: str
    modified: str
    available_at: str
    ref_id: str | None = None
    owner: str | None = None
    title: str | None = None
    params: JsonValue = None
    result: JsonValue = None
    error: dict[str, str] | None = None
    status: str | None = None
    progress: dict[str, Any] | None = None
    speeds: list[dict[str, Any]] = field(default_factory=list)
    max_retries: int | None = None
    cancel_requested: bool = False
    lease_owner: str | None = None
    locked_until: str | None = None
    execute_until: str | None = None
    started: str | None = None
    completed: str | None = None
    depends_on: list[str] = field(default_factory=list)
    priority: int = DEFAULT_PRIORITY
    schedule: str | None = None
    # Returned only to the worker that was granted the lease (start, claim, extend).
    lease_token: str | None = None
    # Storage facts the engine needs but the wire does not show.
    expires_at: int | None = None
    unique_key: str | None = None
    last_message: str | None = None
    msg_count: int = 0

    @property
    def complete(self) -> bool:
        return self.state.terminal

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> Job:
        values: dict[str, Any] = {}
        for name in cls.__struct_fields__:
            if name in item:
                values[name] = item[name]
        for name in JSON_ATTRIBUTES:
            if name in values and isinstance(values[name], str):
                values[name] = json.loads(values[name])
        values["state"] = JobState(item["state"])
        for name in ("attempts", "version", "max_retries", "expires_at", "msg_count", "priority"):
            if values.get(name) is not None:
                values[name] = int(values[name])
        values["depends_on"] = list(values.get("depends_on") or [])
        values["speeds"] = list(values.get("speeds") or [])
        return cls(**values)

    def to_wire(self, *, with_lease_token: bool = False) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": self.id,
            "type": self.type,
            "ref_id": self.ref_id,
            "owner": self.owner,
            "processor": self.processor,
            "title": self.title,
            "params": self.params,
            "result": self.result,
            "error": self.error,
            "state": self.state.value,
            "status": self.status,
            "progress": self.progress,
            "speeds": self.speeds,
            "complete": self.complete,
            "attempts": self.attempts,
            "max_retries": self.max_retries,
            "cancel_requested": self.cancel_requested,
            "lease_owner": self.lease_owner,
            "locked_until": self.locked_until,
            "available_at": self.available_at,
            "execute_until": self.execute_until,
            "created": self.created,
            "modified": self.modified,
            "started": self.started,
            "completed": self.completed,
            "depends_on": self.depends_on,
            "priority": self.priority,
            "schedule": self.schedule,
            "version": self.version,
        }
        if with_lease_token:
            body["lease_token"] = self.lease_token
        return body
