"""Administration: patch a job's fields, delete one job (with its guard and message log),
delete everything (admin) or what has expired (clean), a page of work per call."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from msgspec import Struct

from .. import keys
from ..clock import epoch_seconds, parse_iso, to_iso
from ..commands.jobs import JobById, PatchJob, Sweep
from ..errors import Duplicate, NotFound, ServiceUnavailable, VersionMismatch
from ..model import Job, JobState, Principal
from ..rules import GUARD_OF, PATCH, Refused
from ..store import ConditionFailed, Expr, Item, Write
from ..wire import encode_json
from .context import Family
from .creating import conditional, guard_write, level_registered, queue_name_write
from .scope import require_queue, scope_condition
from .writes import (
    MAX_WRITE_ATTEMPTS,
    Change,
    ExtraWritesFailed,
    delete_messages,
    load,
    release_guard,
    release_guard_of,
    visible,
    write,
)

# How many items one delete-all or clean call looks at before it answers `more`.
SWEEP_BUDGET = 5000


class Swept(Struct, frozen=True):
    deleted: int
    more: bool


def apply_changes(item: Item, changes: Mapping[str, Any], shards_of: Callable[[str], int]) -> Item:
    """The item after setting wire fields; its index attributes follow state, owner, time.
    A job moved to another queue takes a shard of that queue (`shards_of`: a queue's shard
    count): its old one may be beyond the shards readers of the new queue walk."""
    updated = {k: v for k, v in item.items() if k not in keys.INDEX_ATTRIBUTES}
    for name, given in changes.items():
        value = to_iso(given) if isinstance(given, datetime) else given
        stored = encode_json(value) if name in ("params", "result") and value is not None else value
        if stored is None:
            updated.pop(name, None)
        else:
            updated[name] = stored
    if updated["type"] != item["type"]:
        updated.pop("shard", None)
        shard = keys.shard_of(str(updated["id"]), shards_of(str(updated["type"])))
        updated.update({"shard": shard} if shard else {})
    updated.update(keys.index_attributes(updated))
    return updated


class Admin(Family):
    def patch(self, principal: Principal, command: PatchJob) -> Job:
        """Set fields of an idle or pending job (api.job setJob); If-Match names a version.

        A new `type` moves the job to another queue; a unique job takes the new queue's
        guard for its ref_id and gives the old one back in the same transaction, or stays
        (409 `duplicate`) when an unfinished job holds it.
        """
        now = self.ctx.clock.now()
        changes = dict(command.changes)
        old_guard_ours = True
        for _ in range(MAX_WRITE_ATTEMPTS):
            item = self.ctx.store.get(keys.job_key(command.job_id))
            job = visible(item, now)
            if job is None or not principal.reaches(job.type):
                raise NotFound(f"job {command.job_id} not found")
            assert item is not None
            if command.if_match is not None and job.version != command.if_match:
                raise VersionMismatch(f"job {job.id} is at version {job.version}", {"version": job.version})
            updated = apply_changes(item, changes, self.ctx.queue_settings.shards_for_create)
            require_queue(principal, str(updated["type"]))  # a move into another's queue: 403
            if updated["type"] != item["type"]:
                moves = self._move_writes(item, updated, now, old_guard_ours)
            else:  # the same queue; a new priority level may need registering
                level = queue_name_write(self.ctx, str(updated["type"]), keys.priority_of(updated))
                moves = [level] if level is not None else []
            change = Change(
                sets={k: v for k, v in updated.items() if k not in ("PK", "SK", "version", "modified")},
                removes=[k for k in item if k not in updated],
                extra=(lambda _stamp: moves) if moves else None,
            )
            try:
                moved = write(self.ctx, command.job_id, PATCH, {":version": job.version}, change, now)
                level_registered(self.ctx, moved.type, moved.priority)
                return moved
            except ExtraWritesFailed as failed:
                old_guard_ours = self._refused_move(item, updated, failed, now)
                continue
            except Refused:
                if command.if_match is not None:
                    current = load(self.ctx, command.job_id, now)
                    if current is not None and current.version != command.if_match:
                        raise VersionMismatch(f"job {current.id} is at version {current.version}",
                                              {"version": current.version}) from None  # fmt: skip
                continue  # changed since it was read: read again
        raise ServiceUnavailable(f"job {command.job_id} kept changing; retry")

    def _move_writes(self, item: Item, updated: Item, now: datetime, old_guard_ours: bool) -> list[Write]:
        """Besides the job's own write, what moving it to another queue writes: the new
        queue's name, and for a unique job its guard under the new type."""
        writes: list[Write] = []
        if item.get("unique_key"):
            new_key = keys.guard_key(str(updated["type"]), str(item["ref_id"]))["PK"]
            updated["unique_key"] = new_key
            writes.append(guard_write(new_key, str(item["id"]), now, item.get("expires_at")))
            if old_guard_ours:
                old = {"PK": str(item["unique_key"]), "SK": keys.GUARD_SK}
                writes.append(conditional(GUARD_OF, {":job": item["id"]}, kind="delete", key=old))
        queue = queue_name_write(self.ctx, str(updated["type"]), keys.priority_of(updated))
        if queue is not None:
            writes.append(queue)
        return writes

    def _refused_move(self, item: Item, updated: Item, failed: ExtraWritesFailed, now: datetime) -> bool:
        """Why a move's transaction failed: a duplicate (raised), or a guard to fix first.
        Returns whether the old guard is still the job's to give back."""
        reasons = failed.reasons
        if item.get("unique_key") and len(reasons) > 1 and reasons[1][0] == "ConditionalCheckFailed":
            guard = reasons[1][1] or {}
            holder = load(self.ctx, str(guard.get("job_id", "")), now)
            if holder is not None and not holder.complete:
                raise Duplicate(
                    f"job {holder.id} of type {updated['type']} and the same ref_id is unfinished",
                    {"existing_id": holder.id},
                )
            release_guard_of(self.ctx, str(guard.get("PK", updated["unique_key"])), str(guard.get("job_id", "")))
            return True
        # The old guard is not this job's (released, or taken over): nothing to give back.
        return not (item.get("unique_key") and len(reasons) > 2 and reasons[2][0] == "ConditionalCheckFailed")

    def delete(self, principal: Principal, command: JobById) -> Job:
        """Delete a job, its unique guard and its message log; the job as it was."""
        now = self.ctx.clock.now()
        e = Expr()
        reach = scope_condition(principal, e)
        try:
            old = self.ctx.store.delete(keys.job_key(command.job_id), condition=reach, expr=e if reach else None)
        except ConditionFailed:
            old = None  # another queue's job: as if missing (a missing one fails no condition)
        job = visible(old, now)
        if job is None:
            raise NotFound(f"job {command.job_id} not found")
        release_guard(self.ctx, job)
        delete_messages(self.ctx, command.job_id)
        return job

    def sweep(self, principal: Principal, command: Sweep, *, budget: int = SWEEP_BUDGET) -> Swept:
        """Delete every item (Pip deleteJobs), or what has expired (finished jobs past
        retention, guards, idempotency records) and idle or pending jobs past their deadline
        (Pip cleanJobs), before TTL would. A deleted job's messages go with it."""
        doomed: Callable[[Item, datetime], bool] = _everything if command.everything else _expired
        now = self.ctx.clock.now()
        start: Item | None = None
        scanned = deleted = 0
        while True:
            found, start = self.ctx.store.scan(limit=min(500, budget), start_key=start)
            scanned += len(found)
            victims = [i for i in found if doomed(i, now)]
            self.ctx.store.batch_delete([{"PK": i["PK"], "SK": i["SK"]} for i in victims])
            for item in victims:
                if item.get("SK") == keys.JOB_SK:
                    deleted += 1
                    job = Job.from_item(item)
                    release_guard(self.ctx, job)
                    if not command.everything:  # delete-all removes the messages as it meets them
                        delete_messages(self.ctx, job.id)
            if start is None:
                return Swept(deleted, False)
            if scanned >= budget:
                return Swept(deleted, True)


def _everything(item: Item, now: datetime) -> bool:
    # Queue items stay: their settings outlive the jobs, their counts follow the jobs'
    # deletions by the stream, and the priority levels they register tell claims where to look.
    # Schedules are not jobs either.
    return item.get("PK") not in (keys.QUEUES_PK, keys.SCHEDULES_PK)


def _expired(item: Item, now: datetime) -> bool:
    expires = item.get("expires_at")
    if expires is not None and int(expires) <= epoch_seconds(now):
        return True
    execute_until = item.get("execute_until")
    return (
        item.get("SK") == keys.JOB_SK
        and item.get("state") in (JobState.IDLE.value, JobState.PENDING.value)
        and execute_until is not None
        and parse_iso(str(execute_until)) <= now
    )
