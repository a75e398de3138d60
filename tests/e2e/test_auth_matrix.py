"""Every route x every kind of caller, through the local cloud's authorizer and functions:
bad tokens are 401, a role a route does not allow is 403, another user's job is 404 exactly
as a missing one, and nothing of one owner reaches another. (The WebSocket side of "nothing
leaks": tests/e2e/test_live_updates.py.)"""

from __future__ import annotations

import re
from typing import Any

import pytest

from jobcore.auth import mint_token
from localcloud.functions import api_routes
from localcloud.template import load_template
from tests.e2e.conftest import SECRET, LocalService
from tests.support.routes import may_call

ROUTES = sorted((r.method, r.path) for r in api_routes(load_template()))
OWNER, INTRUDER = "User#owner", "User#intruder"
MISSING_JOB = "01JDA3Q0Z8M6W4K2T9R7P5N3B1"
BODIES: dict[tuple[str, str], Any] = {
    ("POST", "/v1/jobs"): {"type": "authz"},
    ("PATCH", "/v1/jobs/{id}"): {"title": "t"},
    ("POST", "/v1/jobs/{id}/start"): {"timeout_ms": 1000},
    ("POST", "/v1/queues/{type}/claim"): {"timeout_ms": 1000},
    ("POST", "/v1/jobs/{id}/extend"): {"lease_token": "x", "timeout_ms": 1000},
    ("POST", "/v1/jobs/{id}/abort"): {"lease_token": "x"},
    ("POST", "/v1/jobs/{id}/complete"): {"result": 1},
    ("POST", "/v1/jobs/{id}/fail"): {"lease_token": "x"},
    ("POST", "/v1/jobs/{id}/status"): {"new_status": "s"},
    ("POST", "/v1/batch"): {"create": [{"type": "authz"}]},
    ("PUT", "/v1/schedules/{name}"): {"every_ms": 60_000, "job": {"type": "authz"}, "paused": True},
    ("PATCH", "/v1/schedules/{name}"): {"paused": True},
}
BAD_TOKENS = {
    "no token": None,
    "malformed": "not-a-jwt",
    "bad signature": mint_token("another-secret-0123456789abcdef0123456789", "svc-a", "service"),
    "expired": mint_token(SECRET, "svc-a", "service", ttl_s=-3600),
}


def call(local: LocalService, route: tuple[str, str], token: str | None, job_id: str) -> Any:
    method, template = route
    path = template.replace("{id}", job_id).replace("{type}", "authz-q").replace("{name}", "authz-schedule")
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return local.request(method, path, body=BODIES.get(route), headers=headers)


def new_job(local: LocalService) -> str:
    reply = local.request("POST", "/v1/jobs", token=local.token("service", "svc-a"), body={"type": "authz", "owner": OWNER})
    assert reply.status == 201
    return str(reply.body["id"])


def unknown_role_token() -> str:
    import jwt

    return str(jwt.encode({"sub": "x", "role": "root", "exp": 4102444800}, SECRET, algorithm="HS256"))


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: f"{r[0]} {r[1]}")
def test_bad_tokens_are_401_on_every_route(local_service, route):
    job_id = new_job(local_service)
    for kind, token in {**BAD_TOKENS, "unknown role": unknown_role_token()}.items():
        reply = call(local_service, route, token, job_id)
        assert (reply.status, reply.error_code) == (401, "unauthorized"), (kind, reply.body)


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: f"{r[0]} {r[1]}")
@pytest.mark.parametrize("role", ["service", "admin", "user"])
def test_each_role_is_let_in_exactly_where_the_contract_says(local_service, route, role):
    sub = OWNER if role == "user" else f"{role}-authz"
    reply = call(local_service, route, local_service.token(role, sub), new_job(local_service))
    if may_call(role, route):
        assert reply.status not in (401, 403) and reply.status < 500, reply.body
    else:
        assert (reply.status, reply.error_code) == (403, "forbidden"), reply.body


OWNER_ROUTES = [r for r in ROUTES if "{id}" in r[1] and may_call("user", r)]


@pytest.mark.parametrize("route", OWNER_ROUTES, ids=lambda r: f"{r[0]} {r[1]}")
def test_another_users_job_is_answered_exactly_as_a_missing_one(local_service, route):
    intruder = local_service.token("user", INTRUDER)
    foreign = call(local_service, route, intruder, new_job(local_service))
    missing = call(local_service, route, intruder, MISSING_JOB)
    assert (foreign.status, foreign.error_code) == (missing.status, missing.error_code) == (404, "not_found")

    def scrub(body: Any) -> str:
        return re.sub(r"[0-9A-Z]{26}", "<id>", str(body))

    assert scrub(foreign.body) == scrub(missing.body)


