"""Claiming more at once: `max_jobs` from one queue, and `POST /v1/claim` over several."""

from __future__ import annotations

from typing import Any

import pytest

from jobcore.commands import Parts
from jobcore.commands.leases import parse_claim_any
from jobcore.errors import InvalidRequest
from jobcore.model import JobState, Principal
from tests.support.jobs import Jobs


def claim_any(service: Jobs, principal: Principal, body: Any, *, time_left_ms: int | None = None) -> list[Any]:
    command = parse_claim_any(Parts(body=body), service.limits)
    return service.engine.leasing.claim_many(principal, command, time_left_ms=time_left_ms)


def claim_many(service: Jobs, principal: Principal, job_type: str, body: Any) -> list[Any]:
    from jobcore.commands.leases import parse_claim

    command = parse_claim(Parts(path={"type": job_type}, body=body), service.limits)
    return service.engine.leasing.claim_many(principal, command)


def test_max_jobs_leases_up_to_its_number_each_job_once_with_its_own_token(service, svc, clock):
    for _ in range(7):
        service.create(svc, {"type": "mail"})
    clock.advance(1)
    first = claim_many(service, svc, "mail", {"timeout_ms": 60_000, "max_jobs": 5})
    second = claim_many(service, svc, "mail", {"timeout_ms": 60_000, "max_jobs": 5})
    assert (len(first), len(second)) == (5, 2)
    jobs = first + second
    assert len({j.id for j in jobs}) == 7 and len({j.lease_token for j in jobs}) == 7
    assert all(j.state is JobState.RUNNING for j in jobs)
    for job in jobs:  # each token holds its own lease
        service.complete(svc, job.id, {"lease_token": job.lease_token})
    assert claim_many(service, svc, "mail", {"timeout_ms": 60_000, "max_jobs": 5}) == []


def test_max_jobs_is_1_to_10(service, svc):
    for bad in (0, 11, "3", True):
        with pytest.raises(InvalidRequest):
            claim_many(service, svc, "mail", {"max_jobs": bad})


def test_a_claim_over_several_queues_serves_the_first_listed_with_work(service, svc, clock):
    service.create(svc, {"type": "b"})
    a = service.create(svc, {"type": "a"}).job
    clock.advance(1)
    assert [j.type for j in claim_any(service, svc, {"types": ["c", "a", "b"]})] == ["a"]
    assert claim_any(service, svc, {"types": ["c", "a", "b"]})[0].type == "b"
    assert claim_any(service, svc, {"types": ["c", "a", "b"]}) == []
    assert service.get(svc, a.id).state is JobState.RUNNING


def test_a_paused_queue_is_passed_by(service, svc, clock):
    service.create(svc, {"type": "a"})
    service.create(svc, {"type": "b"})
    service.patch_queue("a", {"paused": True})
    clock.advance(1)
    assert [j.type for j in claim_any(service, svc, {"types": ["a", "b"], "max_jobs": 3})] == ["b"]


def test_a_long_poll_on_several_queues_wakes_for_either(service, svc, clock):
    woken = []

    def later(seconds: float) -> None:  # the clock's sleep: a job arrives in the second queue
        clock.advance(int(seconds * 1000))
        if not woken:
            woken.append(service.create(svc, {"type": "second"}).job.id)

    clock.sleep = later  # type: ignore[method-assign]
    leased = claim_any(service, svc, {"types": ["first", "second"], "wait_ms": 5000}, time_left_ms=20_000)
    assert [j.id for j in leased] == woken


@pytest.mark.parametrize(
    "body",
    [{}, {"types": []}, {"types": "a"}, {"types": ["a", "a"]}, {"types": ["a b"]}, {"types": [f"q{n}" for n in range(11)]},
     {"types": [7]}],
)  # fmt: skip
def test_a_claim_over_several_queues_needs_1_to_10_distinct_names(service, svc, body):
    with pytest.raises(InvalidRequest) as refused:
        claim_any(service, svc, body)
    assert "types" in refused.value.details["fields"]
