"""Creating jobs: plain, unique by type+ref_id, idempotent by key; the items a create writes."""

from __future__ import annotations

from datetime import datetime

from msgspec import Struct

from .. import keys
from ..clock import epoch_seconds, plus_ms, to_iso
from ..commands.jobs import CreateJob
from ..errors import DependencyFailed, InvalidRequest, NotFound, ServiceUnavailable
from ..ids import new_job_id
from ..model import Job, Principal
from ..rules import ABSENT, EXISTS, FREE, Transition
from ..store import ConditionFailed, Expr, Item, TransactionCanceled, Write
from ..wire import encode_json
from .context import Context, Family, now_values
from .scope import require_queue
from .writes import MAX_WRITE_ATTEMPTS, load, release_guard_of


class Created(Struct, frozen=True):
    job: Job
    created: bool  # False: an unfinished unique job, or the first answer to this key


def conditional(rule: Transition, given: dict[str, object], *, kind: str, item: Item | None = None,
                key: dict[str, str] | None = None) -> Write:  # fmt: skip
    """One write of a transaction under a rule's condition."""
    e = Expr()
    e.names.update(rule.names)
    e.values.update(rule.values(given))
    return Write(kind, key=key, item=item, condition=rule.condition, expr=e)


def new_item(ctx: Context, principal: Principal, command: CreateJob, now: datetime) -> Item:
    """The job item a create writes (not yet written)."""
    job_id = new_job_id(now)
    shard = keys.shard_of(job_id, ctx.queue_settings.shards_for_create(command.type))
    created = to_iso(now)
    visible_at = command.available_at or plus_ms(now, command.delay_ms or 0)
    execute_until = plus_ms(now, command.ttl_ms) if command.ttl_ms else None
    max_retries = command.max_retries if command.max_retries_given else ctx.settings.default_max_retries
    item: Item = {
        **keys.job_key(job_id),
        "id": job_id,
        "type": command.type,
        "processor": principal.sub,
        "state": command.state,
        "attempts": 0,
        "version": 1,
        "created": created,
        "modified": created,
        "available_at": to_iso(visible_at),
        "cancel_requested": False,
        "depends_on": list(command.depends_on),
        "msg_count": 0,
        "priority": command.priority,
    }
    optional = {
        "ref_id": command.ref_id,
        "owner": command.owner,
        "title": command.title,
        "status": command.initial_status,
        "max_retries": max_retries,
        "params": encode_json(command.params) if command.params is not None else None,
        "execute_until": to_iso(execute_until) if execute_until else None,
        # A job past its deadline is kept for the retention period, then expires.
        "expires_at": epoch_seconds(plus_ms(execute_until, ctx.settings.retention_ms)) if execute_until else None,
        "unique_key": keys.guard_key(command.type, command.ref_id)["PK"] if command.unique and command.ref_id else None,
        "shard": shard or None,  # absent for shard 0: the item of an unsharded queue is unchanged
    }
    item.update({k: v for k, v in optional.items() if v is not None})
    item.update(keys.index_attributes(item))
    return item


def guard_write(unique_key: str, job_id: str, now: datetime, expires_at: int | None) -> Write:
    """Take a unique guard for a job: only if it is free (absent, or its job expired)."""
    guard: Item = {"PK": unique_key, "SK": keys.GUARD_SK, "job_id": job_id, "created": to_iso(now)}
    if expires_at is not None:
        guard["expires_at"] = expires_at
    return conditional(FREE, now_values(now), kind="put", item=guard)


def create_writes(item: Item, unique: bool, now: datetime) -> list[Write]:
    """The writes that create one job: the job, its unique guard, its dependencies' checks."""
    given = now_values(now)
    writes = [conditional(ABSENT, given, kind="put", item=item)]
    if unique:
        key = keys.guard_key(item["type"], item["ref_id"])["PK"]
        writes.append(guard_write(key, item["id"], now, item.get("expires_at")))
    writes += [conditional(EXISTS, given, kind="check", key=keys.job_key(dep)) for dep in item.get("depends_on", [])]
    return writes


def queue_name_write(ctx: Context, job_type: str, priority: int) -> Write | None:
    """Register the queue name and the priority level once per container: an update,
    idempotent, no condition.

    Queue names could not be listed without a Scan otherwise, and claims look only at the
    levels a queue has used (engine/context.py); steady-state creates stay one write.
    """
    if (job_type, priority) in ctx.known_queues:
        return None
    e = Expr()
    # An update, not a put: the item also holds the queue's settings and counts.
    update = f"SET {e.n('type')} = {e.v(job_type)} ADD {e.n('levels')} {e.v({priority})}"
    return Write("update", key=keys.queue_name_key(job_type), update=update, expr=e)


