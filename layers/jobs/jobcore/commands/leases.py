"""Commands of leases: start, claim, extend, abort, complete, fail."""

from __future__ import annotations

from typing import Any

from msgspec import Struct

from ..settings import Limits
from . import Parts
from .fields import NAME_PATTERN, Reader

DEFAULT_TIMEOUT_MS = 30_000


class StartJob(Struct, frozen=True):
    job_id: str
    timeout_ms: int = DEFAULT_TIMEOUT_MS
    worker: str | None = None


def _lease_fields(r: Reader) -> tuple[int, str | None]:
    timeout = r.integer("timeout_ms", minimum=1, maximum=r.limits.timeout_ms_max)
    worker = r.key_name("worker")
    return timeout or DEFAULT_TIMEOUT_MS, worker


def parse_start(parts: Parts, limits: Limits) -> StartJob:
    job_id = parts.job_id()
    parts.no_query(limits)
    r = parts.body_reader(frozenset({"timeout_ms", "worker"}), limits)
    timeout_ms, worker = _lease_fields(r)
    r.done()
    return StartJob(job_id, timeout_ms, worker)


class Dependency(Struct, frozen=True):
    """A job a claim depends on: it must exist (at this version, if given)."""

    job_id: str
    version: int | None = None


class ClaimJob(Struct, frozen=True):
    # The queues to lease from, tried in this order: the path's one, or a body's `types`.
    types: tuple[str, ...]
    timeout_ms: int = DEFAULT_TIMEOUT_MS
    worker: str | None = None
    # The claim passes by jobs started this often already; the job's own limit decides
    # when a job is quarantined.
    max_retries: int | None = None
    depends: tuple[Dependency, ...] = ()
    wait_ms: int = 0
    # None: one job, answered as the job; a number: up to that many, answered as a list.
    max_jobs: int | None = None

    @property
    def type(self) -> str:
        """The first queue (the only one of a claim by path)."""
        return self.types[0]

    @property
    def wanted(self) -> int:
        return self.max_jobs or 1


CLAIM_FIELDS = frozenset({"timeout_ms", "worker", "max_retries", "depends", "wait_ms", "max_jobs"})
MAX_JOBS = 10
MAX_TYPES = 10


def parse_claim(parts: Parts, limits: Limits) -> ClaimJob:
    """POST /v1/queues/{type}/claim."""
    job_type = parts.queue(limits)
    parts.no_query(limits)
    r = parts.body_reader(CLAIM_FIELDS, limits)
    command = _claim_of(r, limits, (job_type,))
    r.done()
    return command


def parse_claim_any(parts: Parts, limits: Limits) -> ClaimJob:
    """POST /v1/claim: the body names the queues (`types`, in the order to try them)."""
    parts.no_query(limits)
    r = parts.body_reader(CLAIM_FIELDS | {"types"}, limits)
    names = r.raw("types")
    types: tuple[str, ...] = ()
    if not isinstance(names, list) or not 1 <= len(names) <= MAX_TYPES:
        r.problem("types", f"a list of 1 to {MAX_TYPES} queue names")
    else:

        def is_name(name: object) -> bool:
            return isinstance(name, str) and 0 < len(name) <= limits.name_chars and bool(NAME_PATTERN.match(name))

        if not all(is_name(name) for name in names):
            r.problem("types", "each a queue name (1-256 characters of A-Z a-z 0-9 _ . : @ + = -)")
        elif len(set(names)) != len(names):
            r.problem("types", "each queue once")
        else:
            types = tuple(str(name) for name in names)
    command = _claim_of(r, limits, types or ("-",))
    r.done()
    return command


def _claim_of(r: Reader, limits: Limits, types: tuple[str, ...]) -> ClaimJob:
    timeout_ms, worker = _lease_fields(r)
    return ClaimJob(
        types=types,
        timeout_ms=timeout_ms,
        worker=worker,
        max_retries=r.integer("max_retries", minimum=1, maximum=limits.max_retries_max),
        depends=read_dependencies(r, "depends"),
        wait_ms=r.integer("wait_ms", minimum=0, maximum=limits.wait_ms_max) or 0,
        max_jobs=r.integer("max_jobs", minimum=1, maximum=MAX_JOBS),
    )


