"""Commands of recurring jobs (schedules): put (create or replace), read, list, patch, delete.

A schedule's cadence (cron or every_ms, and its time zone) is validated by schedule_slots;
its `job` is the body of a create without the fields a slot decides (ref_id, unique, times,
dependencies), read by the create's own rules, so a schedule never holds a job the create
route would refuse.
"""

from __future__ import annotations

import re
from typing import Any

from msgspec import Struct

from ..errors import InvalidRequest
from ..model import DEFAULT_PRIORITY
from ..schedule_slots import Cadence, CadenceError, parse_cadence
from ..settings import Limits
from ..wire import encode_json
from . import Parts
from .fields import Reader
from .jobs import CreateJob, read_cursor, read_limit, read_priority

# Schedule names become part of keys and job ref_ids: a short, plain alphabet.
SCHEDULE_NAME = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
SCHEDULE_NAME_RULE = "1 to 64 characters of A-Z a-z 0-9 . _ -"
JOB_FIELDS = frozenset({"type", "params", "title", "owner", "max_retries", "ttl_ms", "priority"})
PUT_FIELDS = frozenset({"cron", "every_ms", "timezone", "job", "paused"})
PATCH_FIELDS = PUT_FIELDS


class JobTemplate(Struct, frozen=True):
    """What each slot's job is created with."""

    type: str
    params: Any = None
    title: str | None = None
    owner: str | None = None
    max_retries: int | None = None
    # max_retries null given: no limit; left out: the deployment's default (as at create).
    max_retries_given: bool = False
    ttl_ms: int | None = None
    priority: int = DEFAULT_PRIORITY

    def create(self, ref_id: str) -> CreateJob:
        """The create of one slot's job: unique by its slot's ref_id."""
        return CreateJob(
            type=self.type, ref_id=ref_id, owner=self.owner, title=self.title, params=self.params, ttl_ms=self.ttl_ms,
            max_retries=self.max_retries, max_retries_given=self.max_retries_given, unique=True, priority=self.priority,
        )  # fmt: skip

    def to_wire(self) -> dict[str, Any]:
        body: dict[str, Any] = {"type": self.type, "params": self.params, "title": self.title, "owner": self.owner}
        if self.max_retries_given:
            body["max_retries"] = self.max_retries
        body.update({"ttl_ms": self.ttl_ms, "priority": self.priority})
        return body

    def to_item(self) -> dict[str, Any]:
        """As stored: params as JSON text (any JSON, as a job's params are kept)."""
        item: dict[str, Any] = {"type": self.type, "priority": self.priority}
        optional = {"title": self.title, "owner": self.owner, "ttl_ms": self.ttl_ms,
                    "params": encode_json(self.params) if self.params is not None else None}  # fmt: skip
        item.update({k: v for k, v in optional.items() if v is not None})
        if self.max_retries_given:
            item["max_retries"] = self.max_retries
        return item


def read_job_template(r: Reader, name: str = "job") -> JobTemplate | None:
    """The `job` of a schedule body; its problems are named `job.<field>`."""
    raw = r.raw(name)
    if raw is None:
        r.problem(name, "required")
        return None
    if not isinstance(raw, dict):
        r.problem(name, "must be a JSON object")
        return None
    jr = Reader(raw, JOB_FIELDS, r.limits, prefix=f"{name}.")
    lim = r.limits
    template = JobTemplate(
        type=jr.key_name("type", required=True, name_like=True) or "",
        params=jr.json_value("params", max_bytes=lim.params_bytes),
        title=jr.string("title", max_chars=lim.title_chars),
        owner=jr.key_name("owner"),
        max_retries=jr.integer("max_retries", minimum=1, maximum=lim.max_retries_max),
        max_retries_given=jr.has("max_retries"),
        ttl_ms=jr.integer("ttl_ms", minimum=1, maximum=lim.delay_ms_max),
        priority=read_priority(jr),
    )
    r.adopt(jr)
    return None if jr.problems else template


