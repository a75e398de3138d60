"""Operating queues over HTTP against `make run`'s local cloud: counts that equal the truth
(also when the counts function's batches fail and are retried, and when TTL removes jobs),
pause, and retry, redrive and purge in budgeted calls."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import LocalService, Reply, start_local_service, stop_local_service, wait_for

STATES = ("idle", "pending", "running", "finished", "error", "cancelled")
# The contract: a pause binds every claim that starts this long after the PATCH answered.
PAUSE_BINDS_S = 2.0
FAULTS = 3


@pytest.fixture(scope="module")
def faulty(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalService]:
    """The counts function's first batches fail after they did their work, so Lambda's
    retry delivers them again."""
    extra = {"JOBS_LOCAL_STREAM_FAULTS": f"QueueCountsFunction={FAULTS}"}
    service = start_local_service(tmp_path_factory.mktemp("faulty"), extra_env=extra)
    try:
        yield service
    finally:
        stop_local_service(service)


def call(service: LocalService, method: str, path: str, *, role: str = "service", **kwargs: Any) -> Reply:
    return service.request(method, path, token=service.token(role, f"{role}-ops"), **kwargs)


def ok(reply: Reply, status: int = 200) -> Any:
    assert reply.status == status, (reply.status, reply.body)
    return reply.body


def true_counts(service: LocalService, job_type: str) -> dict[str, int]:
    """The queue's jobs by state, read job by job."""
    found: Counter[str] = Counter()
    cursor: str | None = None
    while True:
        query = f"?type={job_type}&limit=100" + (f"&cursor={cursor}" if cursor else "")
        page = ok(call(service, "GET", f"/v1/jobs{query}"))
        found.update(job["state"] for job in page["data"])
        cursor = page["next_cursor"]
        if not cursor:
            return {state: found[state] for state in STATES}


def counts(service: LocalService, job_type: str) -> dict[str, int] | None:
    reply = call(service, "GET", f"/v1/queues/{job_type}")
    return dict(reply.body["counts"]) if reply.status == 200 else None


def counts_settle_at_the_truth(service: LocalService, queues: list[str]) -> None:
    def equal() -> bool:
        return all(counts(service, q) == true_counts(service, q) for q in queues)

    wait_for(equal, interval=0.3, message="queue counts equal to the jobs in each state")


def claim(service: LocalService, job_type: str, **body: Any) -> Reply:
    return call(service, "POST", f"/v1/queues/{job_type}/claim", body={"timeout_ms": 60_000, **body})


def test_counts_equal_the_truth_after_a_mix_and_failed_count_batches(faulty):
    queues = [f"mix-{n}" for n in range(3)]
    made = {q: [ok(call(faulty, "POST", "/v1/jobs", body={"type": q}), 201)["id"] for _ in range(8)] for q in queues}
    ok(call(faulty, "POST", "/v1/jobs", body={"type": queues[0], "state": "idle"}), 201)
    for q in queues[:2]:
        for n in range(5):
            job = ok(claim(faulty, q))
            token = {"lease_token": job["lease_token"]}
            if n == 0:
                ok(call(faulty, "POST", f"/v1/jobs/{job['id']}/complete", body={**token, "result": 1}))
            elif n == 1:
                failure = {**token, "error": {"code": "boom", "message": "x"}, "retry": False}
                ok(call(faulty, "POST", f"/v1/jobs/{job['id']}/fail", body=failure))
            elif n == 2:
                ok(call(faulty, "POST", f"/v1/jobs/{job['id']}/fail", body={**token, "error": {"code": "x", "message": "again"}}))
    ok(call(faulty, "POST", f"/v1/jobs/{made[queues[2]][0]}/cancel"))
    ok(call(faulty, "DELETE", f"/v1/jobs/{made[queues[2]][1]}"))
    ok(call(faulty, "PATCH", f"/v1/jobs/{made[queues[2]][2]}", body={"type": queues[1]}))
    errored = ok(call(faulty, "GET", f"/v1/jobs?type={queues[0]}&state=error"))["data"][0]["id"]
    ok(call(faulty, "POST", f"/v1/jobs/{errored}/retry"))
    counts_settle_at_the_truth(faulty, queues)
    assert counts(faulty, queues[0]) == {"idle": 1, "pending": 5, "running": 2, "finished": 1, "error": 0, "cancelled": 0}
    assert faulty.logs().count("failed by an injected fault") == FAULTS  # retried, and still exact
    history = ok(call(faulty, "GET", f"/v1/queues/{queues[0]}/history"))["data"]
    assert sum(m["created"] for m in history) == 9 and sum(m["finished"] for m in history) == 1


