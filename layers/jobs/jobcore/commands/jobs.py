"""Commands of jobs as records: create, read, list, patch, delete, batch, clean."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

from msgspec import Struct, structs

from ..model import DEFAULT_PRIORITY, JobState
from ..settings import Limits
from ..wire import encode_json
from . import Parts
from .fields import Reader

IDLE, PENDING = JobState.IDLE.value, JobState.PENDING.value
# Idempotency keys: printable, no control characters (they become part of a key).
_IDEMPOTENCY_KEY = re.compile(r"^[\x20-\x7e]{1,256}$")

CREATE_FIELDS = frozenset(
    {"type", "ref_id", "owner", "title", "params", "ttl_ms", "delay_ms", "available_at", "max_retries", "state",
     "initial_status", "unique", "depends_on", "priority"}
)  # fmt: skip
PATCH_FIELDS = frozenset({"title", "status", "params", "result", "owner", "state", "type", "priority"})
LIST_FIELDS = frozenset({"type", "ref_id", "owner", "state", "created_from", "created_to", "limit", "cursor", "ids"})


class CreateJob(Struct, frozen=True):
    type: str
    ref_id: str | None = None
    owner: str | None = None
    title: str | None = None
    params: Any = None
    ttl_ms: int | None = None
    delay_ms: int | None = None
    available_at: datetime | None = None
    # None with max_retries_given: no limit; not given: the deployment's default.
    max_retries: int | None = None
    max_retries_given: bool = False
    state: str = PENDING
    initial_status: str | None = None
    unique: bool = False
    depends_on: tuple[str, ...] = ()
    priority: int = DEFAULT_PRIORITY
    idempotency_key: str | None = None
    request_hash: str = ""


def read_create(r: Reader) -> CreateJob | None:
    """The fields of a create, from a body or a batch's `create[i]`; None if any is bad."""
    lim = r.limits
    job_type = r.key_name("type", required=True, name_like=True)
    ref_id = r.key_name("ref_id")
    owner = r.key_name("owner")
    title = r.string("title", max_chars=lim.title_chars)
    status = r.string("initial_status", max_chars=lim.status_chars)
    params = r.json_value("params", max_bytes=lim.params_bytes)
    ttl_ms = r.integer("ttl_ms", minimum=1, maximum=lim.delay_ms_max)
    delay_ms = r.integer("delay_ms", minimum=0, maximum=lim.delay_ms_max)
    available_at = r.time("available_at")
    max_retries = r.integer("max_retries", minimum=1, maximum=lim.max_retries_max)
    state = r.choice("state", (IDLE, PENDING), default=PENDING)
    unique = r.boolean("unique")
    depends_on = read_job_ids(r, "depends_on", lim.depends)
    priority = read_priority(r)
    if delay_ms is not None and available_at is not None:
        r.problem("available_at", "give delay_ms or available_at, not both")
    if unique and not ref_id:
        r.problem("ref_id", "required when unique is true")
    if r.problems or job_type is None or state is None:
        return None
    return CreateJob(
        type=job_type, ref_id=ref_id, owner=owner, title=title, params=params, ttl_ms=ttl_ms, delay_ms=delay_ms,
        available_at=available_at, max_retries=max_retries, max_retries_given=r.has("max_retries"), state=state,
        initial_status=status, unique=unique, depends_on=depends_on, priority=priority,
    )  # fmt: skip


def read_priority(r: Reader) -> int:
    """1 (most urgent) to 4; 2 when left out."""
    value = r.raw("priority")
    if value is None:
        return DEFAULT_PRIORITY
    found = r.integer("priority", minimum=1, maximum=4)
    return found if found is not None else DEFAULT_PRIORITY


def read_job_ids(r: Reader, name: str, most: int) -> tuple[str, ...]:
    value = r.raw(name)
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        r.problem(name, "must be a list of job ids")
        return ()
    if len(value) > most:
        r.problem(name, f"at most {most} ids")
        return ()
    from ..ids import is_job_id

    bad = [v for v in value if not is_job_id(v)]
    if bad:
        r.problem(name, f"not job ids: {', '.join(repr(b[:30]) for b in bad[:5])}")
        return ()
    return tuple(dict.fromkeys(value))


def request_hash(body: Any) -> str:
    """What an Idempotency-Key is bound to: the request's body, canonical."""
    return hashlib.sha256(encode_json(body).encode()).hexdigest()


