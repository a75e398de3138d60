"""The job engine: every operation of the contract, correct under concurrency.

Correctness lives in DynamoDB conditions, never in a read-then-write: each transition is
one conditional write whose condition states exactly when it may apply. When a condition
fails, the item as it was (ALL_OLD) is classified in Python by the same rules, which names
the error without a second read.
"""

from __future__ import annotations

import contextlib
import hashlib
import random
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

from . import items as keys
from .clock import Clock, SystemClock, epoch_seconds, parse_iso, plus_ms, to_iso
from .config import Settings
from .errors import (
    AlreadyFinished,
    BatchConflict,
    DeadlineExceeded,
    DependencyFailed,
    InvalidRequest,
    LeaseHeld,
    LeaseLost,
    NotFinished,
    NotFound,
    NotRunning,
    RetriesExhausted,
    ServiceUnavailable,
    VersionMismatch,
)
from .ids import is_job_id, new_job_id, new_token
from .model import Job, JobState, Principal, dump_json
from .store import (
    ALL_INDEX,
    OWNER_INDEX,
    QUEUE_INDEX,
    REF_INDEX,
    TYPE_INDEX,
    ConditionFailed,
    Expr,
    Item,
    TableStore,
    TransactionCanceled,
    Write,
    decode_cursor,
    encode_cursor,
)
from .validation import NAME_PATTERN, Reader

T = TypeVar("T")

RUNNING = JobState.RUNNING.value
PENDING = JobState.PENDING.value
IDLE = JobState.IDLE.value
FINISHED = JobState.FINISHED.value
ERROR = JobState.ERROR.value
CANCELLED = JobState.CANCELLED.value

# Fields each operation accepts; anything else is refused as unknown.
CREATE_FIELDS = frozenset(
    {
        "type", "ref_id", "owner", "title", "params", "ttl_ms", "delay_ms", "available_at",
        "max_retries", "state", "initial_status", "unique", "depends_on",
    }
)  # fmt: skip
PATCH_FIELDS = frozenset({"title", "status", "params", "result", "owner", "state"})
LIST_FIELDS = frozenset({"type", "ref_id", "owner", "state", "created_from", "created_to", "limit", "cursor"})
STATUS_FIELDS = frozenset(
    {"new_title", "new_status", "progress", "speeds", "message_to_append", "complete", "lease_token", "extend_ms"}
)
CLAIM_FIELDS = frozenset({"timeout_ms", "worker", "max_retries", "depends", "wait_ms"})

DEFAULT_TIMEOUT_MS = 30_000
# Each round of concurrent writers to one job lets at least one through, so this bounds
# how many writers may race on one job before one of them is told to retry (503).
MAX_WRITE_ATTEMPTS = 12
# Cursors of the merged listing over all-created partitions name this, not one index.
MERGED_ALL_CURSOR = "all-created-merged"
# A long poll stops this long before the function would time out: room for the last claim.
LONG_POLL_MARGIN_MS = 2000


@dataclass
class Page(Generic[T]):
    data: list[T]
    next_cursor: str | None


@dataclass
class CreateResult:
    job: Job
    created: bool


@dataclass
class Message:
    message: str
    at: str

    def to_wire(self) -> dict[str, str]:
        return {"message": self.message, "at": self.at}


@dataclass
class DeleteResult:
    deleted: int
    more: bool


@dataclass
class BatchResult:
    created: list[Job] = field(default_factory=list)
    updated: list[Job] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)


@dataclass
class _Candidate:
    """What the queue index shows of a job: enough to decide whether to lease it."""

    item: Item

    @property
    def id(self) -> str:
        return str(self.item["id"])


def _visible(item: Item | None, now: datetime) -> Job | None:
    """The job, unless missing or past its expiry (TTL deletes late; we treat it as gone)."""
    if not item or item.get("SK") != keys.JOB_SK:
        return None
    expires = item.get("expires_at")
    if expires is not None and int(expires) <= epoch_seconds(now):
        return None
    return Job.from_item(item)


def _not_expired(e: Expr, now: datetime) -> str:
    return f"(attribute_not_exists({e.n('expires_at')}) OR {e.n('expires_at')} > {e.v(epoch_seconds(now))})"


def _lease_free(job: Job, now: datetime) -> bool:
    return job.locked_until is None or parse_iso(job.locked_until) <= now


def _retries_left(attempts: int, job_max: int | None, claim_max: int | None) -> bool:
    return (job_max is None or attempts < job_max) and (claim_max is None or attempts < claim_max)


def _past_deadline(execute_until: str | None, now: datetime) -> bool:
    return execute_until is not None and parse_iso(execute_until) <= now


