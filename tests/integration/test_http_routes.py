"""Every route through its handler with real payload-2.0 events: roles, errors, shapes."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from jobcore.model import Principal, Role
from localcloud.functions import api_routes
from localcloud.template import load_template
from tests.support.routes import may_call

JOB = "01JDA3Q0Z8M6W4K2T9R7P5N3B1"
ROUTES = sorted((r.method, r.path) for r in api_routes(load_template()))


def concrete(path: str) -> str:
    return path.replace("{id}", JOB).replace("{type}", "q").replace("{name}", "nightly")


def assert_error(result: Any, status: int, code: str) -> None:
    assert result.status == status, result.body
    assert set(result.body) == {"error"}
    assert set(result.body["error"]) == {"code", "message", "details"}
    assert result.body["error"]["code"] == code
    assert result.headers["Content-Type"] == "application/json"


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: f"{r[0]} {r[1]}")
@pytest.mark.parametrize("role", list(Role), ids=lambda r: r.value)
def test_roles_on_every_route(api, route, role):
    result = api.call(route[0], concrete(route[1]), principal=Principal(f"{role.value}-1", role), body={})
    if may_call(role.value, route):
        assert result.status != 403, result.body
    else:
        assert_error(result, 403, "forbidden")


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: f"{r[0]} {r[1]}")
def test_no_or_bad_token_is_401_on_every_route(api, route):
    assert_error(api.call(route[0], concrete(route[1])), 401, "unauthorized")
    expired = api.call(route[0], concrete(route[1]), auth_error="token expired")
    assert_error(expired, 401, "unauthorized")
    assert expired.body["error"]["message"] == "token expired"


def test_correlation_id_is_echoed_or_generated(api, svc):
    echoed = api.call("GET", "/v1/schema", principal=svc, headers={"X-Correlation-Id": "abc-123"})
    assert echoed.headers["X-Correlation-Id"] == "abc-123"
    generated = api.call("GET", "/v1/schema", principal=svc, headers={"X-Correlation-Id": "bad id with spaces"})
    assert generated.headers["X-Correlation-Id"] == "test-request"


def test_a_full_lease_cycle(api, svc, alice, clock):
    created = api.call("POST", "/v1/jobs", principal=svc, body={"type": "q", "owner": alice.sub, "params": {"n": 3}})
    assert created.status == 201 and "lease_token" not in created.body
    job_id = created.body["id"]
    assert api.call("POST", "/v1/queues/other/claim", principal=svc, body={}).status == 204
    clock.advance(1)
    claimed = api.call("POST", "/v1/queues/q/claim", principal=svc, body={"timeout_ms": 10_000, "worker": "w1"})
    assert claimed.status == 200 and claimed.body["id"] == job_id and claimed.body["lease_owner"] == "w1"
    token = claimed.body["lease_token"]
    clock.advance(1)
    status = api.call(
        "POST",
        f"/v1/jobs/{job_id}/status",
        principal=svc,
        body={"lease_token": token, "extend_ms": 20_000, "new_status": "half", "message_to_append": "half way"},
    )
    assert status.status == 200 and status.body["status"] == "half" and "lease_token" not in status.body
    clock.advance(1)
    extended = api.call("POST", f"/v1/jobs/{job_id}/extend", principal=svc, body={"lease_token": token, "timeout_ms": 5000})
    assert extended.status == 200 and extended.body["lease_token"] == token and extended.body["cancel_requested"] is False
    assert_error(api.call("GET", f"/v1/jobs/{job_id}/result", principal=alice), 409, "not_finished")
    clock.advance(1)
    done = api.call("POST", f"/v1/jobs/{job_id}/complete", principal=svc, body={"lease_token": token, "result": {"ok": 1}})
    assert done.status == 200 and done.body["state"] == "finished" and done.body["complete"] is True
    assert api.call("GET", f"/v1/jobs/{job_id}/result", principal=alice).body == {"result": {"ok": 1}}
    messages = api.call("GET", f"/v1/jobs/{job_id}/messages", principal=alice, query={"limit": "10"})
    assert [m["message"] for m in messages.body["data"]] == ["half way"] and messages.body["next_cursor"] is None


def test_every_route_answers_its_shape(api, svc, admin, clock):
    job = api.call("POST", "/v1/jobs", principal=svc, body={"type": "q", "ref_id": "r", "unique": True}).body
    twin = api.call("POST", "/v1/jobs", principal=svc, body={"type": "q", "ref_id": "r", "unique": True})
    assert twin.status == 200 and twin.body["id"] == job["id"]
    listed = api.call("GET", "/v1/jobs", principal=svc, query={"type": "q"})
    assert set(listed.body) == {"data", "next_cursor"} and listed.body["data"][0]["id"] == job["id"]
    assert api.call("GET", f"/v1/jobs/{job['id']}", principal=svc).body["id"] == job["id"]
    clock.advance(1)
    patched = api.call("PATCH", f"/v1/jobs/{job['id']}", principal=svc, body={"title": "t"}, headers={"If-Match": "1"})
    assert patched.status == 200 and patched.body["version"] == 2
    queues = api.call("GET", "/v1/queues", principal=svc, query={"prefix": "q"}).body
    assert [q["type"] for q in queues["data"]] == ["q"] and queues["next_cursor"] is None
    queue = api.call("GET", "/v1/queues/q", principal=svc).body
    assert set(queue) == {"type", "paused", "fifo", "shards", "counts", "oldest_pending_at", "modified"}
    assert set(queue["counts"]) == {"idle", "pending", "running", "finished", "error", "cancelled"}
    assert api.call("GET", "/v1/queues/never", principal=svc).status == 404
    paused = api.call("PATCH", "/v1/queues/q", principal=svc, body={"paused": True, "fifo": True}).body
    assert (paused["paused"], paused["fifo"]) == (True, True)
    assert api.call("PATCH", "/v1/queues/q", principal=svc, body={"paused": False}).body["paused"] is False
    history = api.call("GET", "/v1/queues/q/history", principal=svc).body
    assert len(history["data"]) == 61 and set(history["data"][0]) == {
        "minute", "created", "started", "finished", "failed", "retried"}  # fmt: skip
    assert [j["id"] for j in api.call("GET", "/v1/queues/q/jobs", principal=svc).body["data"]] == [job["id"]]
    clock.advance(1)
    started = api.call("POST", f"/v1/jobs/{job['id']}/start", principal=svc, body={"timeout_ms": 1000})
    assert started.status == 200 and started.body["lease_token"]
    clock.advance(1)
    aborted = api.call("POST", f"/v1/jobs/{job['id']}/abort", principal=svc, body={"lease_token": started.body["lease_token"]})
    assert aborted.status == 200 and aborted.body["state"] == "pending" and aborted.body["attempts"] == 1
    clock.advance(1)
    again = api.call("POST", f"/v1/jobs/{job['id']}/start", principal=svc, body={})
    clock.advance(1)
    failed = api.call(
        "POST",
        f"/v1/jobs/{job['id']}/fail",
        principal=svc,
        body={"lease_token": again.body["lease_token"], "error": {"code": "boom", "message": "no"}, "retry_in_ms": 0},
    )
    assert failed.status == 200 and failed.body["state"] == "pending" and failed.body["error"]["code"] == "boom"
    clock.advance(1)
    cancelled = api.call("POST", f"/v1/jobs/{job['id']}/cancel", principal=svc)
    assert cancelled.body["state"] == "cancelled"
    clock.advance(1)
    retried = api.call("POST", f"/v1/jobs/{job['id']}/retry", principal=svc)
    assert retried.status == 200 and (retried.body["state"], retried.body["attempts"]) == ("pending", 0)
    assert_error(api.call("POST", f"/v1/jobs/{job['id']}/retry", principal=svc), 409, "not_retryable")
    clock.advance(1)
    api.call("POST", f"/v1/jobs/{job['id']}/cancel", principal=svc)
    redriven = api.call("POST", "/v1/queues/q/redrive", principal=svc, body={"states": ["cancelled"], "limit": 10})
    assert redriven.body == {"retried": 1, "skipped": 0, "more": False}
    purged = api.call("DELETE", "/v1/queues/q/jobs", principal=admin, query={"state": "pending"})
    assert purged.body == {"deleted": 1, "more": False}
    batch = api.call("POST", "/v1/batch", principal=svc, body={"create": [{"type": "b"}]})
    assert batch.status == 200 and set(batch.body) == {"created", "updated", "deleted"}
    deleted = api.call("DELETE", f"/v1/jobs/{batch.body['created'][0]['id']}", principal=svc)
    assert deleted.status == 200 and deleted.body["id"] == batch.body["created"][0]["id"]
    assert api.call("POST", "/v1/jobs/clean", principal=svc).body == {"deleted": 0, "more": False}
    schema = api.call("GET", "/v1/schema", principal=Principal("u", Role.USER))
    assert schema.status == 200 and schema.body["title"] == "Job"
    wiped = api.call("DELETE", "/v1/jobs", principal=admin)
    assert wiped.status == 200 and wiped.body == {"deleted": 0, "more": False}


def test_users_see_only_their_own_jobs(api, svc, alice, bob, clock):
    job_id = api.call("POST", "/v1/jobs", principal=svc, body={"type": "q", "owner": alice.sub}).body["id"]
    api.call("POST", "/v1/jobs", principal=svc, body={"type": "q", "owner": bob.sub})
    assert api.call("GET", f"/v1/jobs/{job_id}", principal=alice).status == 200
    for method, path in (("GET", ""), ("GET", "/messages"), ("GET", "/result"), ("POST", "/cancel")):
        assert_error(api.call(method, f"/v1/jobs/{job_id}{path}", principal=bob), 404, "not_found")
    listed = api.call("GET", "/v1/jobs", principal=bob, query={"owner": alice.sub})
    assert listed.body["data"] == []
    assert [j["owner"] for j in api.call("GET", "/v1/jobs", principal=bob).body["data"]] == [bob.sub]
    clock.advance(1)
    assert api.call("POST", f"/v1/jobs/{job_id}/cancel", principal=alice).body["state"] == "cancelled"


def test_bad_input_errors(api, svc):
    bad = api.call("POST", "/v1/jobs", principal=svc, body={"ttl_ms": -5, "colour": "red"})
    assert_error(bad, 400, "invalid_request")
    assert set(bad.body["error"]["details"]["fields"]) == {"type", "ttl_ms", "colour"}
    assert_error(api.call("POST", "/v1/jobs", principal=svc, raw_body="{not json"), 400, "invalid_json")
    assert_error(api.call("GET", "/v1/jobs", principal=svc, query={"limit": "0"}), 400, "invalid_request")
    job_id = api.call("POST", "/v1/jobs", principal=svc, body={"type": "q"}).body["id"]
    patch = api.call("PATCH", f"/v1/jobs/{job_id}", principal=svc, body={}, headers={"If-Match": "soon"})
    assert_error(patch, 400, "invalid_request")
    big = api.call("POST", "/v1/jobs", principal=svc, body={"type": "q", "params": "x" * (128 * 1024 + 1)})
    assert_error(big, 413, "payload_too_large")
    assert len(api.call("GET", "/v1/jobs", principal=svc).body["data"]) == 1
    assert_error(api.call("GET", f"/v1/jobs/{JOB}", principal=svc), 404, "not_found")


def test_conflict_errors(api, svc, clock):
    def create(**body: Any) -> str:
        return str(api.call("POST", "/v1/jobs", principal=svc, body={"type": "q", **body}).body["id"])

    job_id = create()
    clock.advance(1)
    lease = api.call("POST", f"/v1/jobs/{job_id}/start", principal=svc, body={"timeout_ms": 1000}).body
    assert_error(api.call("POST", f"/v1/jobs/{job_id}/start", principal=svc, body={}), 409, "lease_held")
    assert_error(api.call("POST", f"/v1/jobs/{job_id}/complete", principal=svc, body={}), 409, "lease_held")
    clock.advance(2000)
    api.call("POST", f"/v1/jobs/{job_id}/start", principal=svc, body={})
    stale = api.call("POST", f"/v1/jobs/{job_id}/extend", principal=svc, body={"lease_token": lease["lease_token"]})
    assert_error(stale, 409, "lease_lost")
    idle = create(state="idle")
    assert_error(api.call("POST", f"/v1/jobs/{idle}/abort", principal=svc, body={"lease_token": "x"}), 409, "not_running")
    clock.advance(1)
    api.call("POST", f"/v1/jobs/{idle}/complete", principal=svc, body={})
    assert_error(api.call("PATCH", f"/v1/jobs/{idle}", principal=svc, body={"title": "t"}), 409, "already_finished")
    pending = create()
    clock.advance(1)
    api.call("PATCH", f"/v1/jobs/{pending}", principal=svc, body={"title": "v2"})
    stale_patch = api.call("PATCH", f"/v1/jobs/{pending}", principal=svc, body={"title": "v3"}, headers={"If-Match": '"1"'})
    assert_error(stale_patch, 409, "version_mismatch")
    once = create(max_retries=1)
    clock.advance(1)
    api.call("POST", f"/v1/jobs/{once}/start", principal=svc, body={"timeout_ms": 10})
    clock.advance(20)
    assert_error(api.call("POST", f"/v1/jobs/{once}/start", principal=svc, body={}), 409, "retries_exhausted")
    late = create(ttl_ms=100)
    clock.advance(200)
    assert_error(api.call("POST", f"/v1/jobs/{late}/start", principal=svc, body={}), 409, "deadline_exceeded")
    create()
    missing = api.call("POST", "/v1/queues/q/claim", principal=svc, body={"depends": [{"id": JOB}]})
    assert_error(missing, 409, "dependency_failed")
    conflict = api.call("POST", "/v1/batch", principal=svc, body={"delete": [{"id": JOB}]})
    assert_error(conflict, 409, "batch_conflict")
    assert conflict.body["error"]["details"]["failures"] == [{"op": "delete", "id": JOB, "reason": "not_found"}]


def test_idempotency_key_over_http(api, svc):
    body = {"type": "q", "params": {"n": 1}}
    first = api.call("POST", "/v1/jobs", principal=svc, body=body, headers={"Idempotency-Key": "k"})
    again = api.call("POST", "/v1/jobs", principal=svc, body=body, headers={"Idempotency-Key": "k"})
    assert first.status == 201 and again.body["id"] == first.body["id"]
    other = api.call("POST", "/v1/jobs", principal=svc, body={"type": "q"}, headers={"Idempotency-Key": "k"})
    assert_error(other, 400, "invalid_request")
    assert len(api.call("GET", "/v1/jobs", principal=svc).body["data"]) == 1


@pytest.mark.parametrize(
    ("code", "status", "error_code"),
    [("ProvisionedThroughputExceededException", 429, "throttled"), ("InternalServerError", 503, "unavailable")],
)
def test_dynamodb_failures_map_to_429_and_503(api, svc, service, monkeypatch, code, status, error_code):
    def failing(**_: Any) -> None:
        raise ClientError({"Error": {"Code": code, "Message": "injected"}}, "PutItem")

    service.create(svc, {"type": "q"})  # registers the queue name: later creates are one PutItem
    monkeypatch.setattr(service.store.client, "put_item", failing)
    result = api.call("POST", "/v1/jobs", principal=svc, body={"type": "q"})
    assert_error(result, status, error_code)
    if status == 429:
        assert result.headers["Retry-After"] == "1"


def test_an_unexpected_error_is_a_bare_500(api, svc, engine, monkeypatch):
    def broken(*_: Any, **__: Any) -> None:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(engine.listing, "get", broken)
    result = api.call("GET", f"/v1/jobs/{JOB}", principal=svc)
    assert_error(result, 500, "internal_error")
    assert "secret" not in str(result.body)