def parse_create(parts: Parts, limits: Limits) -> CreateJob:
    parts.no_query(limits)
    r = parts.body_reader(CREATE_FIELDS, limits)
    command = read_create(r)
    key = parts.header("idempotency-key")
    if key is not None and not _IDEMPOTENCY_KEY.match(key):
        r.problems["Idempotency-Key"] = f"1 to {limits.idempotency_key_chars} printable ASCII characters"
    r.done()
    assert command is not None
    if key is None:
        return command
    return structs.replace(command, idempotency_key=key, request_hash=request_hash(parts.body))


class JobById(Struct, frozen=True):
    """A route that names one job and takes nothing else: get, result, delete, cancel, retry."""

    job_id: str


def parse_job_by_id(parts: Parts, limits: Limits) -> JobById:
    job_id = parts.job_id()
    parts.no_query(limits)
    parts.no_body()
    return JobById(job_id)


class ListJobs(Struct, frozen=True):
    type: str | None = None
    ref_id: str | None = None
    owner: str | None = None
    state: str | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None
    limit: int = 20
    cursor: str | None = None
    ids: tuple[str, ...] | None = None  # a multi-get: these jobs, in this order


def parse_list(parts: Parts, limits: Limits) -> ListJobs:
    r = parts.query_reader(LIST_FIELDS, limits)
    ids_text = r.string("ids", max_chars=27 * limits.ids_per_get)
    ids: tuple[str, ...] | None = None
    if ids_text is not None:
        found = [i for i in ids_text.split(",") if i]
        from ..ids import is_job_id

        if not found or len(found) > limits.ids_per_get or not all(is_job_id(i) for i in found):
            r.problem("ids", f"1 to {limits.ids_per_get} job ids, separated by commas")
        elif set(parts.query) - {"ids"}:
            r.problem("ids", "no other parameter goes with ids")
        ids = tuple(found)
    command = ListJobs(
        type=r.key_name("type"),
        ref_id=r.key_name("ref_id"),
        owner=r.key_name("owner"),
        state=r.choice("state", tuple(s.value for s in JobState)),
        created_from=r.time("created_from"),
        created_to=r.time("created_to"),
        limit=read_limit(r),
        cursor=read_cursor(r),
        ids=ids,
    )
    r.done()
    return command


def read_limit(r: Reader) -> int:
    return r.integer("limit", minimum=1, maximum=r.limits.list_limit_max) or r.limits.list_limit_default


def read_cursor(r: Reader) -> str | None:
    value = r.string("cursor", max_chars=r.limits.cursor_chars)
    if value is not None and not value.isascii():
        r.problem("cursor", "not a cursor of this listing")
        return None
    return value


class PatchJob(Struct, frozen=True):
    job_id: str
    changes: tuple[tuple[str, Any], ...]  # (field, value); None removes the field
    if_match: int | None = None


def read_changes(r: Reader, allowed: frozenset[str]) -> tuple[tuple[str, Any], ...]:
    """The fields a patch or a batch update sets, each under its create-time limit."""
    lim = r.limits
    changes: list[tuple[str, Any]] = []
    readers: dict[str, Callable[[], Any]] = {
        "title": lambda: r.string("title", max_chars=lim.title_chars),
        "status": lambda: r.string("status", max_chars=lim.status_chars),
        "owner": lambda: r.key_name("owner"),
        "params": lambda: r.json_value("params", max_bytes=lim.params_bytes),
        "result": lambda: r.json_value("result", max_bytes=lim.result_bytes),
        "available_at": lambda: r.time("available_at"),
        "type": lambda: r.key_name("type", required=True, name_like=True),
        "priority": lambda: r.integer("priority", required=True, minimum=1, maximum=4),
    }
    for name in sorted(allowed & set(r.body)):
        if name == "state":
            value = r.choice("state", (IDLE, PENDING))
            if value is None:
                r.problem("state", "one of idle, pending")
            changes.append(("state", value))
        elif name in readers:
            changes.append((name, readers[name]()))
    return tuple(changes)


