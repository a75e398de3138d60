"""Commands of queues as objects: read, list, pause and resume, history; and of recovery:
retry one job, redrive many, purge."""

from __future__ import annotations

from datetime import datetime

from msgspec import Struct

from ..keys import QUEUE_SHARDS_MAX
from ..model import JobState
from ..settings import Limits
from . import Parts
from .jobs import read_cursor, read_limit

REDRIVABLE = (JobState.ERROR.value, JobState.CANCELLED.value)
PURGEABLE = tuple(s.value for s in JobState if s is not JobState.RUNNING)


class ListQueues(Struct, frozen=True):
    limit: int = 20
    cursor: str | None = None
    prefix: str | None = None


def parse_list_queues(parts: Parts, limits: Limits) -> ListQueues:
    r = parts.query_reader(frozenset({"limit", "cursor", "prefix"}), limits)
    command = ListQueues(read_limit(r), read_cursor(r), r.key_name("prefix"))
    r.done()
    return command


class GetQueue(Struct, frozen=True):
    type: str


def parse_get_queue(parts: Parts, limits: Limits) -> GetQueue:
    job_type = parts.queue(limits)
    parts.no_query(limits)
    parts.no_body()
    return GetQueue(job_type)


class PatchQueue(Struct, frozen=True):
    type: str
    paused: bool | None = None
    fifo: bool | None = None
    shards: int | None = None


def parse_patch_queue(parts: Parts, limits: Limits) -> PatchQueue:
    job_type = parts.queue(limits)
    parts.no_query(limits)
    r = parts.body_reader(frozenset({"paused", "fifo", "shards"}), limits)
    values = {name: r.boolean(name) if r.has(name) and r.raw(name) is not None else None for name in ("paused", "fifo")}
    shards = r.integer("shards", minimum=1, maximum=QUEUE_SHARDS_MAX)
    if all(v is None for v in values.values()) and shards is None and not r.problems:
        r.problem("body", "set paused, fifo, shards, or several")
    if values["fifo"] and shards is not None and shards > 1:
        r.problem("shards", "a fifo queue takes one shard")
    r.done()
    return PatchQueue(job_type, values["paused"], values["fifo"], shards)


class QueueHistory(Struct, frozen=True):
    type: str
    from_: datetime | None = None
    to: datetime | None = None


def parse_history(parts: Parts, limits: Limits) -> QueueHistory:
    job_type = parts.queue(limits)
    r = parts.query_reader(frozenset({"from", "to"}), limits)
    command = QueueHistory(job_type, r.time("from"), r.time("to"))
    r.done()
    return command


REDRIVE_MAX = 1000


class Redrive(Struct, frozen=True):
    type: str
    states: tuple[str, ...] = (JobState.ERROR.value,)
    error_code: str | None = None
    limit: int = REDRIVE_MAX


def parse_redrive(parts: Parts, limits: Limits) -> Redrive:
    job_type = parts.queue(limits)
    parts.no_query(limits)
    r = parts.body_reader(frozenset({"states", "error_code", "limit"}), limits)
    states = r.raw("states", [JobState.ERROR.value])
    if (not isinstance(states, list) or not states or not all(isinstance(s, str) and s in REDRIVABLE for s in states)
            or len(set(states)) != len(states)):  # fmt: skip
        r.problem("states", "a non-empty subset of error, cancelled, each once")
        states = []
    command = Redrive(
        job_type,
        tuple(dict.fromkeys(states)),
        r.key_name("error_code"),
        r.integer("limit", minimum=1, maximum=REDRIVE_MAX) or REDRIVE_MAX,
    )
    r.done()
    return command


class Purge(Struct, frozen=True):
    type: str
    state: str | None = None  # all but running when left out


def parse_purge(parts: Parts, limits: Limits) -> Purge:
    job_type = parts.queue(limits)
    r = parts.query_reader(frozenset({"state"}), limits)
    command = Purge(job_type, r.choice("state", PURGEABLE))
    r.done()
    parts.no_body()
    return command
