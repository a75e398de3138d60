"""Administration: patch a job's fields, delete one job (with its guard and message log),
delete everything (admin) or what has expired (clean), a page of work per call."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .. import keys
from ..clock import epoch_seconds, parse_iso, to_iso
from ..commands.jobs import JobById, PatchJob, Sweep
from ..errors import NotFound, ServiceUnavailable, VersionMismatch
from ..model import Job, JobState, Principal
from ..rules import PATCH, Refused
from ..store import Expr, Item
from ..wire import encode_json
from .context import Context
from .writes import MAX_WRITE_ATTEMPTS, Change, load, release_guard, visible, write

# How many items one delete-all or clean call looks at before it answers `more`.
SWEEP_BUDGET = 5000


@dataclass(frozen=True)
class Swept:
    deleted: int
    more: bool


def apply_changes(item: Item, changes: Mapping[str, Any]) -> Item:
    """The item after setting wire fields; its index attributes follow state, owner, time."""
    updated = {k: v for k, v in item.items() if k not in keys.INDEX_ATTRIBUTES}
    for name, given in changes.items():
        value = to_iso(given) if isinstance(given, datetime) else given
        stored = encode_json(value) if name in ("params", "result") and value is not None else value
        if stored is None:
            updated.pop(name, None)
        else:
            updated[name] = stored
    updated.update(keys.index_attributes(updated))
    return updated


@dataclass
class Admin:
    ctx: Context

    def patch(self, principal: Principal, command: PatchJob) -> Job:
        """Set fields of an idle or pending job (api.job setJob); If-Match names a version."""
        now = self.ctx.clock.now()
        changes = dict(command.changes)
        for _ in range(MAX_WRITE_ATTEMPTS):
            item = self.ctx.store.get(keys.job_key(command.job_id))
            job = visible(item, now)
            if job is None:
                raise NotFound(f"job {command.job_id} not found")
            assert item is not None
            if command.if_match is not None and job.version != command.if_match:
                raise VersionMismatch(f"job {job.id} is at version {job.version}", {"version": job.version})
            updated = apply_changes(item, changes)
            change = Change(
                sets={k: v for k, v in updated.items() if k not in ("PK", "SK", "version", "modified")},
                removes=[k for k in item if k not in updated],
            )
            try:
                return write(self.ctx, command.job_id, PATCH, {":version": job.version}, change, now)
            except Refused:
                if command.if_match is not None:
                    current = load(self.ctx, command.job_id, now)
                    if current is not None and current.version != command.if_match:
                        raise VersionMismatch(f"job {current.id} is at version {current.version}",
                                              {"version": current.version}) from None  # fmt: skip
                continue  # changed since it was read: read again
        raise ServiceUnavailable(f"job {command.job_id} kept changing; retry")

    def delete(self, principal: Principal, command: JobById) -> Job:
        """Delete a job, its unique guard and its message log; the job as it was."""
        now = self.ctx.clock.now()
        job = visible(self.ctx.store.delete(keys.job_key(command.job_id)), now)
        if job is None:
            raise NotFound(f"job {command.job_id} not found")
        release_guard(self.ctx, job)
        self.delete_messages(command.job_id)
        return job

    def delete_messages(self, job_id: str) -> None:
        e = Expr()
        condition = f"{e.n('PK')} = {e.v(keys.job_key(job_id)['PK'])} AND begins_with({e.n('SK')}, {e.v(keys.MESSAGE_PREFIX)})"
        for page in self.ctx.store.pages(condition, e, page_size=100):
            self.ctx.store.batch_delete([{"PK": i["PK"], "SK": i["SK"]} for i in page])

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
                        self.delete_messages(job.id)
            if start is None:
                return Swept(deleted, False)
            if scanned >= budget:
                return Swept(deleted, True)


def _everything(item: Item, now: datetime) -> bool:
    return True


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
