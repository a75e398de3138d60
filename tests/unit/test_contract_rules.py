"""Rules the contract states that the engine once got wrong: start honours dependencies as a
claim does, idempotency keys of two principals never meet, clean takes a job's messages
with it, every completion counts whatever route made it, and tokens never come from URLs."""

from __future__ import annotations

import json

import pytest

from jobcore import keys
from jobcore.auth import TokenPolicy, mint_token
from jobcore.authorizer import authorize
from jobcore.errors import DependencyFailed, DependencyPending
from jobcore.model import JobState, Principal, Role
from jobcore.websocket import ws_route


def test_start_waits_for_unfinished_dependencies_and_fails_with_failed_ones(service, svc, clock):
    first = service.create(svc, {"type": "dep"}).job
    waiting = service.create(svc, {"type": "q", "depends_on": [first.id]}).job
    with pytest.raises(DependencyPending):
        service.start(svc, waiting.id)
    assert service.get(svc, waiting.id).state is JobState.PENDING
    service.cancel(svc, first.id)
    clock.advance(1)
    with pytest.raises(DependencyFailed):
        service.start(svc, waiting.id)
    failed = service.get(svc, waiting.id)
    assert failed.state is JobState.ERROR and failed.error == {
        "code": "dependency_failed", "message": "a job this job depends on ended without finishing"
    }  # fmt: skip


def test_start_leases_a_job_whose_dependencies_finished(service, svc, clock):
    first = service.create(svc, {"type": "dep"}).job
    service.complete(svc, first.id, {"result": 1})
    waiting = service.create(svc, {"type": "q", "depends_on": [first.id]}).job
    clock.advance(1)
    started = service.start(svc, waiting.id, {"timeout_ms": 1000})
    assert started.state is JobState.RUNNING and started.attempts == 1


def test_idempotency_keys_of_two_principals_never_collide(service):
    one, two = Principal("svc", Role.SERVICE), Principal("svc#x", Role.SERVICE)
    a = service.create(one, {"type": "q"}, idempotency_key="x#y")
    b = service.create(two, {"type": "q"}, idempotency_key="y")
    assert a.created and b.created and a.job.id != b.job.id
    assert keys.idempotency_key("svc", "x#y") != keys.idempotency_key("svc#x", "y")


def test_clean_deletes_a_deleted_jobs_messages_too(service, svc, clock, dynamodb):
    job = service.create(svc, {"type": "q", "ttl_ms": 1000}).job
    service.post_status(svc, job.id, {"message_to_append": "hello"})
    clock.advance(2000)  # past its deadline, never started
    assert service.clean().deleted == 1
    left = dynamodb.query(
        TableName="jobs-test", KeyConditionExpression="PK = :pk", ExpressionAttributeValues={":pk": {"S": f"JOB#{job.id}"}}
    )
    assert left["Items"] == []


def test_every_completion_counts_whichever_route_made_it(service, svc, clock, events):
    by_status = service.create(svc, {"type": "q"}).job
    service.post_status(svc, by_status.id, {"complete": True})
    clock.advance(1)
    service.create(svc, {"type": "q"})
    leased = service.claim(svc, "q", {"timeout_ms": 1000})
    assert leased is not None
    service.complete(svc, leased.id, {"lease_token": leased.lease_token})
    assert events.counts["JobsCompleted"] == 2
    assert events.counts["JobsCreated"] == 2 and events.counts["JobsClaimed"] == 1


def test_the_http_api_never_takes_a_token_from_the_url():
    policy = TokenPolicy(secret="s" * 32)
    token = mint_token("s" * 32, "svc-a", "service")
    http = authorize({"version": "2.0", "type": "REQUEST", "routeArn": "arn", "queryStringParameters": {"token": token}}, policy)
    assert http["context"] == {"auth_error": "missing bearer token"}
    socket = authorize({"methodArn": "arn", "queryStringParameters": {"token": token}}, policy)
    assert socket["context"]["sub"] == "svc-a"


def test_a_deeply_nested_websocket_frame_gets_an_error_reply():
    @ws_route
    def echo(request):  # type: ignore[no-untyped-def]
        return {"got": request.message()}

    event = {"requestContext": {"routeKey": "subscribe", "connectionId": "c"}, "body": "[" * 5000 + "]" * 5000}
    reply = echo(event, None)
    assert reply["statusCode"] == 200
    assert json.loads(reply["body"])["error"]["code"] == "invalid_request"