def read_dependencies(r: Reader, name: str) -> tuple[Dependency, ...]:
    value = r.raw(name)
    if value is None:
        return ()
    most = r.limits.depends
    if not isinstance(value, list) or len(value) > most:
        r.problem(name, f"must be a list of at most {most} {{id, version?}}")
        return ()
    found: dict[str, int | None] = {}
    for i, entry in enumerate(value):
        er = Reader(entry, frozenset({"id", "version"}), r.limits, prefix=f"{r.prefix}{name}[{i}].")
        dep_id = er.job_id("id")
        version = er.integer("version", minimum=1, maximum=r.limits.version_max)
        r.adopt(er)
        if dep_id is None or er.problems:
            continue
        if dep_id in found and found[dep_id] != version:
            r.problem(f"{name}[{i}].id", "named twice with different versions")
        found.setdefault(dep_id, version)
    return tuple(Dependency(dep_id, version) for dep_id, version in found.items())


class ExtendLease(Struct, frozen=True):
    job_id: str
    lease_token: str
    timeout_ms: int = DEFAULT_TIMEOUT_MS


def _token(r: Reader, *, required: bool = True) -> str | None:
    return r.string("lease_token", required=required, max_chars=r.limits.token_chars)


def parse_extend(parts: Parts, limits: Limits) -> ExtendLease:
    job_id = parts.job_id()
    parts.no_query(limits)
    r = parts.body_reader(frozenset({"lease_token", "timeout_ms"}), limits)
    token = _token(r)
    timeout_ms = r.integer("timeout_ms", minimum=1, maximum=limits.timeout_ms_max) or DEFAULT_TIMEOUT_MS
    r.done()
    assert token is not None
    return ExtendLease(job_id, token, timeout_ms)


class AbortJob(Struct, frozen=True):
    job_id: str
    lease_token: str


def parse_abort(parts: Parts, limits: Limits) -> AbortJob:
    job_id = parts.job_id()
    parts.no_query(limits)
    r = parts.body_reader(frozenset({"lease_token"}), limits)
    token = _token(r)
    r.done()
    assert token is not None
    return AbortJob(job_id, token)


class CompleteJob(Struct, frozen=True):
    job_id: str
    lease_token: str | None = None  # required while running; an idle or pending job needs none
    result: Any = None


def parse_complete(parts: Parts, limits: Limits) -> CompleteJob:
    job_id = parts.job_id()
    parts.no_query(limits)
    r = parts.body_reader(frozenset({"lease_token", "result"}), limits)
    token = _token(r, required=False)
    result = r.json_value("result", max_bytes=limits.result_bytes)
    r.done()
    return CompleteJob(job_id, token, result)


DEFAULT_ERROR = (("code", "failed"), ("message", "the worker reported a failure"))


class FailJob(Struct, frozen=True):
    job_id: str
    lease_token: str
    error: tuple[tuple[str, str], ...] = DEFAULT_ERROR
    retry_in_ms: int | None = None
    retry: bool = True

    @property
    def error_body(self) -> dict[str, str]:
        return dict(self.error)


def parse_fail(parts: Parts, limits: Limits) -> FailJob:
    job_id = parts.job_id()
    parts.no_query(limits)
    r = parts.body_reader(frozenset({"lease_token", "error", "retry_in_ms", "retry"}), limits)
    token = _token(r)
    retry_in_ms = r.integer("retry_in_ms", minimum=0, maximum=limits.delay_ms_max)
    retry = r.boolean("retry", default=True)
    error = DEFAULT_ERROR
    if r.raw("error") is not None:
        er = Reader(r.raw("error"), frozenset({"code", "message"}), limits, prefix="error.")
        code = er.key_name("code", required=True)
        message = er.string("message", max_chars=limits.error_message_chars)
        r.adopt(er)
        error = (("code", code or "failed"), ("message", message or ""))
    r.done()
    assert token is not None
    return FailJob(job_id, token, error, retry_in_ms, retry)
