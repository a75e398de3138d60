"""Typed views of what the service sends: jobs, queues, schedules, pages, messages, live updates."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class JobState(StrEnum):
    IDLE = "idle"
    PENDING = "pending"
    RUNNING = "running"
    FINISHED = "finished"
    ERROR = "error"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in (JobState.FINISHED, JobState.ERROR, JobState.CANCELLED)


def parse_time(value: Any) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def format_time(moment: datetime) -> str:
    """The contract's time format: ISO-8601 UTC with milliseconds (naive means UTC)."""
    utc = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


@dataclass(frozen=True)
class Progress:
    title: str | None
    current: float | None
    maximum: float | None

    @classmethod
    def from_wire(cls, data: Any) -> Progress | None:
        if not isinstance(data, dict):
            return None
        return cls(data.get("title"), data.get("current"), data.get("maximum"))

    def to_wire(self) -> dict[str, Any]:
        return {"title": self.title, "current": self.current, "maximum": self.maximum}

    @property
    def fraction(self) -> float | None:
        if self.current is None or not self.maximum:
            return None
        return min(1.0, float(self.current) / float(self.maximum))


@dataclass(frozen=True)
class Speed:
    title: str
    speed: float
    unit: str | None = None
    as_text: str | None = None

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> Speed:
        return cls(str(data.get("title") or ""), data.get("speed") or 0, data.get("unit"), data.get("as_text"))

    def to_wire(self) -> dict[str, Any]:
        return {"title": self.title, "speed": self.speed, "unit": self.unit, "as_text": self.as_text}


@dataclass(frozen=True)
class JobError:
    code: str
    message: str


@dataclass(frozen=True)
class Job:
    """A job as the contract describes it (API.md "The job")."""

    id: str
    type: str
    state: JobState
    version: int
    processor: str
    ref_id: str | None = None
    owner: str | None = None
    title: str | None = None
    params: Any = None
    result: Any = None
    error: JobError | None = None
    status: str | None = None
    progress: Progress | None = None
    speeds: list[Speed] = field(default_factory=list)
    complete: bool = False
    attempts: int = 0
    max_retries: int | None = None
    priority: int = 2
    schedule: str | None = None
    cancel_requested: bool = False
    lease_owner: str | None = None
    locked_until: datetime | None = None
    available_at: datetime | None = None
    execute_until: datetime | None = None
    created: datetime | None = None
    modified: datetime | None = None
    started: datetime | None = None
    completed: datetime | None = None
    depends_on: list[str] = field(default_factory=list)
    # Only for the worker that was granted the lease (start, claim, extend).
    lease_token: str | None = None

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> Job:
        error = data.get("error")
        return cls(
            id=str(data["id"]),
            type=str(data["type"]),
            state=JobState(data["state"]),
            version=int(data["version"]),
            processor=str(data.get("processor") or ""),
            ref_id=data.get("ref_id"),
            owner=data.get("owner"),
            title=data.get("title"),
            params=data.get("params"),
            result=data.get("result"),
            error=JobError(str(error.get("code")), str(error.get("message") or "")) if isinstance(error, dict) else None,
            status=data.get("status"),
            progress=Progress.from_wire(data.get("progress")),
            speeds=[Speed.from_wire(s) for s in data.get("speeds") or []],
            complete=bool(data.get("complete")),
            attempts=int(data.get("attempts") or 0),
            max_retries=data.get("max_retries"),
            # Older services send neither: their jobs all run at the default priority.
            priority=int(data["priority"]) if data.get("priority") is not None else 2,
            schedule=data.get("schedule"),
            cancel_requested=bool(data.get("cancel_requested")),
            lease_owner=data.get("lease_owner"),
            locked_until=parse_time(data.get("locked_until")),
            available_at=parse_time(data.get("available_at")),
            execute_until=parse_time(data.get("execute_until")),
            created=parse_time(data.get("created")),
            modified=parse_time(data.get("modified")),
            started=parse_time(data.get("started")),
            completed=parse_time(data.get("completed")),
            depends_on=list(data.get("depends_on") or []),
            lease_token=data.get("lease_token"),
        )


@dataclass(frozen=True)
class Message:
    message: str
    at: datetime | None

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> Message:
        return cls(str(data.get("message") or ""), parse_time(data.get("at")))


@dataclass(frozen=True)
class Page(Generic[T]):
    data: list[T]
    next_cursor: str | None


@dataclass(frozen=True)
class BatchResult:
    created: list[Job]
    updated: list[Job]
    deleted: list[str]


@dataclass(frozen=True)
class QueueCounts:
    """How many jobs of a queue are in each state."""

    idle: int = 0
    pending: int = 0
    running: int = 0
    finished: int = 0
    error: int = 0
    cancelled: int = 0

    @classmethod
    def from_wire(cls, data: Any) -> QueueCounts:
        given = data if isinstance(data, dict) else {}
        return cls(**{state.value: int(given.get(state.value) or 0) for state in JobState})

    @property
    def total(self) -> int:
        return self.idle + self.pending + self.running + self.finished + self.error + self.cancelled