def test_listings_never_show_another_owners_jobs(local_service):
    own = new_job(local_service)
    intruder, owner = local_service.token("user", INTRUDER), local_service.token("user", OWNER)
    for query in ("", f"?owner={OWNER.replace('#', '%23')}", "?type=authz"):
        seen = local_service.request("GET", f"/v1/jobs{query}", token=intruder)
        assert seen.status == 200 and seen.body["data"] == [], query
    mine = local_service.request("GET", "/v1/jobs?limit=100", token=owner)
    assert own in [j["id"] for j in mine.body["data"]]
    assert {j["owner"] for j in mine.body["data"]} == {OWNER}


# -- scoped service tokens: a service that reaches only the queues its token names ----------
IN_SCOPE, OUT_OF_SCOPE = ["authz*"], ["scoped.*", "other"]
ID_ROUTES = [r for r in ROUTES if "{id}" in r[1] and may_call("service", r)]
QUEUE_ROUTES = [r for r in ROUTES if "{type}" in r[1] or r == ("POST", "/v1/claim")]
SCOPED_BODIES = {**BODIES, ("POST", "/v1/claim"): {"types": ["authz-q"], "timeout_ms": 1000}}


def scoped(queues: list[str]) -> str:
    return mint_token(SECRET, "svc-scoped", "service", queues=queues)


def scoped_call(local: LocalService, route: tuple[str, str], token: str, job_id: str) -> Any:
    method, template = route
    path = template.replace("{id}", job_id).replace("{type}", "authz-q").replace("{name}", "authz-schedule")
    return local.request(method, path, body=SCOPED_BODIES.get(route), headers={"Authorization": f"Bearer {token}"})


@pytest.mark.parametrize("route", ID_ROUTES, ids=lambda r: f"{r[0]} {r[1]}")
def test_another_queues_job_is_answered_to_a_scoped_service_exactly_as_a_missing_one(local_service, route):
    outsider = scoped(OUT_OF_SCOPE)
    job_id = new_job(local_service)
    foreign = scoped_call(local_service, route, outsider, job_id)
    missing = scoped_call(local_service, route, outsider, MISSING_JOB)
    assert (foreign.status, foreign.error_code) == (missing.status, missing.error_code) == (404, "not_found")
    assert re.sub(r"[0-9A-Z]{26}", "<id>", str(foreign.body)) == re.sub(r"[0-9A-Z]{26}", "<id>", str(missing.body))
    unchanged = local_service.request("GET", f"/v1/jobs/{job_id}", token=local_service.token("admin", "root"))
    assert unchanged.status == 200 and unchanged.body["version"] == 1  # nothing was written


@pytest.mark.parametrize("route", QUEUE_ROUTES, ids=lambda r: f"{r[0]} {r[1]}")
def test_another_queues_routes_are_forbidden_to_a_scoped_service(local_service, route):
    reply = scoped_call(local_service, route, scoped(OUT_OF_SCOPE), new_job(local_service))
    assert (reply.status, reply.error_code) == (403, "forbidden"), reply.body


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: f"{r[0]} {r[1]}")
def test_a_service_scoped_to_the_queue_is_let_in_as_an_unscoped_one(local_service, route):
    reply = scoped_call(local_service, route, scoped(IN_SCOPE), new_job(local_service))
    if may_call("service", route):
        assert reply.status not in (401, 403) and reply.status < 500, reply.body
    else:
        assert (reply.status, reply.error_code) == (403, "forbidden"), reply.body


