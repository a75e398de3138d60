"""Atomic batches (taskstore modify): creates, updates, deletes and dependency checks, all or
nothing. Every constraint is checked against one consistent read first, so a 409 names every
failure at once; the transaction then re-checks each by condition, so nothing that changed in
between slips through."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any

from msgspec import Struct, field

from .. import keys
from ..clock import epoch_seconds, parse_iso, plus_ms, to_iso
from ..commands.jobs import Batch
from ..errors import BatchConflict, InvalidRequest
from ..model import Job, JobState, Principal
from ..rules import AT_VERSION
from ..store import Item, TransactionCanceled, Write
from .admin import apply_changes
from .context import Family, now_values
from .creating import conditional, create_writes, level_registered, new_item, queue_name_write
from .scope import require_queues
from .writes import delete_messages, release_guard, visible


class BatchResult(Struct, frozen=True):
    created: list[Job] = field(default_factory=list)
    updated: list[Job] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)


def _problem(job: Job | None, version: int | None, *, unleased: bool) -> str | None:
    if job is None:
        return "not_found"
    if version is not None and job.version != version:
        return "version_mismatch"
    if unleased and job.state.terminal:
        return "already_finished"
    if unleased and job.state is JobState.RUNNING:
        return "lease_held"
    return None


class Batches(Family):
    def batch(self, principal: Principal, command: Batch) -> BatchResult:
        require_queues(principal, [create.type for create in command.creates])
        now = self.ctx.clock.now()
        new_items = [(new_item(self.ctx, principal, create, now), create.unique) for create in command.creates]
        ids = [u.job_id for u in command.updates] + [r.job_id for r in (*command.deletes, *command.depends)]
        guards = [str(item["unique_key"]) for item, unique in new_items if unique]
        reads = [keys.job_key(i) for i in ids] + [{"PK": g, "SK": keys.GUARD_SK} for g in guards]
        found = self.ctx.store.batch_get(reads) if reads else []
        # Another queue's job is, to a scoped service, not there (a `not_found` failure).
        current = {i["id"]: i for i in found if i.get("SK") == keys.JOB_SK and principal.reaches(str(i.get("type")))}
        now_s = epoch_seconds(now)
        live_guards = {
            str(i["PK"]): i for i in found if i.get("SK") == keys.GUARD_SK and int(i.get("expires_at", now_s + 1)) > now_s
        }
        failures: list[dict[str, Any]] = []
        for item, unique in new_items:
            guard = live_guards.get(str(item.get("unique_key")))
            if unique and guard is not None:
                failures.append({"op": "create", "id": item["id"], "reason": "duplicate", "existing_id": guard.get("job_id")})
        writes: list[Write] = []
        origins: list[tuple[str, str]] = []  # (op, id) of each write, for naming failures
        for item, unique in new_items:
            for w in create_writes(item, unique, now):
                writes.append(w)
                origins.append(("create", item["id"]))
        updated_items = self._updates(command, current, now, writes, origins, failures)
        for refs, kind in ((command.deletes, "delete"), (command.depends, "depends")):
            for ref in refs:
                job = visible(current.get(ref.job_id), now)
                problem = _problem(job, ref.version, unleased=False)
                if problem:
                    failures.append({"op": kind, "id": ref.job_id, "reason": problem})
                    continue
                assert job is not None
                given = {**now_values(now), ":version": job.version}
                writes.append(conditional(AT_VERSION, given, kind="delete" if kind == "delete" else "check",
                                          key=keys.job_key(ref.job_id)))  # fmt: skip
                origins.append((kind, ref.job_id))
        if len(writes) > self.ctx.limits.batch_ops:
            raise InvalidRequest.fields({"body": f"the batch needs {len(writes)} writes; at most {self.ctx.limits.batch_ops}"})
        if failures:
            raise BatchConflict(f"{len(failures)} constraint(s) failed; nothing was written", {"failures": failures})
        self._register_levels([item for item, _ in new_items] + updated_items)
        try:
            self.ctx.store.transact(writes)
        except TransactionCanceled as canceled:
            for (kind, job_id), reason in zip(origins, canceled.reasons, strict=False):
                if reason.code == "ConditionalCheckFailed":
                    failures.append({"op": kind, "id": job_id, "reason": _failure_reason(kind, reason.item, now)})
            raise BatchConflict(f"{len(failures)} constraint(s) failed; nothing was written", {"failures": failures}) from None
        for queue, created in Counter(str(item["type"]) for item, _ in new_items).items():
            self.ctx.count("JobsCreated", created, queue=queue)
        for ref in command.deletes:
            old = visible(current.get(ref.job_id), now)
            if old is not None:
                release_guard(self.ctx, old)
                delete_messages(self.ctx, ref.job_id)
        return BatchResult(
            created=[Job.from_item(i) for i, _ in new_items],
            updated=[Job.from_item(i) for i in updated_items],
            deleted=[ref.job_id for ref in command.deletes],
        )

    def _register_levels(self, items: list[Item]) -> None:
        """The queues and priority levels the batch puts jobs in, registered before it is
        written (a batch may be full): claims look only at registered levels, and a level
        registered for a batch that then fails costs an empty Query at most."""
        for place in sorted({(str(item["type"]), keys.priority_of(item)) for item in items}):
            queue_write = queue_name_write(self.ctx, *place)
            if queue_write and queue_write.key and queue_write.update and queue_write.expr:
                self.ctx.store.update(queue_write.key, queue_write.update, condition=None, expr=queue_write.expr)
                level_registered(self.ctx, *place)

    def _updates(
        self,
        command: Batch,
        current: dict[str, Item],
        now: datetime,
        writes: list[Write],
        origins: list[tuple[str, str]],
        failures: list[dict[str, Any]],
    ) -> list[Item]:
        updated_items = []
        for update in command.updates:
            job = visible(current.get(update.job_id), now)
            problem = _problem(job, update.version, unleased=True)
            if problem:
                failures.append({"op": "update", "id": update.job_id, "reason": problem})
                continue
            assert job is not None
            item = apply_changes(current[update.job_id], dict(update.changes), self.ctx.queue_settings.shards_for_create)
            item["version"] = job.version + 1
            item["modified"] = to_iso(max(now, plus_ms(parse_iso(job.modified), 1)))
            updated_items.append(item)
            writes.append(conditional(AT_VERSION, {**now_values(now), ":version": job.version}, kind="put", item=item))
            origins.append(("update", update.job_id))
        return updated_items


def _failure_reason(kind: str, item: Item | None, now: datetime) -> str:
    if kind == "create":
        if item and str(item.get("PK", "")).startswith("UNIQ#"):
            return "duplicate"
        return "not_found" if item is None else "conflict"
    return "not_found" if visible(item, now) is None else "version_mismatch"