@dataclass(frozen=True)
class Queue:
    """A queue (a job type) with its counts, lag and settings."""

    type: str
    paused: bool = False
    fifo: bool = False
    shards: int = 1  # partitions its new jobs are spread over
    counts: QueueCounts = field(default_factory=QueueCounts)
    oldest_pending_at: datetime | None = None
    modified: datetime | None = None

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> Queue:
        return cls(
            type=str(data["type"]),
            paused=bool(data.get("paused")),
            fifo=bool(data.get("fifo")),
            # Older services send none: their queues all have one shard.
            shards=int(data["shards"]) if data.get("shards") is not None else 1,
            counts=QueueCounts.from_wire(data.get("counts")),
            oldest_pending_at=parse_time(data.get("oldest_pending_at")),
            modified=parse_time(data.get("modified")),
        )

    def lag(self, now: datetime | None = None) -> timedelta | None:
        """How long the oldest pending job has waited (None when nothing is pending)."""
        if self.oldest_pending_at is None:
            return None
        waited = (now or datetime.now(UTC)) - self.oldest_pending_at
        return max(waited, timedelta(0))  # clocks disagree by a little


@dataclass(frozen=True)
class Schedule:
    """A recurring job: one job of `job` (a create body, kept as the service sent it) at each
    slot of its cadence, `cron` or `every_ms` (exactly one is set), read in `timezone`."""

    name: str
    cron: str | None = None
    every_ms: int | None = None
    timezone: str = "UTC"
    job: dict[str, Any] = field(default_factory=dict)
    paused: bool = False
    next_run_at: datetime | None = None  # None while paused
    last_run_at: datetime | None = None
    last_job_id: str | None = None
    processor: str = ""
    created: datetime | None = None
    modified: datetime | None = None
    version: int = 0

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> Schedule:
        every_ms = data.get("every_ms")
        job = data.get("job")
        return cls(
            name=str(data["name"]),
            cron=data.get("cron"),
            every_ms=int(every_ms) if every_ms is not None else None,
            timezone=str(data.get("timezone") or "UTC"),
            job=dict(job) if isinstance(job, dict) else {},
            paused=bool(data.get("paused")),
            next_run_at=parse_time(data.get("next_run_at")),
            last_run_at=parse_time(data.get("last_run_at")),
            last_job_id=data.get("last_job_id"),
            processor=str(data.get("processor") or ""),
            created=parse_time(data.get("created")),
            modified=parse_time(data.get("modified")),
            version=int(data.get("version") or 0),
        )


@dataclass(frozen=True)
class HistoryMinute:
    """What happened in a queue during one minute."""

    minute: datetime
    created: int = 0
    started: int = 0
    finished: int = 0
    failed: int = 0
    retried: int = 0

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> HistoryMinute:
        minute = parse_time(data["minute"])
        if minute is None:
            raise ValueError("a history entry without its minute")
        return cls(
            minute=minute,
            created=int(data.get("created") or 0),
            started=int(data.get("started") or 0),
            finished=int(data.get("finished") or 0),
            failed=int(data.get("failed") or 0),
            retried=int(data.get("retried") or 0),
        )


@dataclass(frozen=True)
class Redrive:
    """The answer of one redrive call, or the running totals of several."""

    retried: int = 0
    skipped: int = 0
    more: bool = False

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> Redrive:
        return cls(int(data.get("retried") or 0), int(data.get("skipped") or 0), bool(data.get("more")))

    def __add__(self, other: Redrive) -> Redrive:
        return Redrive(self.retried + other.retried, self.skipped + other.skipped, other.more)


@dataclass(frozen=True)
class TaskUpdate:
    """One live update of a job (a `task_update`, or a `task_removed` with `removed` set)."""

    job_id: str
    version: int
    state: JobState | None = None
    new_title: str | None = None
    new_status: str | None = None
    progress: Progress | None = None
    speeds: list[Speed] = field(default_factory=list)
    message_to_append: str | None = None
    complete: bool = False
    modified: datetime | None = None
    removed: str | None = None  # "expired" | "deleted" for a task_removed
    truncated: bool = False
    # True when it was made from the job read over HTTP after a reconnect (a resync).
    resync: bool = False

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> TaskUpdate:
        if data.get("type") == "task_removed":
            return cls(str(data["job_id"]), int(data["version"]), removed=str(data.get("reason") or "deleted"), complete=True)
        return cls(
            job_id=str(data["job_id"]),
            version=int(data["version"]),
            state=JobState(data["state"]) if data.get("state") else None,
            new_title=data.get("new_title"),
            new_status=data.get("new_status"),
            progress=Progress.from_wire(data.get("progress")),
            speeds=[Speed.from_wire(s) for s in data.get("speeds") or []],
            message_to_append=data.get("message_to_append"),
            complete=bool(data.get("complete")),
            modified=parse_time(data.get("modified")),
            truncated=bool(data.get("truncated")),
        )

    @classmethod
    def from_job(cls, job: Job) -> TaskUpdate:
        return cls(
            job_id=job.id,
            version=job.version,
            state=job.state,
            new_title=job.title,
            new_status=job.status,
            progress=job.progress,
            speeds=job.speeds,
            complete=job.complete,
            modified=job.modified,
            resync=True,
        )
