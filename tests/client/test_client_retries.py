"""The client's retry rules, on a scripted transport: 429/503 are retried for every call
(the service wrote nothing) after Retry-After; lost connections and gateway errors only for
idempotent calls; create always carries one Idempotency-Key across its retries."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from jobs_client import JobsClient, LeaseLost, NotFound, RetryPolicy, Throttled, TransportError, Unavailable

JOB = {"id": "j1", "type": "t", "state": "pending", "version": 1, "processor": "svc"}


def error(status: int, code: str, **headers: str) -> httpx.Response:
    body = {"error": {"code": code, "message": f"{code} happened", "details": {"why": 1}}}
    return httpx.Response(status, json=body, headers={"X-Correlation-Id": "corr-1", **headers})


class Script:
    """Answers requests in turn; records what was sent and how long the client slept."""

    def __init__(self, *answers: httpx.Response | Exception) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []
        self.sleeps: list[float] = []

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    def client(self, attempts: int = 4) -> JobsClient:
        return JobsClient(
            "http://jobs.test",
            "tok",
            transport=httpx.MockTransport(self.handle),
            retry=RetryPolicy(max_attempts=attempts),
            sleep=self.sleeps.append,
        )


def connection_lost(request: Any = None) -> httpx.ConnectError:
    return httpx.ConnectError("connection refused")


CALLS: dict[str, Callable[[JobsClient], Any]] = {
    "create": lambda c: c.create_job("t"),
    "claim": lambda c: c.claim("t", timeout_ms=1000),
    "complete": lambda c: c.complete("j1", lease_token="x", result=1),
    "get": lambda c: c.get_job("j1"),
}


@pytest.mark.parametrize("name", sorted(CALLS))
def test_throttled_and_unavailable_are_retried_for_every_call_after_retry_after(name):
    script = Script(error(429, "throttled", **{"Retry-After": "2"}), error(503, "unavailable"), httpx.Response(200, json=JOB))
    CALLS[name](script.client())
    assert len(script.requests) == 3
    assert script.sleeps[0] == 2.0
    assert 0 <= script.sleeps[1] <= 0.4  # no Retry-After: the jittered backoff of attempt 2


def test_retry_after_is_capped_and_the_last_error_is_raised_typed():
    script = Script(*(error(429, "throttled", **{"Retry-After": "3600"}) for _ in range(3)))
    with pytest.raises(Throttled) as caught:
        script.client(attempts=3).get_job("j1")
    assert script.sleeps == [30.0, 30.0]
    assert (caught.value.status, caught.value.code, caught.value.retry_after_s) == (429, "throttled", 3600.0)
    assert caught.value.correlation_id == "corr-1"
    assert caught.value.details == {"why": 1}


@pytest.mark.parametrize("name", ["claim", "complete"])
def test_a_lost_connection_is_not_retried_for_calls_that_may_have_taken_effect(name):
    script = Script(connection_lost(), httpx.Response(200, json=JOB))
    with pytest.raises(TransportError):
        CALLS[name](script.client())
    assert len(script.requests) == 1


@pytest.mark.parametrize("name", ["create", "get"])
def test_idempotent_calls_are_retried_after_a_lost_connection_or_a_gateway_error(name):
    script = Script(connection_lost(), httpx.Response(502, text="Bad Gateway"), httpx.Response(201, json=JOB))
    CALLS[name](script.client())
    assert len(script.requests) == 3


def test_create_sends_one_idempotency_key_across_its_retries():
    script = Script(connection_lost(), httpx.Response(201, json=JOB))
    script.client().create_job("t", owner="User#1", params={"a": [1]})
    keys = {r.headers["Idempotency-Key"] for r in script.requests}
    assert len(keys) == 1 and len(keys.pop()) >= 16
    assert json.loads(script.requests[-1].content) == {"type": "t", "owner": "User#1", "params": {"a": [1]}}
    assert script.requests[0].headers["X-Correlation-Id"] == script.requests[1].headers["X-Correlation-Id"]


def test_errors_map_to_their_classes_and_missing_jobs_are_none():
    script = Script(error(404, "not_found"), error(409, "lease_lost"), error(503, "unavailable"))
    client = script.client(attempts=1)
    assert client.get_job("j1") is None
    with pytest.raises(LeaseLost) as lost:
        client.complete("j1", lease_token="old")
    assert lost.value.status == 409 and lost.value.message == "lease_lost happened"
    with pytest.raises(Unavailable):
        client.delete_job("j1")


def test_an_error_page_that_is_not_the_contract_still_raises_by_status():
    script = Script(httpx.Response(404, text="<html>nope</html>"))
    with pytest.raises(NotFound) as caught:
        script.client(attempts=1).delete_job("j1")
    assert caught.value.code == "not_found"