def test_a_scoped_service_creates_lists_and_claims_only_in_its_queues(local_service):
    outsider = scoped(["scoped.*"])
    new_job(local_service)  # a job of queue authz, which the outsider never sees
    for body in ({"type": "authz"}, {"type": "scopedx"}):
        refused = local_service.request("POST", "/v1/jobs", token=outsider, body=body)
        assert (refused.status, refused.error_code) == (403, "forbidden")
    batch = local_service.request("POST", "/v1/batch", token=outsider,
                                  body={"create": [{"type": "scoped.a"}, {"type": "authz"}]})  # fmt: skip
    assert (batch.status, batch.error_code) == (403, "forbidden")
    own = local_service.request("POST", "/v1/jobs", token=outsider, body={"type": "scoped.a", "owner": OWNER})
    assert own.status == 201
    for query in ("?limit=100", f"?owner={OWNER.replace('#', '%23')}&limit=100"):
        seen = local_service.request("GET", f"/v1/jobs{query}", token=outsider)
        assert seen.status == 200 and {j["type"] for j in seen.body["data"]} == {"scoped.a"}, query
    assert local_service.request("GET", "/v1/jobs?type=authz", token=outsider).status == 403
    queues = local_service.request("GET", "/v1/queues?limit=100", token=outsider)
    assert queues.status == 200 and [q["type"] for q in queues.body["data"]] == ["scoped.a"]
    claimed = local_service.request("POST", "/v1/claim", token=outsider, body={"types": ["scoped.a"], "timeout_ms": 1000})
    assert claimed.status == 200 and claimed.body["id"] == own.body["id"]


SCHEDULE_ROUTES = [r for r in ROUTES if "{name}" in r[1] and r[0] != "PUT"]


@pytest.mark.parametrize("route", SCHEDULE_ROUTES, ids=lambda r: f"{r[0]} {r[1]}")
def test_another_queues_schedule_is_answered_to_a_scoped_service_exactly_as_a_missing_one(local_service, route):
    owner = local_service.token("service", "svc-a")
    body = {"every_ms": 60_000, "job": {"type": "authz"}, "paused": True}
    put = local_service.request("PUT", "/v1/schedules/authz-schedule", token=owner, body=body)
    assert put.status in (200, 201)
    method, template = route
    outsider = scoped(OUT_OF_SCOPE)
    foreign = local_service.request(method, template.replace("{name}", "authz-schedule"), token=outsider,
                                    body=SCOPED_BODIES.get(route))  # fmt: skip
    missing = local_service.request(method, template.replace("{name}", "no-such-schedule"), token=outsider,
                                    body=SCOPED_BODIES.get(route))  # fmt: skip
    assert (foreign.status, foreign.error_code) == (missing.status, missing.error_code) == (404, "not_found")
    assert str(foreign.body).replace("authz-schedule", "x") == str(missing.body).replace("no-such-schedule", "x")
    kept = local_service.request("GET", "/v1/schedules/authz-schedule", token=owner)
    assert kept.status == 200 and kept.body["version"] == put.body["version"]  # nothing was written


def test_a_scoped_service_writes_and_lists_only_schedules_of_its_queues(local_service):
    owner, outsider = local_service.token("service", "svc-a"), scoped(["scoped.*"])
    body = {"every_ms": 60_000, "paused": True}
    assert local_service.request("PUT", "/v1/schedules/theirs", token=owner, body={**body, "job": {"type": "authz"}}).status in (
        200,
        201,
    )
    for name, job_type in (("mine", "authz"), ("theirs", "scoped.a")):
        refused = local_service.request("PUT", f"/v1/schedules/{name}", token=outsider, body={**body, "job": {"type": job_type}})
        assert (refused.status, refused.error_code) == (403, "forbidden"), name
    own = local_service.request("PUT", "/v1/schedules/scoped-own", token=outsider, body={**body, "job": {"type": "scoped.a"}})
    assert own.status in (200, 201)
    seen = local_service.request("GET", "/v1/schedules?limit=100", token=outsider)
    assert seen.status == 200 and [s["name"] for s in seen.body["data"]] == ["scoped-own"]
    everything = local_service.request("GET", "/v1/schedules?limit=100", token=owner)
    assert {"scoped-own", "theirs"} <= {s["name"] for s in everything.body["data"]}


def test_a_token_whose_queues_claim_is_malformed_is_401(local_service):
    import jwt

    for queues in ([], "authz", [1], ["a b"], ["*a"], [None]):
        token = jwt.encode({"sub": "s", "role": "service", "queues": queues, "exp": 4102444800}, SECRET, algorithm="HS256")
        reply = local_service.request("GET", "/v1/queues", token=str(token))
        assert (reply.status, reply.error_code) == (401, "unauthorized"), queues
    admin = jwt.encode({"sub": "a", "role": "admin", "queues": ["x"], "exp": 4102444800}, SECRET, algorithm="HS256")
    assert local_service.request("GET", "/v1/queues", token=str(admin)).status == 401