def level_registered(ctx: Context, job_type: str, priority: int) -> None:
    """After a write that registered a level: this container knows it, and reads the queue's
    levels afresh (a claim or listing here must not miss the level for the cache's time)."""
    if (job_type, priority) not in ctx.known_queues:
        ctx.known_queues.add((job_type, priority))
        ctx.queue_settings.forget(job_type, keep_shards=True)


class Creating(Family):
    def create(self, principal: Principal, command: CreateJob) -> Created:
        return create(self.ctx, principal, command)


def create(ctx: Context, principal: Principal, command: CreateJob) -> Created:
    require_queue(principal, command.type)
    now = ctx.clock.now()
    item = new_item(ctx, principal, command, now)
    for _ in range(MAX_WRITE_ATTEMPTS):
        writes = create_writes(item, command.unique, now)
        idempotency_at = None
        if command.idempotency_key is not None:
            idempotency_at = len(writes)
            writes.append(_idempotency_write(ctx, principal, command, item["id"], now))
        queue_write = queue_name_write(ctx, item["type"], item["priority"])
        if queue_write:
            writes.append(queue_write)
        try:
            if len(writes) == 1:
                only = writes[0]
                assert only.item is not None
                ctx.store.put(only.item, condition=only.condition, expr=only.expr)
            else:
                ctx.store.transact(writes)
        except (ConditionFailed, TransactionCanceled) as failure:
            reasons = _reasons(failure, len(writes))
            answer = _conflict(ctx, principal, command, item, idempotency_at, reasons, now)
            if answer is not None:
                return answer
            continue
        level_registered(ctx, item["type"], item["priority"])
        ctx.count("JobsCreated", queue=str(item["type"]))
        return Created(Job.from_item(item), created=True)
    raise ServiceUnavailable("create kept conflicting with concurrent changes; retry")


def _idempotency_write(ctx: Context, principal: Principal, command: CreateJob, job_id: str, now: datetime) -> Write:
    assert command.idempotency_key is not None
    record: Item = {
        **keys.idempotency_key(principal.sub, command.idempotency_key),
        "job_id": job_id,
        "request_hash": command.request_hash,
        "created": True,
        "expires_at": epoch_seconds(plus_ms(now, ctx.settings.idempotency_ttl_ms)),
    }
    return conditional(FREE, now_values(now), kind="put", item=record)


def _reasons(failure: ConditionFailed | TransactionCanceled, count: int) -> list[tuple[str, Item | None]]:
    if isinstance(failure, ConditionFailed):
        return [("ConditionalCheckFailed", failure.item)]
    reasons = [(r.code, r.item) for r in failure.reasons]
    return reasons + [("None", None)] * (count - len(reasons))


def _conflict(
    ctx: Context,
    principal: Principal,
    command: CreateJob,
    item: Item,
    idempotency_at: int | None,
    reasons: list[tuple[str, Item | None]],
    now: datetime,
) -> Created | None:
    """Why a create did not apply: the answer to return, or None to try again."""
    failed = [i for i, (code, _) in enumerate(reasons) if code == "ConditionalCheckFailed"]
    if idempotency_at is not None and idempotency_at in failed:
        record = reasons[idempotency_at][1] or {}
        if record.get("request_hash") != command.request_hash:
            raise InvalidRequest.fields(
                {"Idempotency-Key": "already used with a different request"},
                "Idempotency-Key was used before with a different request",
            )
        job = load(ctx, str(record.get("job_id")), now)
        if job is None:
            raise NotFound("the job created under this Idempotency-Key no longer exists")
        return Created(job, created=bool(record.get("created", True)))
    if command.unique and 1 in failed:
        guard = reasons[1][1] or {}
        holder = load(ctx, str(guard.get("job_id", "")), now)
        if holder is not None and not holder.complete:
            return Created(holder, created=False)
        # The guard outlived its job (a crash between finishing and releasing it): release
        # it, if it is still that stale guard, and try again.
        release_guard_of(ctx, str(guard.get("PK")), str(guard.get("job_id")))
        return None
    first_dependency = 2 if command.unique else 1
    dependencies = item.get("depends_on", [])
    missing = [
        {"id": dependencies[i - first_dependency], "reason": "not_found"}
        for i in failed
        if first_dependency <= i < first_dependency + len(dependencies)
    ]
    if missing:
        raise DependencyFailed("a job this job depends on does not exist", {"failures": missing})
    if 0 in failed:
        item["id"] = new_job_id(now)  # an id collision: practically never; draw again
        item.update(keys.job_key(item["id"]))
        item.update(keys.index_attributes(item))
        return None
    raise ServiceUnavailable("create conflicted with a concurrent change; retry")