def parse_patch(parts: Parts, limits: Limits) -> PatchJob:
    job_id = parts.job_id()
    parts.no_query(limits)
    r = parts.body_reader(PATCH_FIELDS, limits)
    changes = read_changes(r, PATCH_FIELDS)
    if_match = None
    raw = parts.header("if-match")
    if raw is not None:
        text = raw.strip().strip('"')
        if not (text.isascii() and text.isdigit() and len(text) <= 16 and 1 <= int(text) <= limits.version_max):
            r.problems["If-Match"] = "must be a version number"
        else:
            if_match = int(text)
    r.done()
    return PatchJob(job_id, changes, if_match)


class Sweep(Struct, frozen=True):
    """Delete every job (admin), or what has expired (clean); a page of work per call."""

    everything: bool


def parse_delete_all(parts: Parts, limits: Limits) -> Sweep:
    parts.no_query(limits)  # a filter it cannot honour must never mean "all"
    parts.no_body()
    return Sweep(everything=True)


def parse_clean(parts: Parts, limits: Limits) -> Sweep:
    parts.no_query(limits)
    parts.no_body()
    return Sweep(everything=False)


class Reference(Struct, frozen=True):
    """A job named in a batch: its id, and the version it must be at (if given)."""

    job_id: str
    version: int | None = None


class BatchUpdate(Struct, frozen=True):
    job_id: str
    version: int
    changes: tuple[tuple[str, Any], ...]


class Batch(Struct, frozen=True):
    creates: tuple[CreateJob, ...] = ()
    updates: tuple[BatchUpdate, ...] = ()
    deletes: tuple[Reference, ...] = ()
    depends: tuple[Reference, ...] = ()


# A batch moves no job to another queue: its unique guard would have to move with it.
BATCH_UPDATE_FIELDS = (PATCH_FIELDS - {"type"}) | {"available_at"}


def parse_batch(parts: Parts, limits: Limits) -> Batch:
    parts.no_query(limits)
    r = parts.body_reader(frozenset({"create", "update", "delete", "depends"}), limits)
    lists: dict[str, list[Any]] = {}
    for name in ("create", "update", "delete", "depends"):
        value = r.raw(name, [])
        if not isinstance(value, list):
            r.problem(name, "must be a list")
            value = []
        lists[name] = value
    total = sum(len(v) for v in lists.values())
    if total == 0:
        r.problem("body", "at least one of create, update, delete, depends")
    if total > limits.batch_ops:
        r.problem("body", f"at most {limits.batch_ops} operations in all, got {total}")
    r.done()
    creates = []
    for i, entry in enumerate(lists["create"]):
        er = Reader(entry, CREATE_FIELDS, limits, prefix=f"create[{i}].")
        found = read_create(er)
        r.adopt(er)
        if found is not None:
            creates.append(found)
    updates = []
    for i, entry in enumerate(lists["update"]):
        er = Reader(entry, BATCH_UPDATE_FIELDS | {"id", "version"}, limits, prefix=f"update[{i}].")
        job_id = er.job_id("id")
        version = er.integer("version", required=True, minimum=1, maximum=limits.version_max)
        changes = read_changes(er, BATCH_UPDATE_FIELDS)
        r.adopt(er)
        if job_id and version and not er.problems:
            updates.append(BatchUpdate(job_id, version, changes))
    references: dict[str, list[Reference]] = {"delete": [], "depends": []}
    for name, found_refs in references.items():
        for i, entry in enumerate(lists[name]):
            er = Reader(entry, frozenset({"id", "version"}), limits, prefix=f"{name}[{i}].")
            job_id = er.job_id("id")
            version = er.integer("version", minimum=1, maximum=limits.version_max)
            r.adopt(er)
            if job_id and not er.problems:
                found_refs.append(Reference(job_id, version))
    ids = [u.job_id for u in updates] + [ref.job_id for refs in references.values() for ref in refs]
    # A transaction may touch an item once: the jobs named, and the jobs new jobs depend on.
    touched = ids + [dep for create in creates for dep in create.depends_on]
    repeated = sorted({i for i in touched if touched.count(i) > 1})
    if repeated:
        r.problem("body", f"a job may appear in one operation only: {', '.join(repeated)}")
    guards = [(c.type, c.ref_id) for c in creates if c.unique]
    if len(guards) != len(set(guards)):
        r.problem("create", "two unique creates with the same type and ref_id")
    r.done()
    return Batch(tuple(creates), tuple(updates), tuple(references["delete"]), tuple(references["depends"]))
