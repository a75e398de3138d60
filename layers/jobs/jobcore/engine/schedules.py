"""Recurring jobs: schedules as records (put, read, list, patch, delete) and the scheduler's run.

A schedule is one item (`SCHEDULES`, `<name>`). While it is active it carries `next_run_at`,
the key of the sparse index `schedules-due`: a scheduler run reads only the schedules that are
due, with one Query, however many others exist; a paused schedule has no `next_run_at` and is
not in the index at all.

Each slot yields one job, whatever runs overlap or repeat: the job is created in one
transaction with the schedule's advance to its next slot, on the condition that the schedule
is still at the version the run read. A second run that read the same version fails that
condition and creates nothing; a retried run finds the schedule no longer due. The job is
also unique by `schedule:<name>:<slot>`, so a slot's job made any other way is not doubled.
After downtime only the latest missed slot runs: the slot is the latest at or before the run.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

from msgspec import Struct

from .. import keys
from ..clock import parse_iso, to_iso
from ..commands.schedules import JobTemplate, ListSchedules, PatchSchedule, PutSchedule, ScheduleByName
from ..cursors import open_cursor, seal
from ..errors import Forbidden, JobsError, NotFound, ServiceUnavailable
from ..model import DEFAULT_PRIORITY, Principal, Role
from ..schedule_slots import Cadence, CadenceError, latest_slot, next_slot, slot_ref_id
from ..store import ConditionFailed, Expr, Item, TransactionCanceled, Write
from .context import Family
from .creating import create_writes, level_registered, new_item, queue_name_write
from .listing import Page
from .scope import require_queue, scope_condition
from .writes import MAX_WRITE_ATTEMPTS, load, release_guard_of

logger = logging.getLogger(__name__)

# Due schedules read per Query page of a run.
DUE_PAGE = 100


class Schedule(Struct, frozen=True):
    name: str
    cadence: Cadence
    job: JobTemplate
    paused: bool
    next_run_at: str | None
    last_run_at: str | None
    last_job_id: str | None
    processor: str
    created: str
    modified: str
    version: int

    def to_wire(self) -> dict[str, Any]:
        return {
            "name": self.name, "cron": self.cadence.cron, "every_ms": self.cadence.every_ms,
            "timezone": self.cadence.timezone, "job": self.job.to_wire(), "paused": self.paused,
            "next_run_at": self.next_run_at, "last_run_at": self.last_run_at, "last_job_id": self.last_job_id,
            "processor": self.processor, "created": self.created, "modified": self.modified, "version": self.version,
        }  # fmt: skip

    def to_item(self) -> Item:
        item: Item = {
            **keys.schedule_key(self.name),
            "name": self.name,
            # The job's type, under the name every scope condition reads (scope.scope_condition).
            "type": self.job.type,
            "timezone": self.cadence.timezone,
            "job": self.job.to_item(),
            "paused": self.paused,
            "processor": self.processor,
            "created": self.created,
            "modified": self.modified,
            "version": self.version,
        }
        optional = {"cron": self.cadence.cron, "every_ms": self.cadence.every_ms, "next_run_at": self.next_run_at,
                    "last_run_at": self.last_run_at, "last_job_id": self.last_job_id}  # fmt: skip
        item.update({k: v for k, v in optional.items() if v is not None})
        return item

    @classmethod
    def from_item(cls, item: Item) -> Schedule:
        every_ms = item.get("every_ms")
        cadence = Cadence(cron=item.get("cron"), every_ms=int(every_ms) if every_ms is not None else None,
                          timezone=str(item.get("timezone", "UTC")))  # fmt: skip
        return cls(
            name=str(item["name"]),
            cadence=cadence,
            job=template_of(item.get("job") or {}),
            paused=bool(item.get("paused", False)),
            next_run_at=item.get("next_run_at"),
            last_run_at=item.get("last_run_at"),
            last_job_id=item.get("last_job_id"),
            processor=str(item.get("processor", "")),
            created=str(item.get("created", "")),
            modified=str(item.get("modified", "")),
            version=int(item.get("version", 1)),
        )


def template_of(stored: dict[str, Any]) -> JobTemplate:
    max_retries = stored.get("max_retries")
    ttl_ms = stored.get("ttl_ms")
    params = stored.get("params")
    return JobTemplate(
        type=str(stored.get("type", "")),
        params=json.loads(params) if isinstance(params, str) else None,
        title=stored.get("title"),
        owner=stored.get("owner"),
        max_retries=int(max_retries) if max_retries is not None else None,
        max_retries_given="max_retries" in stored,
        ttl_ms=int(ttl_ms) if ttl_ms is not None else None,
        priority=keys.priority_of({"priority": stored.get("priority", DEFAULT_PRIORITY)}),
    )


class Fired(Struct, frozen=True):
    """What one due schedule's turn did: `job_id` of the slot's job, None if another run
    (or a change of the schedule) got there first."""

    name: str
    slot: str
    job_id: str | None
    created: bool


class ScheduleRun(Struct, frozen=True):
    fired: int  # slots whose job this run created
    skipped: int  # due schedules another run or a change got to first
    failed: int  # due schedules left for the next run (an error, logged)
    more: bool  # stopped for time with due schedules left


class Schedules(Family):
    # -- records ------------------------------------------------------------------------------
    def get(self, principal: Principal, command: ScheduleByName) -> Schedule:
        item = self.ctx.store.get(keys.schedule_key(command.name))
        if item is None or not principal.reaches(str(item.get("type"))):
            raise NotFound(f"schedule {command.name} not found")
        return Schedule.from_item(item)

    def page(self, principal: Principal, command: ListSchedules) -> Page[Schedule]:
        """Schedules by name: one Query per page; a scoped token's filter leaves out the rest."""
        scope = f"schedules|{principal.sub}|{command.prefix}"
        start = open_cursor(self.ctx.cursor_key(), scope, command.cursor) if command.cursor else None
        e = Expr()
        condition = f"{e.n('PK')} = {e.v(keys.SCHEDULES_PK)}"
        if command.prefix:
            condition += f" AND begins_with({e.n('SK')}, {e.v(command.prefix)})"
        items, next_start = self.ctx.store.page(condition, e, limit=command.limit, start_key=start,
                                                filter_expression=scope_condition(principal, e))  # fmt: skip
        found = [Schedule.from_item(item) for item in items]
        return Page(found, seal(self.ctx.cursor_key(), scope, next_start) if next_start else None)

    def put(self, principal: Principal, command: PutSchedule) -> tuple[Schedule, bool]:
        """Create (True) or replace (False). A replaced schedule keeps its creation time and
        its last run; its next slot is computed afresh from now."""
        require_queue(principal, command.job.type)
        for _ in range(MAX_WRITE_ATTEMPTS):
            now = self.ctx.clock.now()
            current = self.ctx.store.get(keys.schedule_key(command.name))
            if current is not None and not principal.reaches(str(current.get("type"))):
                raise Forbidden(f"schedule {command.name} belongs to a queue this token does not reach",
                                {"name": command.name})  # fmt: skip
            before = Schedule.from_item(current) if current is not None else None
            schedule = Schedule(
                name=command.name,
                cadence=command.cadence,
                job=command.job,
                paused=command.paused,
                next_run_at=None if command.paused else to_iso(next_slot(command.cadence, now)),
                last_run_at=before.last_run_at if before else None,
                last_job_id=before.last_job_id if before else None,
                processor=principal.sub,
                created=before.created if before else to_iso(now),
                modified=to_iso(now),
                version=before.version + 1 if before else 1,
            )
            if self._write(schedule, before):
                return schedule, before is None
        raise ServiceUnavailable("the schedule kept changing while it was written; retry")

    def patch(self, principal: Principal, command: PatchSchedule) -> Schedule:
        rewrites = command.job is not None or command.cron is not None or command.every_ms is not None
        rewrites = rewrites or command.timezone is not None
        if principal.role is Role.ADMIN and rewrites:
            # An operator may stop and restart a schedule; what it creates stays a service's.
            raise Forbidden("an admin may pause or resume a schedule; its cadence and job are its service's to change")
        if command.job is not None:
            require_queue(principal, command.job.type)
        for _ in range(MAX_WRITE_ATTEMPTS):
            now = self.ctx.clock.now()
            before = self.get(principal, ScheduleByName(command.name))
            cadence = command.cadence_over(before.cadence)
            paused = before.paused if command.paused is None else command.paused
            # The next slot moves only when the cadence changed or the schedule resumes: a
            # resumed schedule starts at its next slot from now, never with the ones it missed.
            if paused:
                next_run_at = None
            elif before.next_run_at is None or cadence != before.cadence:
                next_run_at = to_iso(next_slot(cadence, now))
            else:
                next_run_at = before.next_run_at
            schedule = Schedule(
                name=before.name, cadence=cadence, job=command.job or before.job, paused=paused,
                next_run_at=next_run_at, last_run_at=before.last_run_at, last_job_id=before.last_job_id,
                processor=principal.sub if rewrites else before.processor,
                created=before.created, modified=to_iso(now), version=before.version + 1,
            )  # fmt: skip
            if self._write(schedule, before):
                return schedule
        raise ServiceUnavailable("the schedule kept changing while it was written; retry")

    def delete(self, principal: Principal, command: ScheduleByName) -> Schedule:
        """Delete the schedule; the jobs it created stay. The schedule as it was."""
        e = Expr()
        condition = f"attribute_exists({e.n('PK')})"
        scoped = scope_condition(principal, e)
        if scoped:
            condition += f" AND {scoped}"
        try:
            old = self.ctx.store.delete(keys.schedule_key(command.name), condition=condition, expr=e)
        except ConditionFailed:
            raise NotFound(f"schedule {command.name} not found") from None
        assert old is not None
        return Schedule.from_item(old)

    def _write(self, schedule: Schedule, before: Schedule | None) -> bool:
        """Put the schedule if it is still as read (absent, or at its version); False if not."""
        e = Expr()
        condition = f"attribute_not_exists({e.n('PK')})" if before is None else f"{e.n('version')} = {e.v(before.version)}"
        try:
            self.ctx.store.put(schedule.to_item(), condition=condition, expr=e)
        except ConditionFailed:
            return False
        return True

    # -- the scheduler ------------------------------------------------------------------------
    def due(self, now: datetime) -> Iterator[Item]:
        """The schedules due at `now`, a page at a time: the index holds only active ones."""
        e = Expr()
        condition = f"{e.n('PK')} = {e.v(keys.SCHEDULES_PK)} AND {e.n('next_run_at')} <= {e.v(to_iso(now))}"
        for page in self.ctx.store.pages(condition, e, index=keys.SCHEDULE_INDEX, page_size=DUE_PAGE):
            yield from page

    def run_due(self, now: datetime | None = None, *, time_left: Callable[[], bool] | None = None) -> ScheduleRun:
        """Create the job of every due schedule's latest slot. `now` is the run's moment (the
        scheduled event's time); `time_left` says whether to go on to the next schedule."""
        at = now or self.ctx.clock.now()
        fired = skipped = failed = 0
        for item in self.due(at):
            if time_left is not None and not time_left():
                return ScheduleRun(fired, skipped, failed, more=True)
            try:
                outcome = self.fire(item, at)
            except JobsError as error:
                failed += 1
                logger.warning("schedule %s not run: %s", item.get("name"), error.message)
                continue
            if outcome is not None and outcome.created:
                fired += 1
            else:
                skipped += 1
        return ScheduleRun(fired, skipped, failed, more=False)

    def fire(self, item: Item, now: datetime) -> Fired | None:
        """Create the job of the schedule's latest slot at `now` and advance it to its next
        slot, as one transaction on the condition that the schedule is as `item` shows it.
        None if it is not due (any more) or another run got there first."""
        schedule = Schedule.from_item(item)
        if schedule.paused or schedule.next_run_at is None or parse_iso(schedule.next_run_at) > now:
            return None
        try:
            latest = latest_slot(schedule.cadence, now)
            due_at = parse_iso(schedule.next_run_at)
            slot = max(latest, due_at) if latest is not None else due_at
            following = next_slot(schedule.cadence, max(slot, now))
        except CadenceError as error:  # a cron that never fires again: it leaves the index
            logger.warning("schedule %s stops: %s", schedule.name, error.message)
            self._advance(schedule, None, None, None, now)
            return None
        runner = Principal(schedule.processor, Role.SERVICE)
        command = schedule.job.create(slot_ref_id(schedule.name, slot))
        for _ in range(MAX_WRITE_ATTEMPTS):
            job = new_item(self.ctx, runner, command, now)
            job["schedule"] = schedule.name
            writes = create_writes(job, True, now)
            writes.append(self._advance_write(schedule, to_iso(following), to_iso(slot), job["id"], now))
            queue_write = queue_name_write(self.ctx, command.type, command.priority)
            if queue_write is not None:
                writes.append(queue_write)
            try:
                self.ctx.store.transact(writes)
            except TransactionCanceled as failure:
                codes = [reason.code for reason in failure.reasons] + ["None"] * len(writes)
                if codes[2] == "ConditionalCheckFailed":
                    return None  # another run advanced it, or it changed since it was read
                if codes[1] == "ConditionalCheckFailed":
                    guard = failure.reasons[1].item or {}
                    holder = load(self.ctx, str(guard.get("job_id", "")), now)
                    if holder is not None and not holder.complete:
                        # The slot's job exists already: the schedule moves on without another.
                        advanced = self._advance(schedule, to_iso(following), to_iso(slot), holder.id, now)
                        return Fired(schedule.name, to_iso(slot), holder.id, created=False) if advanced else None
                    release_guard_of(self.ctx, str(guard.get("PK")), str(guard.get("job_id")))
                continue  # a stale guard released, or a job id drawn twice: try again
            level_registered(self.ctx, command.type, command.priority)
            self.ctx.count("JobsCreated", queue=command.type)
            self.ctx.count("ScheduleSlotsRun", queue=command.type)
            return Fired(schedule.name, to_iso(slot), str(job["id"]), created=True)
        raise ServiceUnavailable(f"schedule {schedule.name} kept conflicting; the next run tries again")

    def _advance_write(self, schedule: Schedule, following: str | None, slot: str | None, job_id: str | None,
                       now: datetime) -> Write:  # fmt: skip
        e = Expr()
        sets = [f"{e.n('version')} = {e.v(schedule.version + 1)}", f"{e.n('modified')} = {e.v(to_iso(now))}"]
        sets += [f"{e.n(name)} = {e.v(value)}" for name, value in
                 (("next_run_at", following), ("last_run_at", slot), ("last_job_id", job_id)) if value is not None]  # fmt: skip
        update = "SET " + ", ".join(sets) + ("" if following is not None else f" REMOVE {e.n('next_run_at')}")
        condition = f"{e.n('version')} = {e.v(schedule.version)} AND {e.n('next_run_at')} = {e.v(schedule.next_run_at)}"
        return Write("update", key=keys.schedule_key(schedule.name), update=update, condition=condition, expr=e)

    def _advance(self, schedule: Schedule, following: str | None, slot: str | None, job_id: str | None,
                 now: datetime) -> bool:  # fmt: skip
        """Move the schedule on without creating a job; False if it changed since it was read."""
        write = self._advance_write(schedule, following, slot, job_id, now)
        assert write.key is not None and write.update is not None and write.expr is not None
        try:
            self.ctx.store.update(write.key, write.update, condition=write.condition, expr=write.expr)
        except ConditionFailed:
            return False
        return True
