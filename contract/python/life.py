"""A job's whole life, and the error paths a caller meets, through the client that
openapi-python-client generates from docs/openapi.yaml (package `jobs_service_client`, on
PYTHONPATH). Run by tests/contract/test_generated_clients.py against a local cloud; prints one
JSON line, {"ok": true, "calls": n}, and exits 1 at the first surprise."""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any, NoReturn

from jobs_service_client import AuthenticatedClient
from jobs_service_client.api.jobs import (
    create_job,
    delete_job,
    get_job,
    get_result,
    list_messages,
    retry_job,
)
from jobs_service_client.api.schema import get_schema
from jobs_service_client.api.workers import (
    abort_job,
    claim_any,
    claim_job,
    complete_job,
    extend_lease,
    fail_job,
    post_status,
    start_job,
)
from jobs_service_client.models import (
    ClaimAny,
    ClaimAnyResponse200Type1,
    ClaimJob,
    CompleteJob,
    CreateJob,
    Error,
    ErrorCode,
    ExtendLease,
    FailJob,
    FailJobErrorType0,
    InitialState,
    Job,
    JobWithLease,
    LeaseOnly,
    PostStatus,
    ProgressOrNullType0,
    Speed,
    StartJob,
    State,
)
from jobs_service_client.types import Response

calls: list[str] = []  # what was called, in order


def fail(what: str) -> NoReturn:
    print(f"unexpected: {what}", file=sys.stderr)
    sys.exit(1)


def seen(response: Response[Any], status: int, what: str) -> Any:
    """The parsed body; every answer, error or not, carries the correlation id."""
    calls.append(what)
    if response.status_code != status:
        fail(f"{what}: status {response.status_code}, expected {status}: {response.content[:300]!r}")
    if not response.headers.get("X-Correlation-Id"):
        fail(f"{what}: no X-Correlation-Id")
    return response.parsed


def error_of(parsed: Any, code: ErrorCode, what: str) -> Error:
    if not isinstance(parsed, Error) or parsed.error.code != code:
        fail(f"{what}: expected {code.value}, got {parsed!r}")
    return parsed


def job_of(parsed: Any, what: str) -> Job:
    if not isinstance(parsed, Job):
        fail(f"{what}: expected a job, got {parsed!r}")
    return parsed


def leased_of(parsed: Any, what: str) -> JobWithLease:
    if not isinstance(parsed, JobWithLease):
        fail(f"{what}: expected a leased job, got {parsed!r}")
    return parsed


def life(service: AuthenticatedClient, queue: str) -> None:
    created = seen(
        create_job.sync_detailed(
            client=service, body=CreateJob(type_=queue, ref_id="order-1", unique=True, params={"pages": 3}, title="python")
        ),
        201,
        "create",
    )
    job = job_of(created, "create")
    if job.state != State.PENDING or job.priority != 2 or job.attempts != 0:
        fail("a new job is pending, priority 2")
    twin = job_of(
        seen(create_job.sync_detailed(client=service, body=CreateJob(type_=queue, ref_id="order-1", unique=True)), 200, "twin"),
        "twin",
    )
    if twin.id != job.id:
        fail("the unfinished twin is answered")
    if job_of(seen(get_job.sync_detailed(job.id, client=service), 200, "get"), "get").title != "python":
        fail("get")

    leased = leased_of(
        seen(claim_job.sync_detailed(queue, client=service, body=ClaimJob(timeout_ms=60000, worker="python")), 200, "claim"),
        "claim",
    )
    if leased.id != job.id or leased.state != State.RUNNING or leased.lease_owner != "python":
        fail("claimed")
    token = leased.lease_token
    extended = leased_of(
        seen(
            extend_lease.sync_detailed(job.id, client=service, body=ExtendLease(lease_token=token, timeout_ms=90000)),
            200,
            "extend",
        ),
        "extend",
    )
    if extended.cancel_requested:
        fail("extend")
    status = PostStatus(
        lease_token=token,
        extend_ms=60000,
        new_status="page 1 of 3",
        progress=ProgressOrNullType0(title="pages", current=1, maximum=3),
        speeds=[Speed(title="pages", speed=2.5, unit="pages/s")],
        message_to_append="started",
    )
    posted = job_of(seen(post_status.sync_detailed(job.id, client=service, body=status), 200, "status"), "status")
    if not isinstance(posted.progress, ProgressOrNullType0) or posted.progress.current != 1:
        fail("status post")
    page = seen(list_messages.sync_detailed(job.id, client=service, limit=10), 200, "messages")
    if "started" not in [m.message for m in page.data]:
        fail("messages")

    done = job_of(
        seen(
            complete_job.sync_detailed(job.id, client=service, body=CompleteJob(lease_token=token, result={"pages": 3})),
            200,
            "complete",
        ),
        "complete",
    )
    if done.state != State.FINISHED or not done.complete:
        fail("finished")
    # Completed again with the same token: 200, and the first result stays.
    seen(
        complete_job.sync_detailed(job.id, client=service, body=CompleteJob(lease_token=token, result={"pages": 99})),
        200,
        "complete again",
    )
    if seen(get_result.sync_detailed(job.id, client=service), 200, "result").result != {"pages": 3}:
        fail("the first result is kept")
    stale = seen(
        complete_job.sync_detailed(job.id, client=service, body=CompleteJob(lease_token="not-the-lease")), 409, "stale complete"
    )
    if error_of(stale, ErrorCode.LEASE_LOST, "stale complete").error.details.state != State.FINISHED:
        fail("lease_lost says the state")