def read_cadence(r: Reader, cron: Any, every_ms: Any, timezone: Any) -> Cadence | None:
    """Exactly one of cron and every_ms, in a time zone; problems named by field."""
    if (cron is None) == (every_ms is None):
        r.problem("cron", "give cron or every_ms (one of the two)")
        return None
    try:
        return parse_cadence(cron, every_ms, timezone)
    except CadenceError as error:
        r.problem(error.field, error.message)
        return None


def schedule_name(parts: Parts) -> str:
    value = parts.path.get("name", "")
    if not SCHEDULE_NAME.match(value):
        raise InvalidRequest.fields({"name": SCHEDULE_NAME_RULE})
    return value


class PutSchedule(Struct, frozen=True):
    name: str
    cadence: Cadence
    job: JobTemplate
    paused: bool = False


def parse_put_schedule(parts: Parts, limits: Limits) -> PutSchedule:
    name = schedule_name(parts)
    parts.no_query(limits)
    r = parts.body_reader(PUT_FIELDS, limits)
    cadence = read_cadence(r, r.raw("cron"), r.raw("every_ms"), r.raw("timezone", "UTC"))
    job = read_job_template(r)
    paused = r.boolean("paused")
    r.done()
    assert cadence is not None and job is not None
    return PutSchedule(name, cadence, job, paused)


class PatchSchedule(Struct, frozen=True):
    """Only what is given changes. A new cron or every_ms replaces the cadence (the other one
    goes); a time zone alone re-reads the cron in it; `job` replaces the whole template."""

    name: str
    cron: str | None = None
    every_ms: int | None = None
    timezone: str | None = None
    job: JobTemplate | None = None
    paused: bool | None = None

    def cadence_over(self, current: Cadence) -> Cadence:
        """The cadence after this patch, validated again as a whole; 400 naming the field."""
        if self.cron is None and self.every_ms is None and self.timezone is None:
            return current
        cron = self.cron if self.cron is not None else (None if self.every_ms is not None else current.cron)
        every_ms = self.every_ms if self.every_ms is not None else (None if self.cron is not None else current.every_ms)
        try:
            return parse_cadence(cron, every_ms, self.timezone or current.timezone)
        except CadenceError as error:
            raise InvalidRequest.fields({error.field: error.message}) from None


def parse_patch_schedule(parts: Parts, limits: Limits) -> PatchSchedule:
    name = schedule_name(parts)
    parts.no_query(limits)
    r = parts.body_reader(PATCH_FIELDS, limits)
    cron, every_ms, timezone = r.raw("cron"), r.raw("every_ms"), r.raw("timezone")
    if cron is not None and every_ms is not None:
        r.problem("cron", "give cron or every_ms, not both")
    elif cron is not None or every_ms is not None or timezone is not None:
        # Each part is checked here (a zone alone with a cadence always valid), and the
        # cadence as a whole against the stored one in the engine.
        try:
            parse_cadence(cron, every_ms if cron is not None or every_ms is not None else 60_000, timezone or "UTC")
        except CadenceError as error:
            r.problem(error.field, error.message)
    job = read_job_template(r) if r.has("job") else None
    paused = r.boolean("paused") if r.raw("paused") is not None else None
    if not any(r.raw(f) is not None for f in PATCH_FIELDS) and not r.problems:
        r.problem("body", "set at least one of cron, every_ms, timezone, job, paused")
    r.done()
    return PatchSchedule(name, cron, every_ms, timezone, job, paused)


class ScheduleByName(Struct, frozen=True):
    name: str


def parse_schedule_by_name(parts: Parts, limits: Limits) -> ScheduleByName:
    name = schedule_name(parts)
    parts.no_query(limits)
    parts.no_body()
    return ScheduleByName(name)


class ListSchedules(Struct, frozen=True):
    limit: int = 20
    cursor: str | None = None
    prefix: str | None = None


def parse_list_schedules(parts: Parts, limits: Limits) -> ListSchedules:
    r = parts.query_reader(frozenset({"limit", "cursor", "prefix"}), limits)
    prefix = r.string("prefix", max_chars=64)
    if prefix is not None and not SCHEDULE_NAME.match(prefix):
        r.problem("prefix", SCHEDULE_NAME_RULE)
    command = ListSchedules(read_limit(r), read_cursor(r), prefix)
    r.done()
    return command
