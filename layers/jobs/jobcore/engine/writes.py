"""The one conditional write every transition of a job goes through.

A transition (rules.py) says when the write may apply; when DynamoDB refuses it, the item
as it was (ALL_OLD) goes to the transition's check, which names the error. Every write
bumps `version` and moves `modified` strictly forward: if another writer's clock ran ahead,
the write is made again just after it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

from msgspec import Struct, field

from .. import keys
from ..clock import epoch_seconds, parse_iso, plus_ms, to_iso
from ..errors import NotFound, ServiceUnavailable
from ..model import Job, JobState, Principal
from ..rules import GUARD_OF, Behind, Transition
from ..store import ConditionFailed, Expr, Item, TransactionCanceled, Write
from ..wire import encode_json
from .context import Context, now_values
from .scope import scope_condition

# Each round of concurrent writers to one job lets at least one through, so this bounds
# how many writers may race on one job before one of them is told to retry (503).
MAX_WRITE_ATTEMPTS = 12
TERMINAL_REMOVES = ("QSK", "locked_until")


class Change(Struct, frozen=True):
    """What a write sets (given its `modified` stamp), removes and adds one to; and the other
    writes of its transaction (a message log entry, dependency checks)."""

    sets: Callable[[str], Mapping[str, Any]] | Mapping[str, Any] = field(default_factory=dict)
    removes: Iterable[str] = ()
    increments: Iterable[str] = ()
    extra: Callable[[str], list[Write]] | None = None

    def values(self, stamp: str) -> Mapping[str, Any]:
        return self.sets(stamp) if callable(self.sets) else self.sets


class ExtraWritesFailed(Exception):
    """The job's own condition held, but another write of its transaction failed."""

    def __init__(self, reasons: list[tuple[str, Item | None]]) -> None:
        super().__init__("transaction canceled")
        self.reasons = reasons


def visible(item: Item | None, now: datetime) -> Job | None:
    """The job, unless missing or past its expiry (TTL deletes late; we treat it as gone)."""
    if not item or item.get("SK") != keys.JOB_SK:
        return None
    expires = item.get("expires_at")
    if expires is not None and int(expires) <= epoch_seconds(now):
        return None
    return Job.from_item(item)


def write(ctx: Context, job_id: str, rule: Transition, given: Mapping[str, Any], change: Change, now: datetime, *,
          scope: Principal | None = None) -> Job:  # fmt: skip
    """Apply one transition to a job; the job as it is after it. With `scope`, only to a job of
    a queue that caller reaches (another queue's job is NotFound, as a missing one)."""
    job = _apply(ctx, job_id, rule, given, change, now, read_back=True, scope=scope)
    assert job is not None
    return job


def write_only(ctx: Context, job_id: str, rule: Transition, given: Mapping[str, Any], change: Change, now: datetime) -> None:
    """Apply one transition to a job without reading it back (a transaction returns nothing:
    bulk operations save the GetItem per job)."""
    _apply(ctx, job_id, rule, given, change, now, read_back=False)