def errors(service: AuthenticatedClient, admin: AuthenticatedClient, queue: str) -> None:
    bad = seen(create_job.sync_detailed(client=service, body=CreateJob(type_=queue, priority=9)), 400, "invalid create")
    fields = error_of(bad, ErrorCode.INVALID_REQUEST, "invalid create").error.details.fields
    if not fields or "priority" not in fields.additional_properties:
        fail("details.fields names priority")
    missing = seen(get_job.sync_detailed("01JAAAAAAAAAAAAAAAAAAAAAAA", client=service), 404, "missing")
    error_of(missing, ErrorCode.NOT_FOUND, "missing")

    idle = job_of(
        seen(create_job.sync_detailed(client=service, body=CreateJob(type_=queue, state=InitialState.IDLE)), 201, "idle"), "idle"
    )
    if idle.state != State.IDLE:
        fail("idle")
    started = leased_of(
        seen(start_job.sync_detailed(idle.id, client=service, body=StartJob(worker="python")), 200, "start"), "start"
    )
    seen(abort_job.sync_detailed(idle.id, client=service, body=LeaseOnly(lease_token=started.lease_token)), 200, "abort")
    late = seen(
        fail_job.sync_detailed(
            idle.id,
            client=service,
            body=FailJob(lease_token=started.lease_token, error=FailJobErrorType0(code="boom"), retry=False),
        ),
        409,
        "fail after abort",
    )
    if error_of(late, ErrorCode.NOT_RUNNING, "fail after abort").error.details.state != State.PENDING:
        fail("not_running says the state")
    again = leased_of(seen(start_job.sync_detailed(idle.id, client=service, body=StartJob()), 200, "start again"), "start again")
    failed = job_of(
        seen(
            fail_job.sync_detailed(
                idle.id, client=service,
                body=FailJob(
                    lease_token=again.lease_token, error=FailJobErrorType0(code="boom", message="gone wrong"), retry=False
                ),
            ),
            200,
            "fail",
        ),
        "fail",
    )  # fmt: skip
    if failed.state != State.ERROR:
        fail("error")
    retried = job_of(seen(retry_job.sync_detailed(idle.id, client=admin), 200, "retry"), "retry")
    if retried.state != State.PENDING or retried.attempts != 0:
        fail("retried")

    # complete: true on a status post finishes the job.
    claimed = seen(claim_any.sync_detailed(client=service, body=ClaimAny(types=[queue], max_jobs=2)), 200, "claim any")
    if not isinstance(claimed, ClaimAnyResponse200Type1) or [j.id for j in claimed.data] != [idle.id]:
        fail("a list of one")
    body = PostStatus(lease_token=claimed.data[0].lease_token, new_status="all done", complete=True)
    finished = job_of(
        seen(post_status.sync_detailed(idle.id, client=service, body=body), 200, "status complete"), "status complete"
    )
    if finished.state != State.FINISHED or finished.status != "all done":
        fail("finished by a post")
    if seen(claim_job.sync_detailed(queue, client=service, body=ClaimJob()), 204, "empty queue") is not None:
        fail("204 has no body")
    schema = seen(get_schema.sync_detailed(client=service), 200, "schema")
    if "state" not in schema.properties.additional_properties or "id" not in schema.required:
        fail("schema")
    seen(delete_job.sync_detailed(idle.id, client=service), 200, "delete")


def main() -> None:
    url = os.environ["JOBS_URL"]
    service = AuthenticatedClient(base_url=url, token=os.environ["JOBS_SERVICE_TOKEN"], timeout=60.0)
    admin = AuthenticatedClient(base_url=url, token=os.environ["JOBS_ADMIN_TOKEN"], timeout=60.0)
    queue = f"py-life-{time.time_ns()}"
    life(service, queue)
    errors(service, admin, f"{queue}-errors")
    print(json.dumps({"ok": True, "calls": len(calls)}))


if __name__ == "__main__":
    main()
