"""Commands of a job's progress: status posts, cancel, the message log; and of queues."""

from __future__ import annotations

from typing import Any

from msgspec import Struct

from ..settings import Limits
from . import Parts
from .fields import Reader, finite_number, number_or_none
from .jobs import read_cursor, read_limit

STATUS_FIELDS = frozenset(
    {"new_title", "new_status", "progress", "speeds", "message_to_append", "complete", "lease_token", "extend_ms"}
)


class PostStatus(Struct, frozen=True):
    job_id: str
    new_title: str | None = None
    new_status: str | None = None
    progress: dict[str, Any] | None = None
    speeds: tuple[dict[str, Any], ...] | None = None
    message: str | None = None
    complete: bool = False
    lease_token: str | None = None
    extend_ms: int | None = None


def parse_status(parts: Parts, limits: Limits) -> PostStatus:
    job_id = parts.job_id()
    parts.no_query(limits)
    r = parts.body_reader(STATUS_FIELDS, limits)
    command = PostStatus(
        job_id=job_id,
        new_title=r.string("new_title", max_chars=limits.title_chars),
        new_status=r.string("new_status", max_chars=limits.status_chars),
        progress=_progress(r),
        speeds=_speeds(r),
        message=r.string("message_to_append", max_chars=limits.message_chars),
        complete=r.boolean("complete"),
        lease_token=r.string("lease_token", max_chars=limits.token_chars),
        extend_ms=r.integer("extend_ms", minimum=1, maximum=limits.timeout_ms_max),
    )
    if command.extend_ms is not None and command.lease_token is None:
        r.problem("extend_ms", "only the lease holder may extend: send lease_token")
    r.done()
    return command


def _progress(r: Reader) -> dict[str, Any] | None:
    value = r.raw("progress")
    if value is None:
        return None
    pr = Reader(value, frozenset({"title", "current", "maximum"}), r.limits, prefix="progress.")
    progress = {
        "title": pr.string("title", max_chars=r.limits.title_chars),
        "current": number_or_none(pr, "current"),
        "maximum": number_or_none(pr, "maximum"),
    }
    r.adopt(pr)
    return progress


def _speeds(r: Reader) -> tuple[dict[str, Any], ...] | None:
    value = r.raw("speeds")
    if value is None:
        return None
    most = r.limits.speeds
    if not isinstance(value, list) or len(value) > most:
        r.problem("speeds", f"must be a list of at most {most} speeds")
        return None
    speeds = []
    for i, entry in enumerate(value):
        sr = Reader(entry, frozenset({"title", "speed", "unit", "as_text"}), r.limits, prefix=f"speeds[{i}].")
        title = sr.string("title", required=True, max_chars=r.limits.title_chars)
        unit = sr.string("unit", max_chars=64)
        as_text = sr.string("as_text", max_chars=r.limits.title_chars)
        speed = sr.raw("speed")
        if not finite_number(speed):
            sr.problem("speed", "must be a finite number")
        r.adopt(sr)
        speeds.append({"title": title, "speed": speed, "unit": unit, "as_text": as_text})
    return tuple(speeds)


class ListMessages(Struct, frozen=True):
    job_id: str
    limit: int = 20
    cursor: str | None = None


def parse_messages(parts: Parts, limits: Limits) -> ListMessages:
    job_id = parts.job_id()
    r = parts.query_reader(frozenset({"limit", "cursor"}), limits)
    command = ListMessages(job_id, read_limit(r), read_cursor(r))
    r.done()
    return command


class ListQueueJobs(Struct, frozen=True):
    type: str
    limit: int = 20
    cursor: str | None = None
    include_leased: bool = False


def parse_queue_jobs(parts: Parts, limits: Limits) -> ListQueueJobs:
    job_type = parts.queue(limits)
    r = parts.query_reader(frozenset({"limit", "cursor", "include_leased"}), limits)
    command = ListQueueJobs(job_type, read_limit(r), read_cursor(r), r.boolean("include_leased"))
    r.done()
    return command
