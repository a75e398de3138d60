"""The engine driven with request bodies and queries, parsed as the edge parses them.

Engine tests speak in bodies (`service.claim(svc, "q", {"timeout_ms": 1000})`), which keeps
them close to the wire contract; each call parses its body into the command with the route's
own parser and hands it to the engine's family that owns the operation."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from jobcore.commands import Parts
from jobcore.commands.jobs import (
    parse_batch,
    parse_clean,
    parse_create,
    parse_delete_all,
    parse_job_by_id,
    parse_list,
    parse_patch,
)
from jobcore.commands.leases import parse_abort, parse_claim, parse_complete, parse_extend, parse_fail, parse_start
from jobcore.commands.queues import (
    parse_get_queue,
    parse_history,
    parse_list_queues,
    parse_patch_queue,
    parse_purge,
    parse_redrive,
)
from jobcore.commands.schedules import (
    parse_list_schedules,
    parse_patch_schedule,
    parse_put_schedule,
    parse_schedule_by_name,
)
from jobcore.commands.status import parse_messages, parse_queue_jobs, parse_status
from jobcore.engine import Engine
from jobcore.engine.batch import BatchResult
from jobcore.engine.creating import Created, new_item
from jobcore.engine.listing import Message, Page
from jobcore.engine.queues import Queue
from jobcore.engine.recovery import Purged, Redriven
from jobcore.engine.schedules import Schedule, ScheduleRun
from jobcore.model import Job, Principal


def _query(values: Mapping[str, Any] | None) -> dict[str, str]:
    return {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in (values or {}).items()}


class Jobs:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.store = engine.ctx.store
        self.settings = engine.ctx.settings
        self.clock = engine.ctx.clock
        self.limits = engine.ctx.limits

    @property
    def claim_conflicts(self) -> int:
        return self.engine.leasing.conflicts

    def create(self, principal: Principal, body: Any, *, idempotency_key: str | None = None) -> Created:
        headers = {"idempotency-key": idempotency_key} if idempotency_key is not None else {}
        return self.engine.creating.create(principal, parse_create(Parts(body=body, headers=headers), self.limits))

    def get(self, principal: Principal, job_id: str) -> Job:
        return self.engine.listing.get(principal, parse_job_by_id(Parts(path={"id": job_id}), self.limits))

    def result(self, principal: Principal, job_id: str) -> Any:
        return self.engine.listing.result(principal, parse_job_by_id(Parts(path={"id": job_id}), self.limits))

    def list_jobs(self, principal: Principal, query: Mapping[str, Any] | None = None) -> Page[Job]:
        return self.engine.listing.list_jobs(principal, parse_list(Parts(query=_query(query)), self.limits))

    def messages(self, principal: Principal, job_id: str, query: Mapping[str, Any] | None = None) -> Page[Message]:
        command = parse_messages(Parts(path={"id": job_id}, query=_query(query)), self.limits)
        return self.engine.listing.messages(principal, command)

    def queues(self, query: Mapping[str, Any] | None = None, principal: Principal | None = None) -> Page[Queue]:
        return self.engine.queues.page(principal or _service(), parse_list_queues(Parts(query=_query(query)), self.limits))

    def queue_names(self, query: Mapping[str, Any] | None = None) -> list[str]:
        return [q.type for q in self.queues(query).data]

    def queue(self, job_type: str, principal: Principal | None = None) -> Queue:
        return self.engine.queues.get(principal or _service(), parse_get_queue(Parts(path={"type": job_type}), self.limits))

    def patch_queue(self, job_type: str, body: Any, principal: Principal | None = None) -> Queue:
        command = parse_patch_queue(Parts(path={"type": job_type}, body=body), self.limits)
        return self.engine.queues.patch(principal or _service(), command)

    def history(self, job_type: str, query: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        command = parse_history(Parts(path={"type": job_type}, query=_query(query)), self.limits)
        return self.engine.queues.history(_service(), command)

    def retry(self, principal: Principal, job_id: str) -> Job:
        return self.engine.recovery.retry(principal, parse_job_by_id(Parts(path={"id": job_id}), self.limits))

    def redrive(self, principal: Principal, job_type: str, body: Any = None) -> Redriven:
        command = parse_redrive(Parts(path={"type": job_type}, body=body or {}), self.limits)
        return self.engine.recovery.redrive(principal, command)

    def purge(
        self, principal: Principal, job_type: str, query: Mapping[str, Any] | None = None, *, budget: int | None = None
    ) -> Purged:
        command = parse_purge(Parts(path={"type": job_type}, query=_query(query)), self.limits)
        if budget is None:
            return self.engine.recovery.purge(principal, command)
        return self.engine.recovery.purge(principal, command, budget=budget)

    def queue_jobs(self, job_type: str, query: Mapping[str, Any] | None = None, principal: Principal | None = None) -> Page[Job]:
        command = parse_queue_jobs(Parts(path={"type": job_type}, query=_query(query)), self.limits)
        return self.engine.listing.queue_jobs(principal or _service(), command)

    def put_schedule(self, principal: Principal, name: str, body: Any) -> tuple[Schedule, bool]:
        return self.engine.schedules.put(principal, parse_put_schedule(Parts(path={"name": name}, body=body), self.limits))

    def schedule(self, principal: Principal, name: str) -> Schedule:
        return self.engine.schedules.get(principal, parse_schedule_by_name(Parts(path={"name": name}), self.limits))

    def schedules(self, principal: Principal, query: Mapping[str, Any] | None = None) -> Page[Schedule]:
        return self.engine.schedules.page(principal, parse_list_schedules(Parts(query=_query(query)), self.limits))

    def patch_schedule(self, principal: Principal, name: str, body: Any) -> Schedule:
        return self.engine.schedules.patch(principal, parse_patch_schedule(Parts(path={"name": name}, body=body), self.limits))

    def delete_schedule(self, principal: Principal, name: str) -> Schedule:
        return self.engine.schedules.delete(principal, parse_schedule_by_name(Parts(path={"name": name}), self.limits))

    def run_schedules(self, now: datetime | None = None) -> ScheduleRun:
        return self.engine.schedules.run_due(now)

    def start(self, principal: Principal, job_id: str, body: Any = None) -> Job:
        return self.engine.leasing.start(principal, parse_start(Parts(path={"id": job_id}, body=body), self.limits))

    def claim(self, principal: Principal, job_type: str, body: Any = None, *, time_left_ms: int | None = None) -> Job | None:
        command = parse_claim(Parts(path={"type": job_type}, body=body), self.limits)
        return self.engine.leasing.claim(principal, command, time_left_ms=time_left_ms)

    def extend(self, principal: Principal, job_id: str, body: Any) -> Job:
        return self.engine.leasing.extend(principal, parse_extend(Parts(path={"id": job_id}, body=body), self.limits))

    def abort(self, principal: Principal, job_id: str, body: Any) -> Job:
        return self.engine.leasing.abort(principal, parse_abort(Parts(path={"id": job_id}, body=body), self.limits))

    def complete(self, principal: Principal, job_id: str, body: Any = None) -> Job:
        return self.engine.leasing.complete(principal, parse_complete(Parts(path={"id": job_id}, body=body), self.limits))

    def fail(self, principal: Principal, job_id: str, body: Any) -> Job:
        return self.engine.leasing.fail(principal, parse_fail(Parts(path={"id": job_id}, body=body), self.limits))

    def post_status(self, principal: Principal, job_id: str, body: Any) -> Job:
        return self.engine.progress.post_status(principal, parse_status(Parts(path={"id": job_id}, body=body), self.limits))

    def cancel(self, principal: Principal, job_id: str) -> Job:
        return self.engine.progress.cancel(principal, parse_job_by_id(Parts(path={"id": job_id}), self.limits))

    def patch(self, principal: Principal, job_id: str, body: Any, *, if_match: int | None = None) -> Job:
        headers = {"if-match": str(if_match)} if if_match is not None else {}
        command = parse_patch(Parts(path={"id": job_id}, body=body, headers=headers), self.limits)
        return self.engine.admin.patch(principal, command)

    def delete(self, principal: Principal, job_id: str) -> Job:
        return self.engine.admin.delete(principal, parse_job_by_id(Parts(path={"id": job_id}), self.limits))

    def delete_all(self, principal: Principal | None = None, *, max_items: int = 5000) -> Any:
        return self.engine.admin.sweep(principal or _service(), parse_delete_all(Parts(), self.limits), budget=max_items)

    def clean(self, principal: Principal | None = None, *, max_items: int = 5000) -> Any:
        return self.engine.admin.sweep(principal or _service(), parse_clean(Parts(), self.limits), budget=max_items)

    def _new_job_item(self, principal: Principal, body: Any, now: datetime) -> tuple[dict[str, Any], bool]:
        """The job item a create would write, not written (tests store many at once)."""
        command = parse_create(Parts(body=body), self.limits)
        return new_item(self.engine.ctx, principal, command, now), command.unique

    def batch(self, principal: Principal, body: Any) -> BatchResult:
        return self.engine.batches.batch(principal, parse_batch(Parts(body=body), self.limits))


def _service() -> Principal:
    from jobcore.model import Role

    return Principal("svc-test", Role.SERVICE)
