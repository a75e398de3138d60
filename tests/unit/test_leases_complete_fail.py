"""Leases: complete and fail.

Every test drives the engine over moto tables with a manual clock (no sleeps) and asserts
what API.md says.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from jobcore.clock import ManualClock, parse_iso, to_iso
from jobcore.engine.leasing import new_token as lease_token
from jobcore.errors import AlreadyFinished, LeaseHeld, LeaseLost, NotRunning
from jobcore.model import JobState
from tests.support.leases import (
    _moto_dynamodb,  # noqa: F401  (a fixture: this module's own moto backend)
    assert_unchanged_by,
    claim,
    dynamodb,  # noqa: F401  (a fixture: fresh tables on it for every test)
    iso_in,
    must_claim,
    new_job,
    token_calls,
    wire,
)


def ms_until(clock: ManualClock, moment: str) -> int:
    return int((parse_iso(moment) - clock.now()) / timedelta(milliseconds=1))


# ==========================================================================================
# complete
# ==========================================================================================
def test_complete_with_the_token_finishes_the_job(service, svc, clock):
    job = new_job(service, svc)
    leased = must_claim(service, svc)
    clock.advance(100)
    done = service.complete(svc, job.id, {"lease_token": leased.lease_token, "result": {"ok": [1, 2.5]}})
    assert done.state is JobState.FINISHED
    assert done.result == {"ok": [1, 2.5]}
    assert done.complete
    assert done.completed == to_iso(clock.now())
    assert done.locked_until is None
    assert done.version == leased.version + 1
    assert service.result(svc, job.id) == {"ok": [1, 2.5]}
    assert claim(service, svc) is None


def test_a_retried_complete_with_the_same_token_returns_the_finished_job(service, svc, clock):
    job = new_job(service, svc)
    leased = must_claim(service, svc)
    done = service.complete(svc, job.id, {"lease_token": leased.lease_token, "result": "first"})
    clock.advance(50)
    again = service.complete(svc, job.id, {"lease_token": leased.lease_token, "result": "second"})
    assert again.state is JobState.FINISHED
    assert again.version == done.version
    assert again.result == "first"
    assert again.to_wire() == done.to_wire()


def test_complete_of_a_finished_job_with_another_token_is_refused(service, svc):
    job = new_job(service, svc)
    leased = must_claim(service, svc)
    service.complete(svc, job.id, {"lease_token": leased.lease_token, "result": "first"})
    before = wire(service, svc, job.id)
    with pytest.raises((LeaseLost, AlreadyFinished)):
        service.complete(svc, job.id, {"lease_token": lease_token(None), "result": "other"})
    with pytest.raises(AlreadyFinished):
        service.complete(svc, job.id, {"result": "no token"})
    assert wire(service, svc, job.id) == before


@pytest.mark.parametrize("state", ["idle", "pending"])
def test_complete_without_a_token_finishes_an_unleased_job(service, svc, clock, state):
    job = new_job(service, svc, state=state)
    done = service.complete(svc, job.id, {"result": [1, 2, 3]})
    assert done.state is JobState.FINISHED
    assert done.result == [1, 2, 3]
    assert done.completed == to_iso(clock.now())
    assert done.attempts == 0
    assert done.version == job.version + 1


def test_complete_without_a_token_on_a_running_job_is_lease_held(service, svc):
    job = new_job(service, svc)
    must_claim(service, svc)
    assert_unchanged_by(
        service,
        svc,
        job.id,
        LeaseHeld,
        {
            "complete": lambda: service.complete(svc, job.id, {"result": 1}),
            "status": lambda: service.post_status(svc, job.id, {"new_status": "x"}),
            "status_complete": lambda: service.post_status(svc, job.id, {"complete": True}),
        },
    )


@pytest.mark.parametrize("state", ["idle", "pending"])
def test_a_token_on_an_unleased_job_is_not_running(service, svc, state):
    job = new_job(service, svc, state=state)
    assert_unchanged_by(service, svc, job.id, NotRunning, token_calls(service, svc, job.id, lease_token(None)))


def test_the_own_token_on_a_finished_job_is_already_finished(service, svc):
    job = new_job(service, svc)
    leased = must_claim(service, svc)
    service.complete(svc, job.id, {"lease_token": leased.lease_token, "result": 1})
    calls = token_calls(service, svc, job.id, leased.lease_token)
    del calls["complete"]  # a retried complete answers as the first did
    assert_unchanged_by(service, svc, job.id, AlreadyFinished, calls)


# ==========================================================================================
# fail
# ==========================================================================================
def test_fail_with_retry_in_ms_puts_the_job_back_later_with_the_error(service, svc, clock):
    job = new_job(service, svc)
    leased = must_claim(service, svc)
    clock.advance(10)
    failed = service.fail(
        svc, job.id, {"lease_token": leased.lease_token, "error": {"code": "boom", "message": "it broke"}, "retry_in_ms": 3000}
    )
    assert failed.state is JobState.PENDING
    assert failed.available_at == iso_in(clock, 3000)
    assert failed.error == {"code": "boom", "message": "it broke"}
    assert failed.attempts == 1
    assert failed.lease_owner is None and failed.locked_until is None
    assert failed.version == leased.version + 1
    assert not failed.complete
    clock.advance(2999)
    assert claim(service, svc) is None
    clock.advance(1)
    assert must_claim(service, svc).attempts == 2


def test_fail_default_backoff_grows_with_attempts(service, svc, clock, settings):
    job = new_job(service, svc, max_retries=10)
    delays = []
    for attempt in range(1, 7):
        leased = must_claim(service, svc)
        assert leased.id == job.id and leased.attempts == attempt
        failed = service.fail(svc, job.id, {"lease_token": leased.lease_token})
        assert failed.state is JobState.PENDING
        assert failed.error == {"code": "failed", "message": "the worker reported a failure"}
        delay = ms_until(clock, failed.available_at)
        ceiling = settings.backoff_base_ms * 2 ** (attempt - 1)
        assert ceiling / 2 <= delay <= ceiling, (attempt, delay)
        delays.append(delay)
        clock.advance(delay - 1)
        assert claim(service, svc) is None
        clock.advance(1)
    assert delays == sorted(delays)
    assert delays[-1] > delays[0]


def test_fail_without_retry_moves_the_job_to_error(service, svc, clock):
    job = new_job(service, svc, max_retries=5)
    leased = must_claim(service, svc)
    failed = service.fail(svc, job.id, {"lease_token": leased.lease_token, "retry": False, "error": {"code": "fatal"}})
    assert failed.state is JobState.ERROR
    assert failed.error is not None and failed.error["code"] == "fatal"
    assert failed.complete
    assert failed.completed == to_iso(clock.now())
    assert failed.locked_until is None
    clock.advance(60_000)
    assert claim(service, svc) is None


def test_fail_on_the_last_attempt_moves_the_job_to_error(service, svc):
    job = new_job(service, svc, max_retries=2)
    first = must_claim(service, svc)
    assert service.fail(svc, job.id, {"lease_token": first.lease_token, "retry_in_ms": 0}).state is JobState.PENDING
    second = must_claim(service, svc)
    assert second.attempts == 2
    failed = service.fail(svc, job.id, {"lease_token": second.lease_token, "retry_in_ms": 0, "error": {"code": "again"}})
    assert failed.state is JobState.ERROR
    assert failed.error is not None and failed.error["code"] == "again"
    assert claim(service, svc) is None


def test_fail_with_a_retry_past_execute_until_moves_the_job_to_error(service, svc):
    job = new_job(service, svc, ttl_ms=10_000)
    leased = must_claim(service, svc)
    failed = service.fail(svc, job.id, {"lease_token": leased.lease_token, "retry_in_ms": 20_000})
    assert failed.state is JobState.ERROR


def test_fail_of_a_cancel_requested_job_cancels_it(service, svc):
    job = new_job(service, svc)
    leased = must_claim(service, svc)
    service.cancel(svc, job.id)
    failed = service.fail(svc, job.id, {"lease_token": leased.lease_token, "retry_in_ms": 0})
    assert failed.state is JobState.CANCELLED
    assert failed.complete
    assert claim(service, svc) is None