def _apply(ctx: Context, job_id: str, rule: Transition, given: Mapping[str, Any], change: Change, now: datetime, *,
           read_back: bool, scope: Principal | None = None) -> Job | None:  # fmt: skip
    modified = now
    removes = list(change.removes)
    key = keys.job_key(job_id)
    for _ in range(MAX_WRITE_ATTEMPTS):
        stamp = to_iso(modified)
        v = {**now_values(now), ":stamp": stamp, **given}
        e = Expr()
        e.names.update(rule.names)
        e.values.update(rule.values(v))
        condition = rule.condition
        reach = scope_condition(scope, e) if scope is not None else None
        if reach is not None:
            condition = f"({condition}) AND {reach}"
        assignments = [f"{e.n(k)} = {e.v(value)}" for k, value in change.values(stamp).items()]
        assignments.append(f"{e.n('version')} = {e.n('version')} + {e.v(1)}")
        assignments.append(f"{e.n('modified')} = {e.v(stamp)}")
        assignments += [f"{e.n(k)} = {e.n(k)} + {e.v(1)}" for k in change.increments]
        update = "SET " + ", ".join(assignments)
        if removes:
            update += " REMOVE " + ", ".join(e.n(k) for k in removes)
        extra = change.extra(stamp) if change.extra else []
        try:
            if extra:
                ctx.store.transact([Write("update", key=key, update=update, condition=condition, expr=e), *extra])
                if not read_back:
                    return None
                job = visible(ctx.store.get(key), now)
                if job is None:  # deleted between the two requests
                    raise NotFound(f"job {job_id} not found")
                return job
            return Job.from_item(ctx.store.update(key, update, condition=condition, expr=e))
        except (ConditionFailed, TransactionCanceled) as failure:
            if isinstance(failure, TransactionCanceled):
                if failure.reasons[0].code != "ConditionalCheckFailed":
                    raise ExtraWritesFailed([(r.code, r.item) for r in failure.reasons]) from None
                old = failure.reasons[0].item
            else:
                old = failure.item
            if scope is not None and old is not None and not scope.reaches(str(old.get("type", ""))):
                raise NotFound("job not found") from None  # word for word what a missing job gets
            try:
                rule.check(old, v)
            except Behind:
                # A fresh reading of the clock, so a writer that waited does not keep losing
                # to writers that started after it.
                assert old is not None
                modified = max(ctx.clock.now(), plus_ms(parse_iso(str(old["modified"])), 1))
                continue
            # The condition failed but the item as it was allows the write: it changed in
            # between (ALL_OLD is the state the condition saw). Try again.
    raise ServiceUnavailable(f"job {job_id} kept changing under concurrent writes; retry")


def terminal_sets(ctx: Context, job_id: str, state: str, now: datetime, error: Mapping[str, str] | None = None) -> dict[str, Any]:
    """What a job's end sets; a job that failed or was cancelled joins its queue's index of
    ended jobs (what redrive reads)."""
    sets: dict[str, Any] = {
        "state": state,
        "completed": to_iso(now),
        "expires_at": epoch_seconds(plus_ms(now, ctx.settings.retention_ms)),
    }
    if error is not None:
        sets["error"] = encode_json(dict(error))
    if state in (JobState.ERROR.value, JobState.CANCELLED.value):
        code = error.get("code") if error is not None and state == JobState.ERROR.value else None
        sets["ESK"] = keys.ended_key(state, code, to_iso(now), job_id)
    return sets


def release_guard(ctx: Context, job: Job) -> Job:
    """A job that ended gives its unique guard back, if the guard is still its own."""
    if job.unique_key:
        release_guard_of(ctx, job.unique_key, job.id)
    return job


def release_guard_of(ctx: Context, unique_key: str, job_id: str) -> None:
    e = Expr()
    e.names.update(GUARD_OF.names)
    e.values.update(GUARD_OF.values({":job": job_id}))
    with contextlib.suppress(ConditionFailed):  # released already, or taken by a newer job
        ctx.store.delete({"PK": unique_key, "SK": keys.GUARD_SK}, condition=GUARD_OF.condition, expr=e)


def ended(ctx: Context, job: Job) -> Job:
    """After a job reached a terminal state: its guard released, its end counted."""
    release_guard(ctx, job)
    name = {JobState.FINISHED: "JobsCompleted", JobState.ERROR: "JobsFailed", JobState.CANCELLED: "JobsCancelled"}
    if job.state in name:
        ctx.count(name[job.state], queue=job.type)
    return job


def delete_messages(ctx: Context, job_id: str) -> None:
    """A deleted job's message log goes with it."""
    e = Expr()
    condition = f"{e.n('PK')} = {e.v(keys.job_key(job_id)['PK'])} AND begins_with({e.n('SK')}, {e.v(keys.MESSAGE_PREFIX)})"
    for page in ctx.store.pages(condition, e, page_size=100):
        ctx.store.batch_delete([{"PK": i["PK"], "SK": i["SK"]} for i in page])


def load(ctx: Context, job_id: str, now: datetime) -> Job | None:
    return visible(ctx.store.get(keys.job_key(job_id)), now)