def test_a_paused_queue_leases_nothing_and_resumes(faulty):
    queue = "paused-queue"
    job_id = ok(call(faulty, "POST", "/v1/jobs", body={"type": queue}), 201)["id"]
    ok(call(faulty, "POST", "/v1/jobs", body={"type": queue}), 201)
    paused = ok(call(faulty, "PATCH", f"/v1/queues/{queue}", body={"paused": True}))
    answered = time.monotonic()
    assert paused["paused"] is True
    wait_for(lambda: time.monotonic() >= answered + PAUSE_BINDS_S, message="the pause's bound")
    for _ in range(3):
        assert claim(faulty, queue).status == 204
    assert claim(faulty, queue, wait_ms=1500).status == 204  # a long poll waits, leasing nothing
    refused = call(faulty, "POST", f"/v1/jobs/{job_id}/start", body={})
    assert (refused.status, refused.error_code) == (409, "queue_paused")
    ok(call(faulty, "POST", "/v1/jobs", body={"type": queue}), 201)  # creates are accepted
    assert ok(call(faulty, "GET", f"/v1/queues/{queue}"))["paused"] is True
    ok(call(faulty, "PATCH", f"/v1/queues/{queue}", body={"paused": False}))
    resumed = time.monotonic()
    wait_for(lambda: time.monotonic() >= resumed + PAUSE_BINDS_S, message="the resume's bound")
    assert ok(claim(faulty, queue))["type"] == queue


