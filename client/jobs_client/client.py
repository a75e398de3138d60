"""`JobsClient`: one method per route of the contract, over one reused HTTP connection pool
(transport.HttpSession, which also holds the retry rules).

Retries: every call is retried on a 429 or 503 (the service wrote nothing). A lost
connection, a timeout or a gateway's 502/504 leaves unknown whether the call took effect, so
only idempotent calls are retried on those: reads, cancel, extend, clean, delete-all, purge,
setting a queue's paused/fifo/shards, putting, patching and deleting a schedule (each sets a
state by name), and create (it always carries an `Idempotency-Key`, so a retried create
returns the first response instead of creating twice). Retrying a job and redriving a queue
are not: repeated after they took effect, the first answers `not_retryable` and the second
retries another batch beyond its limit.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import quote

from .errors import ApiError, NotFound
from .models import BatchResult, HistoryMinute, Job, Message, Page, Progress, Queue, Redrive, Schedule, Speed
from .transport import UNSET as _UNSET
from .transport import USER_AGENT, HttpSession, Reply, RetryPolicy

T = TypeVar("T")
IDS_PER_CALL = 100  # the most ids `GET /jobs?ids=` takes


def _compact(fields: Mapping[str, Any]) -> dict[str, Any]:
    """The fields that were given (an argument left at _UNSET is not sent; None is)."""
    return {k: v for k, v in fields.items() if v is not _UNSET}


def _segment(value: str) -> str:
    """A value as one path segment: a type may hold `/`, `#` or `?`."""
    return quote(value, safe="")


class JobsClient(HttpSession):
    """A client of the jobs service's HTTP API. Thread-safe; reuse one per process."""

    # -- helpers over HttpSession.request -------------------------------------------------
    def _job(self, method: str, path: str, *, idempotent: bool, body: Any = _UNSET, **kwargs: Any) -> Job:
        return Job.from_wire(self.request(method, path, body=body, idempotent=idempotent, **kwargs).body)

    def _page(self, path: str, params: Mapping[str, Any], parse: Callable[[dict[str, Any]], T]) -> Page[T]:
        body = self.request("GET", path, params=params, idempotent=True).body
        return Page([parse(item) for item in body["data"]], body.get("next_cursor"))

    @staticmethod
    def _all(fetch: Callable[[str | None], Page[T]]) -> Iterator[T]:
        cursor: str | None = None
        while True:
            page = fetch(cursor)
            yield from page.data
            if not page.next_cursor:
                return
            cursor = page.next_cursor

    # -- jobs -----------------------------------------------------------------------------
    def create_job(
        self,
        type: str,
        *,
        ref_id: str | None = _UNSET,
        owner: str | None = _UNSET,
        title: str | None = _UNSET,
        params: Any = _UNSET,
        ttl_ms: int | None = _UNSET,
        delay_ms: int | None = _UNSET,
        available_at: datetime | str | None = _UNSET,
        max_retries: int | None = _UNSET,
        priority: int | None = _UNSET,
        state: str | None = _UNSET,
        initial_status: str | None = _UNSET,
        depends_on: list[str] | None = _UNSET,
        idempotency_key: str | None = None,
    ) -> Job:
        """Create a job (201). A generated Idempotency-Key makes retries safe."""
        return self._create(locals(), unique=False)[0]

    def create_unique_job(
        self,
        type: str,
        ref_id: str,
        *,
        owner: str | None = _UNSET,
        title: str | None = _UNSET,
        params: Any = _UNSET,
        ttl_ms: int | None = _UNSET,
        delay_ms: int | None = _UNSET,
        available_at: datetime | str | None = _UNSET,
        max_retries: int | None = _UNSET,
        priority: int | None = _UNSET,
        state: str | None = _UNSET,
        initial_status: str | None = _UNSET,
        depends_on: list[str] | None = _UNSET,
        idempotency_key: str | None = None,
    ) -> tuple[Job, bool]:
        """Create unless an unfinished job of this type and ref_id exists: (job, created)."""
        return self._create(locals(), unique=True)

    def _create(self, arguments: dict[str, Any], *, unique: bool) -> tuple[Job, bool]:
        key = arguments.pop("idempotency_key") or uuid.uuid4().hex
        arguments.pop("self")
        body = _compact(arguments)
        if unique:
            body["unique"] = True
        reply = self.request("POST", "/jobs", body=body, headers={"Idempotency-Key": key}, idempotent=True)
        return Job.from_wire(reply.body), reply.status == 201

    def get_job(self, job_id: str) -> Job | None:
        """The job, or None when it does not exist (or is not the caller's to see)."""
        try:
            return self._job("GET", f"/jobs/{job_id}", idempotent=True)
        except NotFound:
            return None

    def list_jobs(
        self,
        *,
        type: str | None = None,
        ref_id: str | None = None,
        owner: str | None = None,
        state: str | None = None,
        created_from: datetime | str | None = None,
        created_to: datetime | str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> Page[Job]:
        params: dict[str, Any] = {"type": type, "ref_id": ref_id, "owner": owner, "state": state}
        params |= {"created_from": created_from, "created_to": created_to, "limit": limit, "cursor": cursor}
        return self._page("/jobs", params, Job.from_wire)

    def iter_jobs(self, *, page_size: int = 100, **filters: Any) -> Iterator[Job]:
        """Every job the filters match (list_jobs' filters), newest first, page after page."""
        return self._all(lambda cursor: self.list_jobs(**filters, limit=page_size, cursor=cursor))

    def patch_job(self, job_id: str, *, if_match: int | None = None, **fields: Any) -> Job:
        """Set title, status, params, result, owner, state, priority, or type (moves an idle or
        pending job to another queue); `if_match` guards on the version."""
        headers = {"If-Match": str(if_match)} if if_match is not None else None
        return self._job("PATCH", f"/jobs/{job_id}", body=fields, headers=headers, idempotent=False)

    def get_jobs(self, ids: Sequence[str]) -> list[Job]:
        """These jobs, in the order asked; missing ones (or another user's) are left out."""
        if isinstance(ids, str):
            raise TypeError("ids: a sequence of job ids, not one string")
        if any("," in job_id for job_id in ids):
            raise ValueError("a job id holds no comma")
        jobs: list[Job] = []
        for first in range(0, len(ids), IDS_PER_CALL):
            chunk = ",".join(ids[first : first + IDS_PER_CALL])
            jobs.extend(self._page("/jobs", {"ids": chunk}, Job.from_wire).data)
        return jobs

    def delete_job(self, job_id: str) -> Job:
        return self._job("DELETE", f"/jobs/{job_id}", idempotent=False)

    def delete_all_jobs(self) -> int:
        """Delete every job (admin); calls again while the service says there is more."""
        return self._drain("DELETE", "/jobs")

    def clean_jobs(self) -> int:
        """Delete finished jobs past retention and jobs past their deadline."""
        return self._drain("POST", "/jobs/clean")

    def _drain(self, method: str, path: str) -> int:
        deleted = 0
        while True:
            body = self.request(method, path, idempotent=True).body
            deleted += int(body.get("deleted") or 0)
            if not body.get("more"):
                return deleted

    def cancel_job(self, job_id: str) -> Job:
        return self._job("POST", f"/jobs/{job_id}/cancel", idempotent=True)

    def retry_job(self, job_id: str) -> Job:
        """An error or cancelled job back to pending: NotRetryable (409) in another state,
        Duplicate (409, `.existing_id`) when its unique type+ref_id is taken meanwhile."""
        return self._job("POST", f"/jobs/{job_id}/retry", idempotent=False)

    def get_result(self, job_id: str) -> Any:
        """The result of a finished job; NotFinished (409) before."""
        return self.request("GET", f"/jobs/{job_id}/result", idempotent=True).body["result"]

    def list_messages(self, job_id: str, *, limit: int | None = None, cursor: str | None = None) -> Page[Message]:
        return self._page(f"/jobs/{job_id}/messages", {"limit": limit, "cursor": cursor}, Message.from_wire)

    def iter_messages(self, job_id: str) -> Iterator[Message]:
        return self._all(lambda cursor: self.list_messages(job_id, limit=100, cursor=cursor))

    # -- leases ---------------------------------------------------------------------------
    def start_job(self, job_id: str, *, timeout_ms: int, worker: str | None = None) -> Job:
        body = _compact({"timeout_ms": timeout_ms, "worker": worker if worker is not None else _UNSET})
        return self._job("POST", f"/jobs/{job_id}/start", body=body, idempotent=False)

    def claim(
        self,
        type: str,
        *,
        timeout_ms: int,
        worker: str | None = None,
        wait_ms: int | None = None,
        max_retries: int | None = None,
        depends: list[dict[str, Any]] | None = None,
    ) -> Job | None:
        """Lease the next available job of the queue (long polling up to wait_ms); None if none."""
        body = {"timeout_ms": timeout_ms, "worker": worker, "wait_ms": wait_ms, "max_retries": max_retries, "depends": depends}
        wait_s = (wait_ms or 0) / 1000
        reply = self.request(
            "POST",
            f"/queues/{type}/claim",
            body={k: v for k, v in body.items() if v is not None},
            idempotent=False,
            timeout_s=self.timeout_s + wait_s,
        )
        return Job.from_wire(reply.body) if reply.status == 200 else None

    def claim_many(
        self,
        types: str | list[str],
        *,
        max_jobs: int,
        timeout_ms: int,
        worker: str | None = None,
        wait_ms: int | None = None,
        max_retries: int | None = None,
    ) -> list[Job]:
        """Lease up to max_jobs jobs, each with its own lease token: from one queue, or from
        the first of several (tried in the order given; rotate it for fairness). [] if none."""
        body: dict[str, Any] = {"timeout_ms": timeout_ms, "worker": worker, "wait_ms": wait_ms,
                                "max_retries": max_retries, "max_jobs": max_jobs}  # fmt: skip
        if isinstance(types, str):
            path = f"/queues/{types}/claim"
        else:
            path, body["types"] = "/claim", list(types)
        reply = self.request(
            "POST",
            path,
            body={k: v for k, v in body.items() if v is not None},
            idempotent=False,
            timeout_s=self.timeout_s + (wait_ms or 0) / 1000,
        )
        return [Job.from_wire(item) for item in reply.body["data"]] if reply.status == 200 else []

    def extend(self, job_id: str, lease_token: str, *, timeout_ms: int) -> Job:
        """`locked_until = now + timeout_ms`; the answer says whether cancel was requested."""
        body = {"lease_token": lease_token, "timeout_ms": timeout_ms}
        return self._job("POST", f"/jobs/{job_id}/extend", body=body, idempotent=True)

    def abort(self, job_id: str, lease_token: str) -> Job:
        """Release the lease: pending again, claimable now (cancelled if cancel was requested)."""
        return self._job("POST", f"/jobs/{job_id}/abort", body={"lease_token": lease_token}, idempotent=False)

    def complete(self, job_id: str, *, lease_token: str | None = None, result: Any = None) -> Job:
        body = _compact({"lease_token": lease_token if lease_token is not None else _UNSET, "result": result})
        return self._job("POST", f"/jobs/{job_id}/complete", body=body, idempotent=False)

    def fail(
        self,
        job_id: str,
        lease_token: str,
        *,
        code: str = "failed",
        message: str = "",
        retry: bool = True,
        retry_in_ms: int | None = None,
    ) -> Job:
        """Back to pending (after retry_in_ms, or the service's backoff) while retries remain;
        `retry=False` ends it in error at once."""
        body: dict[str, Any] = {"lease_token": lease_token, "error": {"code": code, "message": message}, "retry": retry}
        if retry_in_ms is not None:
            body["retry_in_ms"] = retry_in_ms
        return self._job("POST", f"/jobs/{job_id}/fail", body=body, idempotent=False)

    def post_status(
        self,
        job_id: str,
        *,
        new_title: str | None = None,
        new_status: str | None = None,
        progress: Progress | dict[str, Any] | None = None,
        speeds: list[Speed] | list[dict[str, Any]] | None = None,
        message_to_append: str | None = None,
        complete: bool | None = None,
        lease_token: str | None = None,
        extend_ms: int | None = None,
    ) -> Job:
        """Title, status, progress, speeds, a message, completion; with the lease token and
        extend_ms also the heartbeat, in one write."""
        body = {
            "new_title": new_title,
            "new_status": new_status,
            "progress": progress,
            "speeds": speeds,
            "message_to_append": message_to_append,
            "complete": complete,
            "lease_token": lease_token,
            "extend_ms": extend_ms,
        }
        given = {k: v for k, v in body.items() if v is not None}
        return self._job("POST", f"/jobs/{job_id}/status", body=given, idempotent=False)

    # -- queues, batches, schema ----------------------------------------------------------
    def list_queues(self, *, prefix: str | None = None, limit: int | None = None, cursor: str | None = None) -> Page[Queue]:
        """Queues (their names are `.type`), with counts, lag and settings, by name."""
        return self._page("/queues", {"prefix": prefix, "limit": limit, "cursor": cursor}, Queue.from_wire)

    def iter_queues(self, *, prefix: str | None = None) -> Iterator[Queue]:
        return self._all(lambda cursor: self.list_queues(prefix=prefix, limit=100, cursor=cursor))

    def get_queue(self, type: str) -> Queue | None:
        """The queue, or None for a queue never used."""
        try:
            return Queue.from_wire(self.request("GET", f"/queues/{_segment(type)}", idempotent=True).body)
        except NotFound:
            return None

    def set_queue(self, type: str, *, paused: bool | None = None, fifo: bool | None = None, shards: int | None = None) -> Queue:
        """Pause or resume claims, turn oldest-first order on or off, spread a hot queue's new jobs over 1-64 shards (fifo: 1)."""
        if shards is not None and (isinstance(shards, bool) or not isinstance(shards, int) or not 1 <= shards <= 64):
            raise ValueError(f"shards is an integer from 1 to 64, not {shards!r}")
        body = {k: v for k, v in {"paused": paused, "fifo": fifo, "shards": shards}.items() if v is not None}
        if not body:
            raise ValueError("set at least one of paused, fifo, shards")
        # Idempotent: it sets values, whatever they were.
        return Queue.from_wire(self.request("PATCH", f"/queues/{_segment(type)}", body=body, idempotent=True).body)

    def pause_queue(self, type: str) -> Queue:
        """No claims from the queue until it is resumed (creating jobs still works)."""
        return self.set_queue(type, paused=True)

    def resume_queue(self, type: str) -> Queue:
        return self.set_queue(type, paused=False)

    def queue_history(self, type: str, *, start: datetime | None = None, end: datetime | None = None) -> list[HistoryMinute]:
        """Per minute, oldest first, with the quiet minutes: created, started, finished, failed,
        retried. The service's default is the last hour."""
        params = {"from": start, "to": end}
        body = self.request("GET", f"/queues/{_segment(type)}/history", params=params, idempotent=True).body
        return [HistoryMinute.from_wire(minute) for minute in body["data"]]

    def redrive(
        self, type: str, *, states: Sequence[str] | None = None, error_code: str | None = None, limit: int | None = None
    ) -> Redrive:
        """One call: up to `limit` (1-1000) jobs of the queue in `states` (error, cancelled;
        the service's default: error), with this error code if given, back to pending."""
        body: dict[str, Any] = {"states": list(states) if states is not None else None, "error_code": error_code, "limit": limit}
        given = {k: v for k, v in body.items() if v is not None}
        return Redrive.from_wire(self.request("POST", f"/queues/{_segment(type)}/redrive", body=given, idempotent=False).body)

    def redrive_all(
        self,
        type: str,
        *,
        states: Sequence[str] | None = None,
        error_code: str | None = None,
        limit: int | None = None,
        on_progress: Callable[[Redrive], None] | None = None,
    ) -> Redrive:
        """Redrive calls (of `limit` jobs each) while the service says there is more; the
        totals, which `on_progress` also gets after each call. `.more` stays True when it
        stopped because a call retried nothing."""
        totals = Redrive()
        while True:
            answer = self.redrive(type, states=states, error_code=error_code, limit=limit)
            totals += answer
            if on_progress is not None:
                on_progress(totals)
            # The service starts over at the oldest end on every call: after a call that
            # retried nothing, the next one would see the same jobs and skip them again.
            if not answer.more or answer.retried == 0:
                return totals

    def purge_queue_page(self, type: str, *, state: str | None = None) -> tuple[int, bool]:
        """One purge call (admin): (deleted, more). Every state but running when none given."""
        body = self.request("DELETE", f"/queues/{_segment(type)}/jobs", params={"state": state}, idempotent=True).body
        return int(body.get("deleted") or 0), bool(body.get("more"))

    def purge_queue(self, type: str, *, state: str | None = None, on_progress: Callable[[int], None] | None = None) -> int:
        """Delete the queue's jobs that are not running (of one state, if given), with their
        messages (admin); calls again while the service says there is more. The count."""
        deleted = 0
        while True:
            count, more = self.purge_queue_page(type, state=state)
            deleted += count
            if on_progress is not None:
                on_progress(deleted)
            # Nothing deleted yet more: the next call would answer the same; stop rather than spin.
            if not more or count == 0:
                return deleted

    def list_queue_jobs(
        self, type: str, *, include_leased: bool = False, limit: int | None = None, cursor: str | None = None
    ) -> Page[Job]:
        params = {"include_leased": include_leased, "limit": limit, "cursor": cursor}
        return self._page(f"/queues/{type}/jobs", params, Job.from_wire)

    def iter_queue_jobs(self, type: str, *, include_leased: bool = False) -> Iterator[Job]:
        return self._all(lambda cursor: self.list_queue_jobs(type, include_leased=include_leased, limit=100, cursor=cursor))

    def batch(
        self,
        *,
        create: list[dict[str, Any]] | None = None,
        update: list[dict[str, Any]] | None = None,
        delete: list[dict[str, Any]] | None = None,
        depends: list[dict[str, Any]] | None = None,
    ) -> BatchResult:
        """All or nothing; BatchConflict names every failed constraint in `.failures`."""
        body = {"create": create, "update": update, "delete": delete, "depends": depends}
        reply = self.request("POST", "/batch", body={k: v for k, v in body.items() if v}, idempotent=False).body
        return BatchResult(
            [Job.from_wire(j) for j in reply.get("created") or []],
            [Job.from_wire(j) for j in reply.get("updated") or []],
            [str(i) for i in reply.get("deleted") or []],
        )

    def get_schema(self) -> dict[str, Any]:
        return dict(self.request("GET", "/schema", idempotent=True).body)

    # -- schedules ------------------------------------------------------------------------
    def put_schedule(
        self,
        name: str,
        *,
        job: dict[str, Any],
        cron: str | None = None,
        every_ms: int | None = None,
        timezone: str | None = None,
        paused: bool | None = None,
    ) -> tuple[Schedule, bool]:
        """Create or replace the schedule: (schedule, created). `job` is each slot's create body
        (`type` required; params, title, owner, max_retries, ttl_ms, priority); exactly one of
        `cron` (five fields, read in `timezone`, default UTC) and `every_ms` (at least 60,000).
        A put retried after a lost connection may answer created=False for a schedule it created."""
        if (cron is None) == (every_ms is None):
            raise ValueError("give cron or every_ms (one of the two)")
        body = {"cron": cron, "every_ms": every_ms, "timezone": timezone, "job": job, "paused": paused}
        given = {k: v for k, v in body.items() if v is not None}
        # Idempotent: the same body puts the same schedule, however often it is sent.
        reply = self.request("PUT", f"/schedules/{_segment(name)}", body=given, idempotent=True)
        return Schedule.from_wire(reply.body), reply.status == 201

    def get_schedule(self, name: str) -> Schedule | None:
        """The schedule, or None when there is none of that name."""
        try:
            return Schedule.from_wire(self.request("GET", f"/schedules/{_segment(name)}", idempotent=True).body)
        except NotFound:
            return None

    def list_schedules(self, *, prefix: str | None = None, limit: int | None = None, cursor: str | None = None) -> Page[Schedule]:
        """Schedules by name."""
        return self._page("/schedules", {"prefix": prefix, "limit": limit, "cursor": cursor}, Schedule.from_wire)

    def iter_schedules(self, *, prefix: str | None = None) -> Iterator[Schedule]:
        return self._all(lambda cursor: self.list_schedules(prefix=prefix, limit=100, cursor=cursor))

    def set_schedule(
        self,
        name: str,
        *,
        paused: bool | None = None,
        cron: str | None = None,
        every_ms: int | None = None,
        timezone: str | None = None,
        job: dict[str, Any] | None = None,
    ) -> Schedule:
        """Change only what is given: `cron` or `every_ms` replaces the cadence (the other one
        goes), `timezone` alone re-reads the cron in it, `job` replaces the whole template.
        A resumed schedule starts at its next slot from now."""
        if cron is not None and every_ms is not None:
            raise ValueError("give cron or every_ms, not both")
        body = {"paused": paused, "cron": cron, "every_ms": every_ms, "timezone": timezone, "job": job}
        given = {k: v for k, v in body.items() if v is not None}
        if not given:
            raise ValueError("set at least one of paused, cron, every_ms, timezone, job")
        # Idempotent: it sets values, whatever they were.
        return Schedule.from_wire(self.request("PATCH", f"/schedules/{_segment(name)}", body=given, idempotent=True).body)

    def pause_schedule(self, name: str) -> Schedule:
        """No jobs from the schedule until it is resumed."""
        return self.set_schedule(name, paused=True)

    def resume_schedule(self, name: str) -> Schedule:
        """Back on its cadence from the next slot from now (missed slots are not made up)."""
        return self.set_schedule(name, paused=False)

    def delete_schedule(self, name: str) -> Schedule:
        """Delete it (the jobs it created stay); the schedule as it was. Retried after a lost
        connection, a delete that took effect the first time answers NotFound."""
        return Schedule.from_wire(self.request("DELETE", f"/schedules/{_segment(name)}", idempotent=True).body)


__all__ = ["USER_AGENT", "ApiError", "JobsClient", "Reply", "RetryPolicy"]