class JobService:
    """Every operation of the contract. Thread-safe: it holds no per-request state."""

    def __init__(
        self,
        store: TableStore,
        settings: Settings,
        clock: Clock | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.store = store
        self.settings = settings
        self.limits = settings.limits
        self.clock: Clock = clock or SystemClock()
        self.rng = rng or random.Random()
        # Queue names this process has already registered (see _queue_name_write).
        self._known_queues: set[str] = set()
        # Claims that lost a candidate to another worker (a lost conditional write).
        self.claim_conflicts = 0

    # ======================================================================================
    # reading
    # ======================================================================================
    def _load(self, job_id: str, now: datetime) -> Job | None:
        if not is_job_id(job_id):
            return None
        return _visible(self.store.get(keys.job_key(job_id)), now)

    def _load_for(self, principal: Principal, job_id: str, now: datetime) -> Job:
        job = self._load(job_id, now)
        if job is None or not principal.may_see(job.owner):
            raise NotFound(f"job {job_id} not found")
        return job

    def get(self, principal: Principal, job_id: str) -> Job:
        return self._load_for(principal, job_id, self.clock.now())

    def result(self, principal: Principal, job_id: str) -> Any:
        job = self.get(principal, job_id)
        if job.state is not JobState.FINISHED:
            raise NotFinished(f"job {job_id} is {job.state.value}, not finished", {"state": job.state.value})
        return job.result

    # ======================================================================================
    # create
    # ======================================================================================
    def create(self, principal: Principal, body: Mapping[str, Any], *, idempotency_key: str | None = None) -> CreateResult:
        now = self.clock.now()
        item, unique = self._new_job_item(principal, body, now)
        return self._create_item(principal, item, unique, now, idempotency_key, body)

    def _new_job_item(self, principal: Principal, body: Any, now: datetime, prefix: str = "") -> tuple[Item, bool]:
        """Validate a create body and build the job item (not yet written)."""
        lim = self.limits
        r = Reader(body, CREATE_FIELDS, prefix=prefix)
        job_type = r.string("type", required=True, max_chars=lim.name_chars, name_like=True)
        ref_id = r.string("ref_id", max_chars=lim.name_chars)
        owner = r.string("owner", max_chars=lim.name_chars)
        title = r.string("title", max_chars=lim.title_chars)
        status = r.string("initial_status", max_chars=lim.status_chars)
        params = r.json_value("params", max_bytes=lim.params_bytes)
        ttl_ms = r.integer("ttl_ms", minimum=1, maximum=lim.delay_ms_max)
        delay_ms = r.integer("delay_ms", minimum=0, maximum=lim.delay_ms_max)
        available_at = r.time("available_at")
        max_retries: int | None = self.settings.default_max_retries
        if r.has("max_retries"):
            max_retries = r.integer("max_retries", minimum=1, maximum=1000)
        state = r.choice("state", (IDLE, PENDING), default=PENDING)
        unique = r.boolean("unique")
        depends_on = self._id_list(r, "depends_on")
        if delay_ms is not None and available_at is not None:
            r.problem("available_at", "give delay_ms or available_at, not both")
        if unique and not ref_id:
            r.problem("ref_id", "required when unique is true")
        r.done()
        assert job_type is not None and state is not None

        job_id = new_job_id(now)
        created = to_iso(now)
        visible_at = available_at or plus_ms(now, delay_ms or 0)
        execute_until = plus_ms(now, ttl_ms) if ttl_ms else None
        item: Item = {
            **keys.job_key(job_id),
            "id": job_id,
            "type": job_type,
            "processor": principal.sub,
            "state": state,
            "attempts": 0,
            "version": 1,
            "created": created,
            "modified": created,
            "available_at": to_iso(visible_at),
            "cancel_requested": False,
            "depends_on": depends_on,
            "msg_count": 0,
        }
        optional = {
            "ref_id": ref_id,
            "owner": owner,
            "title": title,
            "status": status,
            "max_retries": max_retries,
            "params": dump_json(params) if params is not None else None,
            "execute_until": to_iso(execute_until) if execute_until else None,
            # A job past its deadline is kept for the retention period, then expires.
            "expires_at": epoch_seconds(plus_ms(execute_until, self.settings.retention_ms)) if execute_until else None,
            "unique_key": keys.guard_key(job_type, ref_id)["PK"] if unique and ref_id else None,
        }
        item.update({k: v for k, v in optional.items() if v is not None})
        item.update(keys.index_attributes(item))
        return item, unique

    def _id_list(self, r: Reader, name: str) -> list[str]:
        value = r.raw(name)
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            r.problem(name, "must be a list of job ids")
            return []
        if len(value) > self.limits.depends:
            r.problem(name, f"at most {self.limits.depends} ids")
            return []
        bad = [v for v in value if not is_job_id(v)]
        if bad:
            r.problem(name, f"not job ids: {', '.join(bad[:5])}")
            return []
        return list(dict.fromkeys(value))

    def _create_writes(self, item: Item, unique: bool, now: datetime) -> list[Write]:
        """The writes that create one job: the job, its unique guard, its dependencies' checks."""
        e = Expr()
        writes = [Write("put", item=item, condition=f"attribute_not_exists({e.n('PK')})", expr=e)]
        if unique:
            g = Expr()
            guard: Item = {
                **keys.guard_key(item["type"], item["ref_id"]),
                "job_id": item["id"],
                "created": item["created"],
            }
            if "expires_at" in item:
                guard["expires_at"] = item["expires_at"]
            writes.append(
                Write("put", item=guard, condition=f"attribute_not_exists({g.n('PK')}) OR NOT {_not_expired(g, now)}", expr=g)
            )
        for dep in item.get("depends_on", []):
            d = Expr()
            writes.append(
                Write(
                    "check",
                    key=keys.job_key(dep),
                    condition=f"attribute_exists({d.n('PK')}) AND {_not_expired(d, now)}",
                    expr=d,
                )
            )
        return writes

    def _queue_name_write(self, job_type: str) -> Write | None:
        """Register the queue name once per process: a plain put, idempotent, no condition.

        Queue names could not be listed without a Scan otherwise. A process puts each name
        with its first create, so steady-state creates stay one write.
        """
        if job_type in self._known_queues:
            return None
        return Write("put", item={**keys.queue_name_key(job_type), "type": job_type})

    def _create_item(
        self,
        principal: Principal,
        item: Item,
        unique: bool,
        now: datetime,
        idempotency_key: str | None,
        body: Mapping[str, Any],
    ) -> CreateResult:
        for _ in range(MAX_WRITE_ATTEMPTS):
            writes = self._create_writes(item, unique, now)
            idem_at = None
            if idempotency_key is not None:
                idem_at = len(writes)
                writes.append(self._idempotency_write(principal, idempotency_key, item["id"], body, now))
            queue_write = self._queue_name_write(item["type"])
            if queue_write:
                writes.append(queue_write)
            try:
                if len(writes) == 1:
                    w = writes[0]
                    assert w.item is not None
                    self.store.put(w.item, condition=w.condition, expr=w.expr)
                else:
                    self.store.transact(writes)
            except (ConditionFailed, TransactionCanceled) as failure:
                reasons = self._reasons(failure, len(writes))
                existing = self._create_conflict(principal, item, unique, idem_at, reasons, body, now)
                if existing is not None:
                    return existing
                continue
            self._known_queues.add(item["type"])
            return CreateResult(Job.from_item(item), created=True)
        raise ServiceUnavailable("create kept conflicting with concurrent changes; retry")

    @staticmethod
    def _reasons(failure: ConditionFailed | TransactionCanceled, count: int) -> list[tuple[str, Item | None]]:
        if isinstance(failure, ConditionFailed):
            return [("ConditionalCheckFailed", failure.item)]
        reasons = [(r.code, r.item) for r in failure.reasons]
        return reasons + [("None", None)] * (count - len(reasons))

    def _create_conflict(
        self,
        principal: Principal,
        item: Item,
        unique: bool,
        idem_at: int | None,
        reasons: list[tuple[str, Item | None]],
        body: Mapping[str, Any],
        now: datetime,
    ) -> CreateResult | None:
        """Why a create did not apply: the answer to return, or None to try again."""
        failed = [i for i, (code, _) in enumerate(reasons) if code == "ConditionalCheckFailed"]
        if idem_at is not None and idem_at in failed:
            record = reasons[idem_at][1] or {}
            if record.get("request_hash") != self._request_hash(body):
                raise InvalidRequest.fields(
                    {"Idempotency-Key": "already used with a different request"},
                    "Idempotency-Key was used before with a different request",
                )
            job = self._load(str(record.get("job_id")), now)
            if job is None:
                raise NotFound("the job created under this Idempotency-Key no longer exists")
            return CreateResult(job, created=bool(record.get("created", True)))
        if unique and 1 in failed:
            guard = reasons[1][1] or {}
            holder = self._load(str(guard.get("job_id", "")), now)
            if holder is not None and not holder.complete:
                return CreateResult(holder, created=False)
            # The guard outlived its job (a crash between finishing and releasing it):
            # release it, if it is still that stale guard, and try again.
            self._release_guard(guard_pk=str(guard.get("PK")), job_id=str(guard.get("job_id")))
            return None
        dep_start = 2 if unique else 1
        depends_on: list[str] = item.get("depends_on", [])
        dep_failures = [
            {"id": depends_on[i - dep_start], "reason": "not_found"}
            for i in failed
            if dep_start <= i < dep_start + len(depends_on)
        ]
        if dep_failures:
            raise DependencyFailed("a job this job depends on does not exist", {"failures": dep_failures})
        if 0 in failed:
            item["id"] = new_job_id(now)  # an id collision: practically never; draw again
            item.update(keys.job_key(item["id"]))
            item.update(keys.index_attributes(item))
            return None
        raise ServiceUnavailable("create conflicted with a concurrent change; retry")

    @staticmethod
    def _request_hash(body: Mapping[str, Any]) -> str:
        return hashlib.sha256(dump_json(body).encode()).hexdigest()

    def _idempotency_write(self, principal: Principal, key: str, job_id: str, body: Mapping[str, Any], now: datetime) -> Write:
        if not key or len(key) > self.limits.name_chars:
            raise InvalidRequest.fields({"Idempotency-Key": f"1 to {self.limits.name_chars} characters"})
        e = Expr()
        record: Item = {
            **keys.idempotency_key(principal.sub, key),
            "job_id": job_id,
            "request_hash": self._request_hash(body),
            "created": True,
            "expires_at": epoch_seconds(plus_ms(now, self.settings.idempotency_ttl_ms)),
        }
        return Write("put", item=record, condition=f"attribute_not_exists({e.n('PK')}) OR NOT {_not_expired(e, now)}", expr=e)

    def _release_guard(self, *, guard_pk: str, job_id: str) -> None:
        """Delete a unique guard, only if it still belongs to this job."""
        e = Expr()
        # Already released, or taken by a newer job: nothing to do.
        with contextlib.suppress(ConditionFailed):
            self.store.delete({"PK": guard_pk, "SK": "UNIQ"}, condition=f"{e.n('job_id')} = {e.v(job_id)}", expr=e)

    def _after_terminal(self, job: Job) -> Job:
        if job.unique_key:
            self._release_guard(guard_pk=job.unique_key, job_id=job.id)
        return job

    # ======================================================================================
    # the conditional write every transition goes through
    # ======================================================================================
    def _write(
        self,
        job_id: str,
        now: datetime,
        *,
        precondition: Callable[[Expr], str],
        check: Callable[[Job | None], None],
        sets: Callable[[str], dict[str, Any]],
        removes: Iterable[str] = (),
        increments: Iterable[str] = (),
        extra: Callable[[str], list[Write]] | None = None,
    ) -> Job:
        """Apply one transition to a job, conditionally.

        ``precondition`` states, as a DynamoDB condition, when the transition may apply;
        ``check`` states the same rule in Python and raises the error that names why it
        does not (it is handed the item as it was, from ALL_OLD). With ``extra`` writes
        the transition is a transaction, after which the job is read back: under concurrent
        writes that read may already include a later change. Every write bumps
        ``version`` and sets ``modified``, which strictly increases: if another writer's
        clock ran ahead, the write is repeated just after it.
        """
        if not is_job_id(job_id):
            raise NotFound(f"job {job_id} not found")
        modified = now
        remove_list = list(removes)
        for _ in range(MAX_WRITE_ATTEMPTS):
            stamp = to_iso(modified)
            e = Expr()
            assignments = [f"{e.n(k)} = {e.v(v)}" for k, v in sets(stamp).items()]
            assignments.append(f"{e.n('version')} = {e.n('version')} + {e.v(1)}")
            assignments.append(f"{e.n('modified')} = {e.v(stamp)}")
            assignments += [f"{e.n(k)} = {e.n(k)} + {e.v(1)}" for k in increments]
            update = "SET " + ", ".join(assignments)
            if remove_list:
                update += " REMOVE " + ", ".join(e.n(k) for k in remove_list)
            condition = (
                f"attribute_exists({e.n('PK')}) AND {_not_expired(e, now)} "
                f"AND {e.n('modified')} < {e.v(stamp)} AND ({precondition(e)})"
            )
            key = keys.job_key(job_id)
            extra_writes = extra(stamp) if extra else []
            try:
                if extra_writes:
                    self.store.transact([Write("update", key=key, update=update, condition=condition, expr=e), *extra_writes])
                    item = self.store.get(key)
                    job = _visible(item, now)
                    if job is None:  # deleted between the two requests
                        raise NotFound(f"job {job_id} not found")
                    return job
                return Job.from_item(self.store.update(key, update, condition=condition, expr=e))
            except (ConditionFailed, TransactionCanceled) as failure:
                if isinstance(failure, TransactionCanceled):
                    if failure.reasons[0].code != "ConditionalCheckFailed":
                        raise _ExtraWritesFailed([(r.code, r.item) for r in failure.reasons]) from None
                    old = failure.reasons[0].item
                else:
                    old = failure.item
                job = _visible(old, now)
                check(job)
                if job is not None and parse_iso(job.modified) >= modified:
                    # A fresh reading of the clock, so a writer that waited does not keep
                    # losing to writers that started after it.
                    modified = max(self.clock.now(), plus_ms(parse_iso(job.modified), 1))
        raise ServiceUnavailable(f"job {job_id} kept changing under concurrent writes; retry")

    def _terminal_sets(self, state: str, now: datetime, error: dict[str, str] | None = None) -> dict[str, Any]:
        sets: dict[str, Any] = {
            "state": state,
            "completed": to_iso(now),
            "expires_at": epoch_seconds(plus_ms(now, self.settings.retention_ms)),
        }
        if error is not None:
            sets["error"] = dump_json(error)
        return sets

    TERMINAL_REMOVES = ("QSK", "locked_until")

    # -- the rules, each as a DynamoDB condition and as a Python check ---------------------
    @staticmethod
    def _lease_condition(token: str) -> Callable[[Expr], str]:
        return lambda e: f"{e.n('state')} = {e.v(RUNNING)} AND {e.n('lease_token')} = {e.v(token)}"

    @staticmethod
    def _check_lease(job: Job | None, token: str) -> None:
        if job is None:
            raise NotFound("job not found")
        if job.state.terminal and job.lease_token != token:
            raise LeaseLost(f"the lease on job {job.id} was lost: another worker took the job and ended it")
        if job.state.terminal:
            raise AlreadyFinished(f"job {job.id} is already {job.state.value}", {"state": job.state.value})
        if job.state is not JobState.RUNNING:
            raise NotRunning(f"job {job.id} is {job.state.value}: no lease is held", {"state": job.state.value})
        if job.lease_token != token:
            raise LeaseLost(f"the lease on job {job.id} was lost: another worker holds it now")

    @staticmethod
    def _unleased_condition(e: Expr) -> str:
        return f"{e.n('state')} IN ({e.v(IDLE)}, {e.v(PENDING)})"

    @staticmethod
    def _check_unleased(job: Job | None) -> None:
        if job is None:
            raise NotFound("job not found")
        if job.state.terminal:
            raise AlreadyFinished(f"job {job.id} is already {job.state.value}", {"state": job.state.value})
        if job.state is JobState.RUNNING:
            raise LeaseHeld(f"job {job.id} is running: send the lease_token of its lease")

    @staticmethod
    def _startable_condition(now: datetime, claim_max: int | None) -> Callable[[Expr], str]:
        def condition(e: Expr) -> str:
            text = (
                f"{e.n('cancel_requested')} = {e.v(False)} "
                f"AND (attribute_not_exists({e.n('execute_until')}) OR {e.n('execute_until')} > {e.v(to_iso(now))}) "
                f"AND (attribute_not_exists({e.n('max_retries')}) OR {e.n('attempts')} < {e.n('max_retries')})"
            )
            if claim_max is not None:
                text += f" AND {e.n('attempts')} < {e.v(claim_max)}"
            return text

        return condition

    # ======================================================================================
    # leases: start, claim, extend, abort, complete, fail
    # ======================================================================================
    def _read_lease_request(self, body: Any, *, extra_fields: frozenset[str] = frozenset()) -> tuple[Reader, int, str | None]:
        r = Reader(body, frozenset({"timeout_ms", "worker"}) | extra_fields)
        timeout = r.integer("timeout_ms", minimum=1, maximum=self.limits.timeout_ms_max)
        worker = r.string("worker", max_chars=self.limits.name_chars)
        return r, timeout or DEFAULT_TIMEOUT_MS, worker

    def _lease_sets(self, job_id: str, worker: str, timeout_ms: int, now: datetime, token: str) -> dict[str, Any]:
        locked_until = to_iso(plus_ms(now, timeout_ms))
        return {
            "state": RUNNING,
            "lease_token": token,
            "lease_owner": worker,
            "locked_until": locked_until,
            "started": to_iso(now),
            "QSK": keys.visible_key(locked_until, job_id),
        }

    def start(self, principal: Principal, job_id: str, body: Any) -> Job:
        """Lease one job by id: idle or pending, or running with an expired lease."""
        r, timeout_ms, worker = self._read_lease_request(body)
        r.done()
        now = self.clock.now()
        token = new_token()
        startable = self._startable_condition(now, None)

        def precondition(e: Expr) -> str:
            return (
                f"({e.n('state')} IN ({e.v(IDLE)}, {e.v(PENDING)}) OR "
                f"({e.n('state')} = {e.v(RUNNING)} AND {e.n('locked_until')} <= {e.v(to_iso(now))})) "
                f"AND {startable(e)}"
            )

        def check(job: Job | None) -> None:
            if job is None:
                raise NotFound(f"job {job_id} not found")
            if job.state.terminal:
                raise AlreadyFinished(f"job {job_id} is already {job.state.value}", {"state": job.state.value})
            if job.state is JobState.RUNNING and not _lease_free(job, now):
                raise LeaseHeld(f"job {job_id} is leased by another worker", {"locked_until": job.locked_until})
            self._raise_if_unstartable(job, now, None)

        job = self._write(
            job_id,
            now,
            precondition=precondition,
            check=check,
            sets=lambda _: self._lease_sets(job_id, worker or principal.sub, timeout_ms, now, token),
            increments=("attempts",),
        )
        return job

    def _unstartable_reason(self, job: Job | _Projection, now: datetime, claim_max: int | None) -> str | None:
        if job.cancel_requested:
            return "cancelled"
        if _past_deadline(job.execute_until, now):
            return DeadlineExceeded.code
        if not _retries_left(job.attempts, job.max_retries, claim_max):
            return RetriesExhausted.code
        return None

    def _raise_if_unstartable(self, job: Job, now: datetime, claim_max: int | None) -> None:
        """A job that may never start again is moved out of the queue, then reported."""
        reason = self._unstartable_reason(job, now, claim_max)
        if reason is None:
            return
        self._retire(job.id, reason, now)
        if reason == "cancelled":
            raise AlreadyFinished(f"job {job.id} was cancelled", {"state": CANCELLED})
        if reason == DeadlineExceeded.code:
            raise DeadlineExceeded(f"job {job.id} is past its deadline {job.execute_until}")
        raise RetriesExhausted(f"job {job.id} was started {job.attempts} times, its limit")

    def _retire(self, job_id: str, reason: str, now: datetime) -> Job | None:
        """Move a job that may never run again out of the queue: ``cancelled`` for a
        requested cancel, else ``error`` with the reason as its code. Applies only while no
        live lease is held; returns None when the job changed meanwhile."""
        if reason == "cancelled":
            sets = self._terminal_sets(CANCELLED, now)
        else:
            messages = {
                RetriesExhausted.code: "the job was started as often as its max_retries allows",
                DeadlineExceeded.code: "the job was not started before its execute_until deadline",
                DependencyFailed.code: "a job this job depends on ended without finishing",
            }
            sets = self._terminal_sets(ERROR, now, {"code": reason, "message": messages[reason]})

        def precondition(e: Expr) -> str:
            return (
                f"{e.n('state')} IN ({e.v(IDLE)}, {e.v(PENDING)}) OR "
                f"({e.n('state')} = {e.v(RUNNING)} AND {e.n('locked_until')} <= {e.v(to_iso(now))})"
            )

        def check(job: Job | None) -> None:
            if job is None or job.state.terminal or (job.state is JobState.RUNNING and not _lease_free(job, now)):
                raise _Changed()

        try:
            job = self._write(
                job_id, now, precondition=precondition, check=check, sets=lambda _: sets, removes=self.TERMINAL_REMOVES
            )
        except (_Changed, NotFound):
            return None
        return self._after_terminal(job)

    def _check_queue_name(self, r: Reader, job_type: str) -> None:
        """A queue named in the path follows the rule of `type` at create: no job is in any other."""
        if not job_type or len(job_type) > self.limits.name_chars or not NAME_PATTERN.match(job_type):
            r.problem("type", f"1 to {self.limits.name_chars} characters of A-Z a-z 0-9 _ . : @ + = -")

    def claim(self, principal: Principal, job_type: str, body: Any, *, time_left_ms: int | None = None) -> Job | None:
        """Lease the next available job of a type, or None when there is none.

        ``time_left_ms`` (the Lambda's remaining time) bounds a long poll, so that it answers
        "none" before the function would time out."""
        r, timeout_ms, worker = self._read_lease_request(body, extra_fields=frozenset({"max_retries", "depends", "wait_ms"}))
        claim_max = r.integer("max_retries", minimum=1, maximum=1000)
        wait_ms = r.integer("wait_ms", minimum=0, maximum=self.limits.wait_ms_max) or 0
        depends = self._read_depends(r, "depends")
        self._check_queue_name(r, job_type)
        r.done()
        if time_left_ms is not None:
            wait_ms = max(0, min(wait_ms, time_left_ms - LONG_POLL_MARGIN_MS))
        give_up_at = plus_ms(self.clock.now(), wait_ms)
        while True:
            job = self._claim_once(job_type, worker or principal.sub, timeout_ms, claim_max, depends, self.clock.now())
            if job is not None:
                return job
            remaining_ms = (give_up_at - self.clock.now()).total_seconds() * 1000
            if remaining_ms <= 0:
                return None
            self.clock.sleep(min(self.settings.poll_interval_ms, remaining_ms) / 1000)

    def _read_depends(self, r: Reader, name: str) -> list[tuple[str, int | None]]:
        value = r.raw(name)
        if value is None:
            return []
        if not isinstance(value, list) or len(value) > self.limits.depends:
            r.problem(name, f"must be a list of at most {self.limits.depends} {{id, version?}}")
            return []
        result: list[tuple[str, int | None]] = []
        for i, entry in enumerate(value):
            er = Reader(entry, frozenset({"id", "version"}), prefix=f"{name}[{i}].")
            dep_id = er.string("id", required=True, max_chars=26)
            version = er.integer("version", minimum=1)
            if dep_id and not is_job_id(dep_id):
                er.problem("id", "not a job id")
            r.problems.update(er.problems)
            if dep_id and not er.problems:
                earlier = next((v for d, v in result if d == dep_id), _ABSENT)
                if earlier is _ABSENT:
                    result.append((dep_id, version))
                elif earlier != version:
                    r.problem(f"{name}[{i}].id", "named twice with different versions")
        return result

    def _claim_once(
        self,
        job_type: str,
        worker: str,
        timeout_ms: int,
        claim_max: int | None,
        depends: list[tuple[str, int | None]],
        now: datetime,
    ) -> Job | None:
        bound = keys.visible_key(to_iso(now), keys.KEY_HIGH)
        start_key: Item | None = None
        pages_lost = 0  # pages whose every candidate went to other workers
        retired = 0
        while pages_lost < self.settings.claim_max_pages and retired < self.settings.claim_retire_budget:
            e = Expr()
            condition = f"{e.n('TPK')} = {e.v(keys.type_partition(job_type))} AND {e.n('QSK')} <= {e.v(bound)}"
            found, start_key = self.store.query(
                condition, e, index=QUEUE_INDEX, limit=self.settings.claim_candidates, start_key=start_key
            )
            usable: list[_Candidate] = []
            retired_before = retired
            for item in found:
                job = _visible_projection(item, now)
                if job is None:
                    continue
                reason = self._unstartable_reason(job, now, claim_max)
                if reason is not None:
                    self._retire(job.id, reason, now)
                    retired += 1
                else:
                    usable.append(_Candidate(item))
            # Random order among the oldest: concurrent workers rarely pick the same job.
            self.rng.shuffle(usable)
            for candidate in usable:
                leased = self._try_lease(candidate, job_type, worker, timeout_ms, claim_max, depends, now)
                if leased is not None:
                    return leased
            if start_key is None:
                return None
            if retired == retired_before:
                pages_lost += 1
        return None

    def _try_lease(
        self,
        candidate: _Candidate,
        job_type: str,
        worker: str,
        timeout_ms: int,
        claim_max: int | None,
        depends: list[tuple[str, int | None]],
        now: datetime,
    ) -> Job | None:
        token = new_token()
        bound = keys.visible_key(to_iso(now), keys.KEY_HIGH)
        startable = self._startable_condition(now, claim_max)
        job_deps: list[str] = list(candidate.item.get("depends_on") or [])

        def precondition(e: Expr) -> str:
            return f"{e.n('TPK')} = {e.v(keys.type_partition(job_type))} AND {e.n('QSK')} <= {e.v(bound)} AND {startable(e)}"

        def check(job: Job | None) -> None:
            if job is None or job.state not in (JobState.PENDING, JobState.RUNNING):
                raise _Changed()
            reason = self._unstartable_reason(job, now, claim_max)
            if reason is not None:
                self._retire(job.id, reason, now)
                raise _Changed()
            visible_at = job.available_at if job.state is JobState.PENDING else job.locked_until
            if visible_at is None or parse_iso(visible_at) > now:
                raise _Changed()  # taken by another worker: try the next candidate

        # One check per dependency item (a transaction may touch an item once): the job's
        # own dependencies must be finished, the claim's must exist (at their version).
        if any(dep_id == candidate.id for dep_id, _ in depends):
            return None  # a claim cannot depend on the job it would take
        checks: dict[str, _DependencyCheck] = {dep_id: _DependencyCheck(dep_id, must_finish=True) for dep_id in job_deps}
        for dep_id, version in depends:
            entry = checks.setdefault(dep_id, _DependencyCheck(dep_id))
            entry.from_claim, entry.version = True, version

        def dependency_checks(_: str) -> list[Write]:
            writes = []
            for entry in checks.values():
                d = Expr()
                condition = f"attribute_exists({d.n('PK')}) AND {_not_expired(d, now)}"
                if entry.must_finish:
                    condition += f" AND {d.n('state')} = {d.v(FINISHED)}"
                if entry.version is not None:
                    condition += f" AND {d.n('version')} = {d.v(entry.version)}"
                writes.append(Write("check", key=keys.job_key(entry.id), condition=condition, expr=d))
            return writes

        try:
            return self._write(
                candidate.id,
                now,
                precondition=precondition,
                check=check,
                sets=lambda _: self._lease_sets(candidate.id, worker, timeout_ms, now, token),
                increments=("attempts",),
                extra=dependency_checks if checks else None,
            )
        except _Changed:
            self.claim_conflicts += 1
            return None
        except _ExtraWritesFailed as failed:  # only dependency checks ride along with a lease
            return self._dependencies_unmet(candidate, failed.reasons, list(checks.values()), now)

    def _dependencies_unmet(
        self,
        candidate: _Candidate,
        reasons: list[tuple[str, Item | None]],
        checks: list[_DependencyCheck],
        now: datetime,
    ) -> Job | None:
        # reasons[0] is the job itself, then one per dependency check, in order.
        claim_failures = []
        broken = False
        unfinished = False
        for entry, (code, item) in zip(checks, reasons[1:], strict=False):
            if code != "ConditionalCheckFailed":
                continue
            found = _visible(item, now)
            if entry.from_claim and (found is None or (entry.version is not None and found.version != entry.version)):
                reason = "not_found" if found is None else "version_mismatch"
                claim_failures.append({"id": entry.id, "reason": reason, "version": entry.version})
            elif entry.must_finish:
                if found is None or found.state in (JobState.ERROR, JobState.CANCELLED):
                    broken = True
                else:
                    unfinished = True
        if claim_failures:
            raise DependencyFailed("a job this claim depends on is missing or changed", {"failures": claim_failures})
        if broken:
            self._retire(candidate.id, DependencyFailed.code, now)
        elif unfinished:
            self._defer(candidate, now)
        return None

    def _defer(self, candidate: _Candidate, now: datetime) -> None:
        """Put back a job whose dependencies are unfinished, so the head of the queue moves on."""
        later = to_iso(plus_ms(now, self.settings.dependency_poll_ms))
        seen = str(candidate.item.get("QSK", ""))

        def precondition(e: Expr) -> str:
            return f"{e.n('QSK')} = {e.v(seen)} AND {e.n('state')} = {e.v(PENDING)}"

        def check(job: Job | None) -> None:
            if job is None or job.state is not JobState.PENDING or job.available_at != seen.split("#", maxsplit=1)[0]:
                raise _Changed()

        with contextlib.suppress(_Changed, NotFound):
            self._write(
                candidate.id,
                now,
                precondition=precondition,
                check=check,
                sets=lambda _: {"available_at": later, "QSK": keys.visible_key(later, candidate.id)},
            )

    def extend(self, principal: Principal, job_id: str, body: Any) -> Job:
        r = Reader(body, frozenset({"lease_token", "timeout_ms"}))
        token = r.string("lease_token", required=True, max_chars=64)
        timeout_ms = r.integer("timeout_ms", minimum=1, maximum=self.limits.timeout_ms_max) or DEFAULT_TIMEOUT_MS
        r.done()
        assert token is not None
        now = self.clock.now()
        locked_until = to_iso(plus_ms(now, timeout_ms))
        return self._write(
            job_id,
            now,
            precondition=self._lease_condition(token),
            check=lambda job: self._check_lease(job, token),
            sets=lambda _: {"locked_until": locked_until, "QSK": keys.visible_key(locked_until, job_id)},
        )

    def abort(self, principal: Principal, job_id: str, body: Any) -> Job:
        """Release a lease: back to pending, claimable now; the attempt stays counted."""
        r = Reader(body, frozenset({"lease_token"}))
        token = r.string("lease_token", required=True, max_chars=64)
        r.done()
        assert token is not None
        now = self.clock.now()
        lease = self._lease_condition(token)

        def check(job: Job | None) -> None:
            self._check_lease(job, token)
            if job is not None and job.cancel_requested:
                raise _CancelInstead()

        try:
            return self._write(
                job_id,
                now,
                precondition=lambda e: f"{lease(e)} AND {e.n('cancel_requested')} = {e.v(False)}",
                check=check,
                sets=lambda _: {
                    "state": PENDING,
                    "available_at": to_iso(now),
                    "QSK": keys.visible_key(to_iso(now), job_id),
                },
                removes=("lease_token", "lease_owner", "locked_until"),
            )
        except _CancelInstead:
            return self._finish_leased(job_id, token, now, CANCELLED)

    def _finish_leased(
        self,
        job_id: str,
        token: str,
        now: datetime,
        state: str,
        *,
        error: dict[str, str] | None = None,
        result: Any = None,
        with_result: bool = False,
    ) -> Job:
        sets = self._terminal_sets(state, now, error)
        if with_result:
            sets["result"] = dump_json(result)
        job = self._write(
            job_id,
            now,
            precondition=self._lease_condition(token),
            check=lambda job: self._check_lease(job, token),
            sets=lambda _: sets,
            removes=self.TERMINAL_REMOVES,
        )
        return self._after_terminal(job)

    def complete(self, principal: Principal, job_id: str, body: Any) -> Job:
        r = Reader(body, frozenset({"lease_token", "result"}))
        token = r.string("lease_token", max_chars=64)
        result = r.json_value("result", max_bytes=self.limits.result_bytes)
        r.done()
        now = self.clock.now()
        if token is None:
            sets = self._terminal_sets(FINISHED, now)
            sets["result"] = dump_json(result)
            job = self._write(
                job_id,
                now,
                precondition=self._unleased_condition,
                check=self._check_unleased,
                sets=lambda _: sets,
                removes=("QSK", "locked_until", "error"),
            )
            return self._after_terminal(job)
        try:
            return self._finish_leased(job_id, token, now, FINISHED, result=result, with_result=True)
        except AlreadyFinished:
            # A retried complete from the worker that finished it answers as the first did.
            finished = self._load(job_id, now)
            if finished is not None and finished.state is JobState.FINISHED and finished.lease_token == token:
                return finished
            raise

    def fail(self, principal: Principal, job_id: str, body: Any) -> Job:
        """Report a failed attempt: back to pending after a delay while retries remain
        (``retry_in_ms``, else exponential backoff with jitter), otherwise ``error``."""
        r = Reader(body, frozenset({"lease_token", "error", "retry_in_ms", "retry"}))
        token = r.string("lease_token", required=True, max_chars=64)
        retry_in_ms = r.integer("retry_in_ms", minimum=0, maximum=self.limits.delay_ms_max)
        retry = r.boolean("retry", default=True)
        error = self._read_error(r)
        r.done()
        assert token is not None
        now = self.clock.now()
        for _ in range(MAX_WRITE_ATTEMPTS):
            job = self._load(job_id, now)
            self._check_lease(job, token)
            assert job is not None
            if job.cancel_requested:
                return self._finish_leased(job_id, token, now, CANCELLED, error=error)
            delay = retry_in_ms if retry_in_ms is not None else self._backoff_ms(job.attempts)
            retry_at = plus_ms(now, delay)
            if not retry or not _retries_left(job.attempts, job.max_retries, None) or _past_deadline(job.execute_until, retry_at):
                return self._finish_leased(job_id, token, now, ERROR, error=error)
            seen_version = job.version
            lease = self._lease_condition(token)
            try:
                return self._write(
                    job_id,
                    now,
                    precondition=lambda e: f"{lease(e)} AND {e.n('version')} = {e.v(seen_version)}",
                    check=lambda current: self._check_lease_unchanged(current, token, seen_version),
                    sets=lambda _: {
                        "state": PENDING,
                        "error": dump_json(error),
                        "available_at": to_iso(retry_at),
                        "QSK": keys.visible_key(to_iso(retry_at), job_id),
                    },
                    removes=("lease_token", "lease_owner", "locked_until"),
                )
            except _Changed:
                continue  # extended or cancel-requested meanwhile: decide again
        raise ServiceUnavailable(f"job {job_id} kept changing; retry")

    def _check_lease_unchanged(self, job: Job | None, token: str, version: int) -> None:
        self._check_lease(job, token)
        if job is not None and job.version != version:
            raise _Changed()

    def _backoff_ms(self, attempts: int) -> int:
        """Exponential in the attempts made, capped, with "equal jitter": half fixed, half random."""
        ceiling = min(self.settings.backoff_cap_ms, self.settings.backoff_base_ms * 2 ** max(0, min(attempts - 1, 30)))
        return int(ceiling // 2 + self.rng.randint(0, ceiling - ceiling // 2))

    def _read_error(self, r: Reader) -> dict[str, str]:
        value = r.raw("error")
        if value is None:
            return {"code": "failed", "message": "the worker reported a failure"}
        er = Reader(value, frozenset({"code", "message"}), prefix="error.")
        code = er.string("code", required=True, max_chars=self.limits.name_chars)
        message = er.string("message", max_chars=self.limits.error_message_chars)
        r.problems.update(er.problems)
        return {"code": code or "failed", "message": message or ""}

    # ======================================================================================
    # cancel
    # ======================================================================================
    def cancel(self, principal: Principal, job_id: str) -> Job:
        """idle/pending (or running with an expired lease): cancelled now. running: sets
        ``cancel_requested`` for the worker to see. finished: no change."""
        now = self.clock.now()

        def owned(e: Expr) -> str:
            if principal.is_user:
                return f" AND {e.n('owner')} = {e.v(principal.sub)}"
            return ""

        def precondition(e: Expr) -> str:
            # No parentheses around the whole: DynamoDB refuses redundant ones.
            unleased = (
                f"{e.n('state')} IN ({e.v(IDLE)}, {e.v(PENDING)}) OR "
                f"({e.n('state')} = {e.v(RUNNING)} AND {e.n('locked_until')} <= {e.v(to_iso(now))})"
            )
            return f"({unleased}){owned(e)}" if principal.is_user else unleased

        def check(job: Job | None) -> None:
            if job is None or not principal.may_see(job.owner):
                raise NotFound(f"job {job_id} not found")
            if job.state.terminal:
                raise _AlreadyDone(job)
            if job.state is JobState.RUNNING and not _lease_free(job, now):
                raise _RequestCancel()

        for _ in range(MAX_WRITE_ATTEMPTS):
            try:
                job = self._write(
                    job_id,
                    now,
                    precondition=precondition,
                    check=check,
                    sets=lambda _: self._terminal_sets(CANCELLED, now),
                    removes=self.TERMINAL_REMOVES,
                )
                return self._after_terminal(job)
            except _AlreadyDone as done:
                return done.job
            except _RequestCancel:
                pass

            def running_precondition(e: Expr) -> str:
                return f"{e.n('state')} = {e.v(RUNNING)} AND {e.n('locked_until')} > {e.v(to_iso(now))}{owned(e)}"

            def running_check(job: Job | None) -> None:
                if job is None or not principal.may_see(job.owner):
                    raise NotFound(f"job {job_id} not found")
                if job.state.terminal:
                    raise _AlreadyDone(job)
                if job.state is not JobState.RUNNING or _lease_free(job, now):
                    raise _Changed()  # the lease ran out meanwhile: cancel it outright

            try:
                return self._write(
                    job_id, now, precondition=running_precondition, check=running_check, sets=lambda _: {"cancel_requested": True}
                )
            except _AlreadyDone as done:
                return done.job
            except _Changed:
                continue
        raise ServiceUnavailable(f"job {job_id} kept changing; retry")

    # ======================================================================================
    # status posts and the message log
    # ======================================================================================
    def post_status(self, principal: Principal, job_id: str, body: Any) -> Job:
        """Title, status, progress, speeds, an appended message and completion in one write
        (plus the message item, in the same transaction); with ``extend_ms`` also the
        lease holder's heartbeat."""
        lim = self.limits
        r = Reader(body, STATUS_FIELDS)
        title = r.string("new_title", max_chars=lim.title_chars)
        status = r.string("new_status", max_chars=lim.status_chars)
        message = r.string("message_to_append", max_chars=lim.message_chars)
        complete = r.boolean("complete")
        token = r.string("lease_token", max_chars=64)
        extend_ms = r.integer("extend_ms", minimum=1, maximum=lim.timeout_ms_max)
        progress = self._read_progress(r)
        speeds = self._read_speeds(r)
        if extend_ms is not None and token is None:
            r.problem("extend_ms", "only the lease holder may extend: send lease_token")
        r.done()
        now = self.clock.now()

        def sets(stamp: str) -> dict[str, Any]:
            values: dict[str, Any] = {}
            if title is not None:
                values["title"] = title
            if status is not None:
                values["status"] = status
            if progress is not None:
                values["progress"] = dump_json(progress)
            if speeds is not None:
                values["speeds"] = dump_json(speeds)
            if message is not None:
                values["last_message"] = message
            if complete:
                values.update(self._terminal_sets(FINISHED, now))
            elif extend_ms is not None:
                locked_until = to_iso(plus_ms(now, extend_ms))
                values["locked_until"] = locked_until
                values["QSK"] = keys.visible_key(locked_until, job_id)
            return values

        def message_write(stamp: str) -> list[Write]:
            if message is None:
                return []
            m = Expr()
            entry = {
                **keys.message_key(job_id, stamp),
                "message": message,
                "at": stamp,
                "expires_at": epoch_seconds(plus_ms(now, self.settings.message_retention_ms)),
            }
            return [Write("put", item=entry, condition=f"attribute_not_exists({m.n('SK')})", expr=m)]

        def check_lease(job: Job | None) -> None:
            assert token is not None
            self._check_lease(job, token)

        if token is not None:
            precondition, check = self._lease_condition(token), check_lease
        else:
            precondition, check = self._unleased_condition, self._check_unleased
        try:
            job = self._write(
                job_id,
                now,
                precondition=precondition,
                check=check,
                sets=sets,
                removes=self.TERMINAL_REMOVES if complete else (),
                increments=("msg_count",) if message is not None else (),
                extra=message_write if message is not None else None,
            )
        except _ExtraWritesFailed as failed:
            raise ServiceUnavailable("the message could not be stored; retry") from failed
        return self._after_terminal(job) if complete else job

    def _read_progress(self, r: Reader) -> dict[str, Any] | None:
        value = r.raw("progress")
        if value is None:
            return None
        pr = Reader(value, frozenset({"title", "current", "maximum"}), prefix="progress.")
        title = pr.string("title", max_chars=self.limits.title_chars)
        numbers = {}
        for name in ("current", "maximum"):
            number = pr.raw(name)
            if number is not None and (isinstance(number, bool) or not isinstance(number, (int, float)) or number < 0):
                pr.problem(name, "must be a number, at least 0")
            numbers[name] = number
        r.problems.update(pr.problems)
        return {"title": title, **numbers}

    def _read_speeds(self, r: Reader) -> list[dict[str, Any]] | None:
        value = r.raw("speeds")
        if value is None:
            return None
        if not isinstance(value, list) or len(value) > self.limits.speeds:
            r.problem("speeds", f"must be a list of at most {self.limits.speeds} speeds")
            return None
        speeds = []
        for i, entry in enumerate(value):
            sr = Reader(entry, frozenset({"title", "speed", "unit", "as_text"}), prefix=f"speeds[{i}].")
            title = sr.string("title", required=True, max_chars=self.limits.title_chars)
            unit = sr.string("unit", max_chars=64)
            as_text = sr.string("as_text", max_chars=self.limits.title_chars)
            speed = sr.raw("speed")
            if isinstance(speed, bool) or not isinstance(speed, (int, float)):
                sr.problem("speed", "must be a number")
            r.problems.update(sr.problems)
            speeds.append({"title": title, "speed": speed, "unit": unit, "as_text": as_text})
        return speeds

    def messages(self, principal: Principal, job_id: str, query: Mapping[str, Any]) -> Page[Message]:
        r = Reader(query, frozenset({"limit", "cursor"}), text_values=True)
        limit = self._read_limit(r)
        cursor = r.string("cursor", max_chars=2048)
        r.done()
        self.get(principal, job_id)
        e = Expr()
        condition = f"{e.n('PK')} = {e.v(keys.job_key(job_id)['PK'])} AND begins_with({e.n('SK')}, {e.v(keys.MESSAGE_PREFIX)})"
        page = self._page(condition, e, index=None, limit=limit, cursor=cursor, forward=True, consistent=True)
        return Page([Message(str(i["message"]), str(i["at"])) for i in page.data], page.next_cursor)

    # ======================================================================================
    # listings
    # ======================================================================================
    def _read_limit(self, r: Reader) -> int:
        return r.integer("limit", minimum=1, maximum=self.limits.list_limit_max) or self.limits.list_limit_default

    def _page(
        self,
        key_condition: str,
        e: Expr,
        *,
        index: str | None,
        limit: int,
        cursor: str | None,
        forward: bool,
        filter_expression: str | None = None,
        consistent: bool = False,
    ) -> Page[Item]:
        """One page of a Query: up to ``limit`` items, and a cursor exactly when more exist.

        It asks for one item more than the page holds, so a full last page is not followed
        by an empty one. Filters may drop items, so it reads on until the page is full.
        """
        start_key = decode_cursor(index or "table", cursor) if cursor else None
        kept: list[Item] = []
        while True:
            found, last = self.store.query(
                key_condition,
                e,
                index=index,
                limit=limit + 1 - len(kept),
                start_key=start_key,
                forward=forward,
                filter_expression=filter_expression,
                consistent=consistent,
            )
            kept.extend(found)
            if len(kept) > limit or last is None:
                break
            start_key = last
        if len(kept) > limit:
            kept = kept[:limit]
            next_cursor = encode_cursor(index or "table", _key_of(kept[-1], index))
        else:
            next_cursor = None
        return Page(kept, next_cursor)

    def list_jobs(self, principal: Principal, query: Mapping[str, Any]) -> Page[Job]:
        """Newest first, from the index its filters select; a user sees only own jobs."""
        r = Reader(query, LIST_FIELDS, text_values=True)
        job_type = r.string("type", max_chars=self.limits.name_chars)
        ref_id = r.string("ref_id", max_chars=self.limits.name_chars)
        owner = r.string("owner", max_chars=self.limits.name_chars)
        state = r.choice("state", tuple(s.value for s in JobState))
        created_from = r.time("created_from")
        created_to = r.time("created_to")
        limit = self._read_limit(r)
        cursor = r.string("cursor", max_chars=2048)
        r.done()
        now = self.clock.now()
        if principal.is_user:
            if owner is not None and owner != principal.sub:
                return Page([], None)
            owner = principal.sub

        # Both bounds inclusive: "<time>#~" sorts after every id created in that millisecond.
        low = to_iso(created_from) if created_from else None
        high = to_iso(created_to) + "#" + keys.KEY_HIGH if created_to else None

        def query_of(e: Expr, partition_attr: str, partition: str, extra: list[str], upper: str | None) -> tuple[str, str]:
            """The key condition and the filter of one Query of this listing."""
            filters = [_not_expired(e, now), *extra]
            if state is not None:
                filters.append(f"{e.n('state')} = {e.v(state)}")
            key_condition = f"{e.n(partition_attr)} = {e.v(partition)}"
            if low and upper:
                key_condition += f" AND {e.n('CSK')} BETWEEN {e.v(low)} AND {e.v(upper)}"
            elif low:
                key_condition += f" AND {e.n('CSK')} >= {e.v(low)}"
            elif upper:
                key_condition += f" AND {e.n('CSK')} <= {e.v(upper)}"
            return key_condition, " AND ".join(filters)

        if low and high and low > high:
            return Page([], None)  # DynamoDB refuses a BETWEEN whose bounds are reversed
        if owner is None and job_type is None:
            return self._list_all(query_of, ref_id, low, high, limit, cursor)
        e = Expr()
        extra: list[str] = []
        if owner is not None:
            index, partition_attr, partition = OWNER_INDEX, "OPK", keys.owner_partition(owner)
            if job_type is not None:
                extra.append(f"{e.n('type')} = {e.v(job_type)}")
            if ref_id is not None:
                extra.append(f"{e.n('ref_id')} = {e.v(ref_id)}")
        elif job_type is not None and ref_id is not None:
            index, partition_attr, partition = REF_INDEX, "RPK", keys.ref_partition(job_type, ref_id)
        else:
            assert job_type is not None
            index, partition_attr, partition = TYPE_INDEX, "TPK", keys.type_partition(job_type)
        key_condition, filter_expression = query_of(e, partition_attr, partition, extra, high)
        page = self._page(
            key_condition, e, index=index, limit=limit, cursor=cursor, forward=False, filter_expression=filter_expression
        )
        return Page([Job.from_item(i) for i in page.data], page.next_cursor)

    def _list_all(
        self,
        query_of: Callable[[Expr, str, str, list[str], str | None], tuple[str, str]],
        ref_id: str | None,
        low: str | None,
        high: str | None,
        limit: int,
        cursor: str | None,
    ) -> Page[Job]:
        """A listing with no owner or type: one page from each all-created partition, merged
        newest first. The cursor is the last job's CSK: the next page reads below it."""
        after = str(decode_cursor(MERGED_ALL_CURSOR, cursor).get("CSK", "")) if cursor else None
        upper = min(high, after) if high and after else (after or high)
        if low and upper and low > upper:
            return Page([], None)
        found: list[Item] = []
        for partition in keys.all_partitions():
            e = Expr()
            extra = [f"{e.n('ref_id')} = {e.v(ref_id)}"] if ref_id is not None else []
            condition, filter_expression = query_of(e, "APK", partition, extra, upper)
            # One more than the page: the item at the cursor itself comes back (the bound is
            # inclusive) and is dropped below.
            page = self._page(
                condition, e, index=ALL_INDEX, limit=limit + 1, cursor=None, forward=False, filter_expression=filter_expression
            )
            found += [i for i in page.data if i["CSK"] != after]
        found.sort(key=lambda i: str(i["CSK"]), reverse=True)
        kept = found[:limit]
        next_cursor = encode_cursor(MERGED_ALL_CURSOR, {"CSK": kept[-1]["CSK"]}) if len(found) > limit else None
        return Page([Job.from_item(i) for i in kept], next_cursor)

    def queues(self, query: Mapping[str, Any]) -> Page[str]:
        """Queue names (taskstore groups), in name order."""
        r = Reader(query, frozenset({"limit", "cursor"}), text_values=True)
        limit = self._read_limit(r)
        cursor = r.string("cursor", max_chars=2048)
        r.done()
        e = Expr()
        page = self._page(f"{e.n('PK')} = {e.v(keys.QUEUES_PK)}", e, index=None, limit=limit, cursor=cursor, forward=True)
        return Page([str(i["type"]) for i in page.data], page.next_cursor)

    def queue_jobs(self, job_type: str, query: Mapping[str, Any]) -> Page[Job]:
        """Claimable jobs of a queue, oldest first; ``include_leased`` adds running ones."""
        r = Reader(query, frozenset({"limit", "cursor", "include_leased"}), text_values=True)
        limit = self._read_limit(r)
        cursor = r.string("cursor", max_chars=2048)
        include_leased = r.boolean("include_leased")
        self._check_queue_name(r, job_type)
        r.done()
        now = self.clock.now()
        bound = keys.visible_key(to_iso(now), keys.KEY_HIGH)
        e = Expr()
        key_condition = f"{e.n('TPK')} = {e.v(keys.type_partition(job_type))}"
        filters = [_not_expired(e, now)]
        if include_leased:
            filters.append(f"({e.n('QSK')} <= {e.v(bound)} OR {e.n('state')} = {e.v(RUNNING)})")
        else:
            key_condition += f" AND {e.n('QSK')} <= {e.v(bound)}"
        page = self._page(
            key_condition, e, index=QUEUE_INDEX, limit=limit, cursor=cursor, forward=True, filter_expression=" AND ".join(filters)
        )
        # The queue index holds only what claims need: fetch the jobs themselves.
        by_id = {i["id"]: i for i in self.store.batch_get([keys.job_key(str(i["id"])) for i in page.data])} if page.data else {}
        jobs = [_visible(by_id.get(i["id"]), now) for i in page.data]
        return Page([j for j in jobs if j is not None], page.next_cursor)

    # ======================================================================================
    # patch and delete
    # ======================================================================================
    def patch(self, principal: Principal, job_id: str, body: Any, *, if_match: int | None = None) -> Job:
        """Set fields of an idle or pending job (api.job setJob); ``if_match`` is a version."""
        lim = self.limits
        r = Reader(body, PATCH_FIELDS)
        changes: dict[str, Any] = {}
        for name, max_chars in (("title", lim.title_chars), ("status", lim.status_chars), ("owner", lim.name_chars)):
            if r.has(name):
                changes[name] = r.string(name, max_chars=max_chars)
        if r.has("params"):
            changes["params"] = r.json_value("params", max_bytes=lim.params_bytes)
        if r.has("result"):
            changes["result"] = r.json_value("result", max_bytes=lim.result_bytes)
        if r.has("state"):
            changes["state"] = r.choice("state", (IDLE, PENDING))
            if changes["state"] is None:
                r.problem("state", "one of idle, pending")
        r.done()
        now = self.clock.now()
        for _ in range(MAX_WRITE_ATTEMPTS):
            job = self._load(job_id, now)
            self._check_unleased(job)
            assert job is not None
            if if_match is not None and job.version != if_match:
                raise VersionMismatch(f"job {job_id} is at version {job.version}", {"version": job.version})
            item = self.store.get(keys.job_key(job_id)) or {}
            updated = self._apply_changes(item, changes)
            seen_version = job.version
            try:
                return self._write(
                    job_id,
                    now,
                    precondition=lambda e: f"{e.n('version')} = {e.v(seen_version)}",
                    check=lambda current: self._check_version(current, seen_version, if_match),
                    sets=lambda _: {k: updated[k] for k in updated if k not in ("PK", "SK", "version", "modified")},
                    removes=[k for k in item if k not in updated],
                )
            except _Changed:
                continue
        raise ServiceUnavailable(f"job {job_id} kept changing; retry")

    def _apply_changes(self, item: Item, changes: Mapping[str, Any]) -> Item:
        """The item after setting wire fields; index attributes follow state and owner."""
        updated = {k: v for k, v in item.items() if k not in keys.INDEX_ATTRIBUTES}
        for name, value in changes.items():
            stored = dump_json(value) if name in ("params", "result") and value is not None else value
            if stored is None:
                updated.pop(name, None)
            else:
                updated[name] = stored
        updated.update(keys.index_attributes(updated))
        return updated

    def _check_version(self, job: Job | None, version: int, if_match: int | None) -> None:
        self._check_unleased(job)
        if job is not None and job.version != version:
            if if_match is not None:
                raise VersionMismatch(f"job {job.id} is at version {job.version}", {"version": job.version})
            raise _Changed()

    def delete(self, principal: Principal, job_id: str) -> Job:
        """Delete a job, its unique guard and its message log; returns the job as it was."""
        now = self.clock.now()
        if not is_job_id(job_id):
            raise NotFound(f"job {job_id} not found")
        old = self.store.delete(keys.job_key(job_id))
        job = _visible(old, now)
        if job is None:
            raise NotFound(f"job {job_id} not found")
        self._after_terminal(job)
        self._delete_messages(job_id)
        return job

    def _delete_messages(self, job_id: str) -> None:
        start: Item | None = None
        while True:
            e = Expr()
            condition = (
                f"{e.n('PK')} = {e.v(keys.job_key(job_id)['PK'])} AND begins_with({e.n('SK')}, {e.v(keys.MESSAGE_PREFIX)})"
            )
            found, start = self.store.query(condition, e, limit=100, start_key=start)
            self.store.batch_delete([{"PK": i["PK"], "SK": i["SK"]} for i in found])
            if start is None:
                return

    def delete_all(self, *, max_items: int = 5000) -> DeleteResult:
        """Delete every item (Pip deleteJobs), at most ``max_items`` per call; call again while ``more``."""
        deleted, more = self._sweep(lambda item, now: True, max_items)
        return DeleteResult(deleted, more)

    def clean(self, *, max_items: int = 5000) -> DeleteResult:
        """Delete what has expired (finished past retention, guards, idempotency records)
        and idle or pending jobs past their deadline (Pip cleanJobs), before TTL would."""

        def expired(item: Item, now: datetime) -> bool:
            expires = item.get("expires_at")
            if expires is not None and int(expires) <= epoch_seconds(now):
                return True
            return (
                item.get("SK") == keys.JOB_SK
                and item.get("state") in (IDLE, PENDING)
                and _past_deadline(item.get("execute_until"), now)
            )

        deleted, more = self._sweep(expired, max_items)
        return DeleteResult(deleted, more)

    def _sweep(self, doomed: Callable[[Item, datetime], bool], max_items: int) -> tuple[int, bool]:
        """Scan (only here) and delete matching items; returns jobs deleted and whether more remain."""
        now = self.clock.now()
        start: Item | None = None
        scanned = 0
        jobs_deleted = 0
        while True:
            found, start = self.store.scan(limit=min(500, max_items), start_key=start)
            scanned += len(found)
            victims = [i for i in found if doomed(i, now)]
            self.store.batch_delete([{"PK": i["PK"], "SK": i["SK"]} for i in victims])
            for item in victims:
                if item.get("SK") == keys.JOB_SK:
                    jobs_deleted += 1
                    if item.get("unique_key"):
                        self._release_guard(guard_pk=str(item["unique_key"]), job_id=str(item["id"]))
            if start is None:
                return jobs_deleted, False
            if scanned >= max_items:
                return jobs_deleted, True

    # ======================================================================================
    # atomic batches (taskstore modify)
    # ======================================================================================
    def batch(self, principal: Principal, body: Any) -> BatchResult:
        """Creates, updates, deletes and dependency checks, all or nothing.

        Every constraint is checked against one consistent read first, so a 409 names every
        failure at once; the transaction then re-checks each by condition, so nothing that
        changed in between can slip through.
        """
        lim = self.limits
        r = Reader(body, frozenset({"create", "update", "delete", "depends"}))
        ops: dict[str, list[Any]] = {}
        for name in ("create", "update", "delete", "depends"):
            value = r.raw(name, [])
            if not isinstance(value, list):
                r.problem(name, "must be a list")
                value = []
            ops[name] = value
        total = sum(len(v) for v in ops.values())
        if total == 0:
            r.problem("body", "at least one of create, update, delete, depends")
        if total > lim.batch_ops:
            r.problem("body", f"at most {lim.batch_ops} operations in all, got {total}")
        r.done()
        now = self.clock.now()

        new_items: list[tuple[Item, bool]] = []
        for i, entry in enumerate(ops["create"]):
            try:
                new_items.append(self._new_job_item(principal, entry, now, prefix=f"create[{i}]."))
            except InvalidRequest as bad:
                r.problems.update(bad.details.get("fields", {}))
        updates = self._read_batch_refs(r, "update", ops["update"], PATCH_FIELDS | {"available_at"}, version_required=True)
        deletes = self._read_batch_refs(r, "delete", ops["delete"], frozenset(), version_required=False)
        depends = self._read_batch_refs(r, "depends", ops["depends"], frozenset(), version_required=False)
        ids = [ref[0] for group in (updates, deletes, depends) for ref in group]
        # A transaction may touch an item once: the jobs named, the jobs new jobs depend
        # on, and the unique guards of new jobs must all be distinct.
        touched = ids + [dep for item, _ in new_items for dep in item.get("depends_on", [])]
        repeated = sorted({i for i in touched if touched.count(i) > 1})
        if repeated:
            r.problem("body", f"a job may appear in one operation only: {', '.join(repeated)}")
        guards = [str(item["unique_key"]) for item, unique in new_items if unique]
        if len(guards) != len(set(guards)):
            r.problem("create", "two unique creates with the same type and ref_id")
        r.done()

        reads = [keys.job_key(i) for i in ids] + [{"PK": g, "SK": "UNIQ"} for g in guards]
        found = self.store.batch_get(reads) if reads else []
        current = {i["id"]: i for i in found if i.get("SK") == keys.JOB_SK}
        live_guards = {str(i["PK"]): i for i in found if i.get("SK") == "UNIQ" and _visible_guard(i, now)}
        failures: list[dict[str, Any]] = []
        for item, unique in new_items:
            guard = live_guards.get(str(item.get("unique_key")))
            if unique and guard is not None:
                failures.append({"op": "create", "id": item["id"], "reason": "duplicate", "existing_id": guard.get("job_id")})
        writes: list[Write] = []
        origins: list[tuple[str, str]] = []  # (op, id) of each write, for naming failures
        updated_items: list[Item] = []

        for item, unique in new_items:
            for w in self._create_writes(item, unique, now):
                writes.append(w)
                origins.append(("create", item["id"]))
        for job_id, version, changes in updates:
            job = _visible(current.get(job_id), now)
            problem = self._batch_problem(job, version, unleased=True)
            if problem:
                failures.append({"op": "update", "id": job_id, "reason": problem})
                continue
            assert job is not None
            item = self._apply_changes(current[job_id], changes)
            if "available_at" in changes:
                item.update(keys.index_attributes(item))
            item["version"] = job.version + 1
            item["modified"] = to_iso(max(now, plus_ms(parse_iso(job.modified), 1)))
            updated_items.append(item)
            e = Expr()
            writes.append(
                Write("put", item=item, condition=f"{e.n('version')} = {e.v(job.version)} AND {_not_expired(e, now)}", expr=e)
            )
            origins.append(("update", job_id))
        for group, kind in ((deletes, "delete"), (depends, "depends")):
            for job_id, version, _ in group:
                job = _visible(current.get(job_id), now)
                problem = self._batch_problem(job, version, unleased=False)
                if problem:
                    failures.append({"op": kind, "id": job_id, "reason": problem})
                    continue
                assert job is not None
                e = Expr()
                condition = f"{e.n('version')} = {e.v(job.version)} AND {_not_expired(e, now)}"
                writes.append(
                    Write("delete" if kind == "delete" else "check", key=keys.job_key(job_id), condition=condition, expr=e)
                )
                origins.append((kind, job_id))
        if len(writes) > lim.batch_ops:
            raise InvalidRequest.fields({"body": f"the batch needs {len(writes)} writes; at most {lim.batch_ops}"})
        if failures:
            raise BatchConflict(f"{len(failures)} constraint(s) failed; nothing was written", {"failures": failures})
        try:
            self.store.transact(writes)
        except TransactionCanceled as canceled:
            for (kind, job_id), reason in zip(origins, canceled.reasons, strict=False):
                if reason.code == "ConditionalCheckFailed":
                    failures.append({"op": kind, "id": job_id, "reason": self._batch_failure_reason(kind, reason.item, now)})
            raise BatchConflict(f"{len(failures)} constraint(s) failed; nothing was written", {"failures": failures}) from None
        for item, _ in new_items:
            queue_write = self._queue_name_write(item["type"])
            if queue_write and queue_write.item:
                self.store.put(queue_write.item)
                self._known_queues.add(item["type"])
        for job_id, _, _ in deletes:
            old = _visible(current.get(job_id), now)
            if old is not None:
                self._after_terminal(old)
                self._delete_messages(job_id)
        return BatchResult(
            created=[Job.from_item(i) for i, _ in new_items],
            updated=[Job.from_item(i) for i in updated_items],
            deleted=[ref[0] for ref in deletes],
        )

    def _read_batch_refs(
        self, r: Reader, op: str, entries: list[Any], fields: frozenset[str], *, version_required: bool
    ) -> list[tuple[str, int | None, dict[str, Any]]]:
        refs = []
        for i, entry in enumerate(entries):
            er = Reader(entry, fields | {"id", "version"}, prefix=f"{op}[{i}].")
            job_id = er.string("id", required=True, max_chars=26)
            if job_id and not is_job_id(job_id):
                er.problem("id", "not a job id")
            version = er.integer("version", required=version_required, minimum=1)
            changes: dict[str, Any] = {}
            for name in fields:
                if er.has(name):
                    if name == "available_at":
                        moment = er.time(name)
                        changes[name] = to_iso(moment) if moment else None
                    elif name in ("params", "result"):
                        changes[name] = er.json_value(name, max_bytes=self.limits.params_bytes)
                    elif name == "state":
                        changes[name] = er.choice(name, (IDLE, PENDING), default=PENDING)
                    else:
                        changes[name] = er.string(name, max_chars=self.limits.status_chars)
            r.problems.update(er.problems)
            if job_id and not er.problems:
                refs.append((job_id, version, changes))
        return refs

    @staticmethod
    def _batch_problem(job: Job | None, version: int | None, *, unleased: bool) -> str | None:
        if job is None:
            return "not_found"
        if version is not None and job.version != version:
            return "version_mismatch"
        if unleased and job.state.terminal:
            return "already_finished"
        if unleased and job.state is JobState.RUNNING:
            return "lease_held"
        return None

    @staticmethod
    def _batch_failure_reason(kind: str, item: Item | None, now: datetime) -> str:
        if kind == "create":
            if item and str(item.get("PK", "")).startswith("UNIQ#"):
                return "duplicate"
            return "not_found" if item is None else "conflict"
        return "not_found" if _visible(item, now) is None else "version_mismatch"


class _Changed(Exception):
    """Internal: the job changed under a write that only applies to what was seen."""


class _CancelInstead(Exception):
    """Internal: the job was asked to cancel, so releasing it cancels it."""


class _RequestCancel(Exception):
    """Internal: the job is running under a live lease; cancelling only requests it."""


class _AlreadyDone(Exception):
    def __init__(self, job: Job) -> None:
        super().__init__(job.id)
        self.job = job


class _ExtraWritesFailed(Exception):
    """Internal: the job's own condition held, but another write of its transaction failed."""

    def __init__(self, reasons: list[tuple[str, Item | None]]) -> None:
        super().__init__("transaction canceled")
        self.reasons = reasons


_INDEX_KEYS: dict[str | None, tuple[str, ...]] = {
    None: ("PK", "SK"),
    QUEUE_INDEX: ("PK", "SK", "TPK", "QSK"),
    OWNER_INDEX: ("PK", "SK", "OPK", "CSK"),
    TYPE_INDEX: ("PK", "SK", "TPK", "CSK"),
    REF_INDEX: ("PK", "SK", "RPK", "CSK"),
    ALL_INDEX: ("PK", "SK", "APK", "CSK"),
}


def _visible_guard(item: Item, now: datetime) -> bool:
    expires = item.get("expires_at")
    return expires is None or int(expires) > epoch_seconds(now)


def _key_of(item: Item, index: str | None) -> Item:
    """The ExclusiveStartKey that continues a Query after this item."""
    return {name: item[name] for name in _INDEX_KEYS[index]}


@dataclass
class _DependencyCheck:
    id: str
    must_finish: bool = False  # one of the job's own depends_on
    from_claim: bool = False  # named by the claim's depends
    version: int | None = None


_ABSENT = object()


@dataclass
class _Projection:
    """What the queue index shows of a job; enough to decide whether it may start."""

    id: str
    state: JobState
    attempts: int
    max_retries: int | None
    execute_until: str | None
    cancel_requested: bool


def _visible_projection(item: Item, now: datetime) -> _Projection | None:
    expires = item.get("expires_at")
    if expires is not None and int(expires) <= epoch_seconds(now):
        return None
    return _Projection(
        id=str(item["id"]),
        state=JobState(item["state"]),
        attempts=int(item.get("attempts", 0)),
        max_retries=int(item["max_retries"]) if item.get("max_retries") is not None else None,
        execute_until=item.get("execute_until"),
        cancel_requested=bool(item.get("cancel_requested", False)),
    )
