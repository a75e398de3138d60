"""`make run`'s entry point as a subprocess, driven over HTTP only, as a user would."""

from __future__ import annotations

import json
import multiprocessing
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from jobcore.auth import mint_token
from localcloud.functions import api_routes
from localcloud.template import load_template
from tests.e2e.conftest import DEADLINE_S, LocalService, start_local_service, stop_local_service, wait_for
from tests.support.routes import may_call

ROUTES = sorted((r.method, r.path) for r in api_routes(load_template()))
MISSING = "01JDA3Q0Z8M6W4K2T9R7P5N3B1"


def concrete(path: str) -> str:
    return path.replace("{id}", MISSING).replace("{type}", "nothing")


def test_every_route_and_role_over_http(local_service: LocalService):
    for role in ("service", "user", "admin"):
        token = local_service.token(role, f"{role}-e2e")
        for method, path in ROUTES:
            if (method, path) == ("DELETE", "/v1/jobs"):
                continue  # would wipe the other tests' jobs; checked below for the refusals
            reply = local_service.request(method, concrete(path), token=token, body={})
            if not may_call(role, (method, path)):
                assert (reply.status, reply.error_code) == (403, "forbidden"), (role, method, path)
            else:
                assert reply.status < 500 and reply.status != 403, (role, method, path, reply.body)
    for role in ("service", "user"):
        refused = local_service.request("DELETE", "/v1/jobs", token=local_service.token(role, "x"))
        assert (refused.status, refused.error_code) == (403, "forbidden")


@pytest.mark.parametrize(
    "token",
    [None, "not-a-jwt", mint_token("another-secret-0123456789abcdef0123", "svc", "service"), "expired"],
)
def test_bad_tokens_get_the_contracts_401(local_service: LocalService, token):
    if token == "expired":
        token = local_service.token("service", "svc-expired", ttl_s=-120)
    reply = local_service.request("GET", "/v1/jobs", token=token, headers={"X-Correlation-Id": "e2e-401"})
    assert (reply.status, reply.error_code) == (401, "unauthorized")
    assert reply.headers["X-Correlation-Id"] == "e2e-401"


def test_api_gateway_answers(local_service: LocalService):
    token = local_service.token("service", "svc-gw")
    assert (local_service.request("GET", "/v2/nowhere").status, local_service.request("GET", "/v2/nowhere").body) == (
        404,
        {"message": "Not Found"},
    )
    too_big = local_service.request("POST", "/v1/jobs", token=token, raw_body=b"x" * (10 * 1024 * 1024 + 1))
    assert (too_big.status, too_big.body) == (413, {"message": "Request Entity Too Large"})
    bad_json = local_service.request("POST", "/v1/jobs", token=token, raw_body=b"{nope")
    assert (bad_json.status, bad_json.error_code) == (400, "invalid_json")
    assert "apigw-requestid" in {k.lower() for k in bad_json.headers}


def test_lease_expiry_and_reclaim_with_the_real_clock(local_service: LocalService):
    token = local_service.token("service", "svc-lease")
    job = local_service.request("POST", "/v1/jobs", token=token, body={"type": "expiry"}).body
    first = local_service.request("POST", "/v1/queues/expiry/claim", token=token, body={"timeout_ms": 300, "worker": "w1"})
    assert first.status == 200 and first.body["id"] == job["id"]

    def reclaimed() -> Any:
        reply = local_service.request("POST", "/v1/queues/expiry/claim", token=token, body={"worker": "w2"})
        return reply if reply.status == 200 else None

    second = wait_for(reclaimed, timeout=DEADLINE_S, interval=0.1, message="the lease to expire")
    assert second.body["attempts"] == 2 and second.body["lease_owner"] == "w2"
    late = local_service.request(
        "POST", f"/v1/jobs/{job['id']}/complete", token=token, body={"lease_token": first.body["lease_token"], "result": 1}
    )
    assert (late.status, late.error_code) == (409, "lease_lost")
    current = local_service.request("GET", f"/v1/jobs/{job['id']}", token=token).body
    assert current["state"] == "running" and current["result"] is None and current["lease_owner"] == "w2"


def drain(http_url: str, token: str, job_type: str, out: Any) -> None:
    """A worker process: claim and complete until the queue is empty."""

    def call(path: str, body: dict[str, Any]) -> tuple[int, Any]:
        request = urllib.request.Request(http_url + path, data=json.dumps(body).encode(), method="POST")
        request.add_header("Authorization", f"Bearer {token}")
        request.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(request, timeout=DEADLINE_S) as response:
            raw = response.read()
            return response.status, json.loads(raw) if raw else None

    completed = []
    while True:
        status, job = call(f"/v1/queues/{job_type}/claim", {"timeout_ms": 30_000})
        if status == 204:
            break
        call(f"/v1/jobs/{job['id']}/complete", {"lease_token": job["lease_token"], "result": {"ok": True}})
        completed.append(job["id"])
    out.put(completed)


def test_eight_worker_processes_drain_300_jobs(local_service: LocalService):
    token = local_service.token("service", "svc-drain")
    # One create at a time: moto's transactions slow down with the table, so batches of
    # 100 can outlast a function's Timeout on this machine (a local limit, not AWS's).
    created = {local_service.request("POST", "/v1/jobs", token=token, body={"type": "drain"}).body["id"] for _ in range(300)}
    assert len(created) == 300
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    workers = [context.Process(target=drain, args=(local_service.http_url, token, "drain", results)) for _ in range(8)]
    for worker in workers:
        worker.start()
    completed: list[str] = []
    for _ in workers:
        completed += results.get(timeout=300)
    for worker in workers:
        worker.join(timeout=DEADLINE_S)
        assert worker.exitcode == 0
    counts = Counter(completed)
    assert set(counts) == created and set(counts.values()) == {1}
    finished, cursor = [], None
    while True:
        query = "&cursor=" + cursor if cursor else ""
        page = local_service.request("GET", f"/v1/jobs?type=drain&state=finished&limit=100{query}", token=token).body
        finished += [job["id"] for job in page["data"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert sorted(finished) == sorted(created)


def test_another_dynamodb_endpoint_gets_the_tables_and_the_jobs(tmp_path: Path):
    from localcloud.dynamodb import EmbeddedDynamoDB

    external = EmbeddedDynamoDB()
    endpoint = external.start()
    try:
        service = start_local_service(tmp_path, extra_env={"JOBS_DYNAMODB_ENDPOINT": endpoint})
        try:
            token = service.token("service", "svc-ext")
            job = service.request("POST", "/v1/jobs", token=token, body={"type": "ext"}).body
        finally:
            assert stop_local_service(service) == 0
        import boto3

        client = boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1")
        assert "JobsTable" in client.list_tables()["TableNames"]
        item = client.get_item(TableName="JobsTable", Key={"PK": {"S": f"JOB#{job['id']}"}, "SK": {"S": "JOB"}})
        assert item["Item"]["type"] == {"S": "ext"}
        again = start_local_service(tmp_path, extra_env={"JOBS_DYNAMODB_ENDPOINT": endpoint})  # tables exist now
        try:
            assert again.request("GET", f"/v1/jobs/{job['id']}", token=again.token("service", "svc-ext")).status == 200
        finally:
            stop_local_service(again)
    finally:
        external.stop()