def test_retry_redrive_and_purge_over_http_in_budgeted_calls(faulty):
    """Over HTTP with 600 jobs (the engine's test works through 5,000: the local cloud's
    embedded DynamoDB takes some 30 ms a write on a loaded 2-core machine)."""
    queue, total = "deep", 600
    for _ in range(total // 100):  # jobs whose deadline passes at once
        ok(call(faulty, "POST", "/v1/batch", body={"create": [{"type": queue, "ttl_ms": 1}] * 100}))
    # Claims quarantine jobs past their deadline on the way (error `deadline_exceeded`).
    wait_for(lambda: claim(faulty, queue).status == 204 and (counts(faulty, queue) or {}).get("error") == total,
             interval=0.2, message="every job in error")  # fmt: skip
    assert counts(faulty, queue) == {**dict.fromkeys(STATES, 0), "error": total}

    one = ok(call(faulty, "GET", f"/v1/jobs?type={queue}&state=error&limit=1"))["data"][0]
    retried = ok(call(faulty, "POST", f"/v1/jobs/{one['id']}/retry"))
    assert (retried["id"], retried["state"], retried["attempts"]) == (one["id"], "pending", 0)
    assert call(faulty, "POST", f"/v1/jobs/{one['id']}/retry").error_code == "not_retryable"

    calls: list[dict[str, Any]] = []
    while not calls or calls[-1]["more"]:
        body = {"error_code": "deadline_exceeded", "limit": 250}
        calls.append(ok(call(faulty, "POST", f"/v1/queues/{queue}/redrive", body=body)))
        assert len(calls) < 30
    assert sum(c["retried"] for c in calls) == total - 1 and all(c["retried"] + c["skipped"] <= 250 for c in calls)
    assert len(calls) >= 3
    wait_for(lambda: counts(faulty, queue) == {**dict.fromkeys(STATES, 0), "pending": total}, message="all pending")
    history = ok(call(faulty, "GET", f"/v1/queues/{queue}/history"))["data"]
    assert sum(m["retried"] for m in history) == total and sum(m["created"] for m in history) == total

    forbidden = call(faulty, "DELETE", f"/v1/queues/{queue}/jobs")
    assert (forbidden.status, forbidden.error_code) == (403, "forbidden")  # purge: admins only
    purges: list[dict[str, Any]] = []
    while not purges or purges[-1]["more"]:
        purges.append(ok(call(faulty, "DELETE", f"/v1/queues/{queue}/jobs", role="admin")))
        assert len(purges) < 30
    assert sum(p["deleted"] for p in purges) == total and all(p["deleted"] <= 500 for p in purges) and len(purges) >= 2
    wait_for(lambda: counts(faulty, queue) == dict.fromkeys(STATES, 0), message="an empty queue")
    assert ok(call(faulty, "GET", f"/v1/jobs?type={queue}"))["data"] == []


def test_ttl_expiries_leave_the_counts(tmp_path: Path) -> None:
    # Ended jobs kept about 17 s instead of 7 days (long enough to see them counted first on
    # a loaded machine), the TTL sweep every 0.2 s.
    extra = {"JOBS_PARAMETERS": "RetentionDays=0.0002", "JOBS_LOCAL_TTL_SWEEP_S": "0.2"}
    service = start_local_service(tmp_path, extra_env=extra)
    try:
        queue = "expiring"
        for _ in range(4):
            ok(call(service, "POST", "/v1/jobs", body={"type": queue}), 201)
        for _ in range(2):
            job = ok(claim(service, queue))
            ok(call(service, "POST", f"/v1/jobs/{job['id']}/complete", body={"lease_token": job["lease_token"]}))
        finished = {**dict.fromkeys(STATES, 0), "pending": 2, "finished": 2}
        wait_for(lambda: counts(service, queue) == finished, interval=0.2, message="the finished jobs counted")
        wait_for(lambda: true_counts(service, queue)["finished"] == 0, interval=0.5, message="finished jobs expired")
        counts_settle_at_the_truth(service, [queue])
        assert counts(service, queue) == {**dict.fromkeys(STATES, 0), "pending": 2}
    finally:
        stop_local_service(service)


def test_claiming_more_at_once_and_from_several_queues(faulty):
    import threading

    from jobs_client import JobsClient

    client = JobsClient(faulty.http_url, faulty.token("service", "svc-more"))
    for _ in range(7):
        client.create_job("more-a")
    first = client.claim_many("more-a", max_jobs=5, timeout_ms=60_000)
    rest = client.claim_many("more-a", max_jobs=5, timeout_ms=60_000)
    assert (len(first), len(rest)) == (5, 2)
    assert len({j.id for j in first + rest}) == 7 and len({j.lease_token for j in first + rest}) == 7
    assert client.claim_many("more-a", max_jobs=5, timeout_ms=60_000) == []

    client.create_job("more-c")
    served = client.claim_many(["more-b", "more-c", "more-a"], max_jobs=3, timeout_ms=60_000)
    assert [j.type for j in served] == ["more-c"]
    single = call(faulty, "POST", "/v1/claim", body={"types": ["more-b"]})
    assert single.status == 204

    # A long poll on two queues wakes for a job in either.
    answer: list[Any] = []
    body = {"types": ["more-b", "more-d"], "wait_ms": 15_000, "timeout_ms": 60_000}
    poll = threading.Thread(target=lambda: answer.append(call(faulty, "POST", "/v1/claim", body=body)))
    poll.start()
    try:
        made = client.create_job("more-d")
    finally:
        poll.join(timeout=60)
    assert answer and answer[0].status == 200 and answer[0].body["id"] == made.id


def test_more_urgent_jobs_are_claimed_first_over_http(faulty):
    from jobs_client import JobsClient

    client = JobsClient(faulty.http_url, faulty.token("service", "svc-priority"))
    low = [client.create_job("prio", priority=3).id for _ in range(2)]
    normal = [client.create_job("prio").id for _ in range(2)]
    urgent = [client.create_job("prio", priority=1).id for _ in range(2)]
    taken = [client.claim("prio", timeout_ms=60_000) for _ in range(6)]
    ids = [job.id for job in taken if job is not None]
    assert [set(ids[:2]), set(ids[2:4]), set(ids[4:])] == [set(urgent), set(normal), set(low)]
    assert [job.priority for job in taken if job is not None] == [1, 1, 2, 2, 3, 3]
    assert client.claim("prio", timeout_ms=60_000) is None
    # A pending job moved to a more urgent level goes before older jobs of its old one.
    waiting = [client.create_job("prio", priority=2).id for _ in range(2)]
    ok(call(faulty, "PATCH", f"/v1/jobs/{waiting[1]}", body={"priority": 1}))
    assert [client.claim("prio", timeout_ms=60_000).id for _ in range(2)] == [waiting[1], waiting[0]]  # type: ignore[union-attr]
