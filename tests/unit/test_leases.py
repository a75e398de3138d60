"""Leases: start, and the invariants of every write (``version`` +1, ``modified`` strictly
increasing).

The other lease families are beside it: test_leases_claim.py, test_leases_dependencies.py,
test_leases_extend_abort.py, test_leases_complete_fail.py, test_leases_cancel.py and
test_leases_status.py; their fixtures and helpers are tests/support/leases.py.
Every test drives the engine over moto tables with a manual clock (no sleeps) and asserts
what API.md says.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest

from jobcore import keys
from jobcore.clock import ManualClock, epoch_seconds, to_iso
from jobcore.engine import Engine
from jobcore.engine.leasing import new_token as lease_token
from jobcore.errors import AlreadyFinished, DeadlineExceeded, LeaseHeld, LeaseLost, NotFound, RetriesExhausted
from jobcore.model import Job, JobState
from jobcore.store import Expr
from tests.support.jobs import Jobs
from tests.support.leases import (
    _moto_dynamodb,  # noqa: F401  (a fixture: this module's own moto backend)
    claim,
    dynamodb,  # noqa: F401  (a fixture: fresh tables on it for every test)
    iso_in,
    messages,
    must_claim,
    new_job,
    token_calls,
    wire,
)


def expire(service: Jobs, clock: ManualClock, job_id: str) -> None:
    """Put the item's expires_at in the past, as TTL would before deleting it (late)."""
    e = Expr()
    update = f"SET {e.n('expires_at')} = {e.v(epoch_seconds(clock.now()) - 1)}"
    service.store.update(keys.job_key(job_id), update, condition=None, expr=e)


# ==========================================================================================
# start
# ==========================================================================================
def test_start_leases_a_pending_job(service, svc, clock):
    job = new_job(service, svc)
    clock.advance(10)
    started = service.start(svc, job.id, {"timeout_ms": 5000, "worker": "w1"})
    assert started.state is JobState.RUNNING
    assert started.lease_token
    assert started.attempts == 1
    assert started.locked_until == iso_in(clock, 5000)
    assert started.lease_owner == "w1"
    assert started.started == to_iso(clock.now())
    assert started.version == job.version + 1
    assert not started.complete
    # The token goes only to the worker granted the lease.
    assert "lease_token" not in service.get(svc, job.id).to_wire()
    assert "lease_token" in started.to_wire(with_lease_token=True)


def test_start_leases_an_idle_job_owner_defaults_to_the_principal(service, svc, clock):
    job = new_job(service, svc, state="idle")
    started = service.start(svc, job.id, {"timeout_ms": 2000})
    assert started.state is JobState.RUNNING
    assert started.attempts == 1
    assert started.lease_owner == svc.sub
    assert started.locked_until == iso_in(clock, 2000)
    assert started.lease_token


def test_start_is_refused_while_leased_and_free_exactly_at_locked_until(service, svc, clock):
    job = new_job(service, svc)
    first = service.start(svc, job.id, {"timeout_ms": 1000, "worker": "w1"})
    with pytest.raises(LeaseHeld):
        service.start(svc, job.id, {"timeout_ms": 1000, "worker": "w2"})
    clock.advance(999)
    with pytest.raises(LeaseHeld):
        service.start(svc, job.id, {"timeout_ms": 1000, "worker": "w2"})
    assert wire(service, svc, job.id) == first.to_wire()

    clock.advance(1)  # now == locked_until: the lease is free
    second = service.start(svc, job.id, {"timeout_ms": 1000, "worker": "w2"})
    assert second.lease_owner == "w2"
    assert second.attempts == 2
    assert second.lease_token != first.lease_token
    assert second.locked_until == iso_in(clock, 1000)
    with pytest.raises(LeaseLost):
        service.extend(svc, job.id, {"lease_token": first.lease_token})


@pytest.mark.parametrize("end", ["complete", "cancel"])
def test_start_of_a_finished_job_is_already_finished(service, svc, end):
    job = new_job(service, svc)
    if end == "complete":
        service.complete(svc, job.id, {"result": 1})
    else:
        service.cancel(svc, job.id)
    before = wire(service, svc, job.id)
    with pytest.raises(AlreadyFinished):
        service.start(svc, job.id, {"timeout_ms": 1000})
    assert wire(service, svc, job.id) == before


def test_start_past_execute_until_is_deadline_exceeded_and_moves_the_job_to_error(service, svc, clock):
    job = new_job(service, svc, ttl_ms=1000)
    clock.advance(999)
    in_time = new_job(service, svc, ttl_ms=1000)
    clock.advance(2)
    with pytest.raises(DeadlineExceeded):
        service.start(svc, job.id, {"timeout_ms": 1000})
    late = service.get(svc, job.id)
    assert late.state is JobState.ERROR
    assert late.error is not None and late.error["code"] == "deadline_exceeded"
    assert late.complete and late.completed == to_iso(clock.now())
    assert late.attempts == 0
    assert late.lease_owner is None
    # A job still before its deadline starts.
    assert service.start(svc, in_time.id, {"timeout_ms": 1000}).state is JobState.RUNNING


def test_start_at_max_retries_is_retries_exhausted_and_the_job_is_kept_in_error(service, svc, clock):
    job = new_job(service, svc, max_retries=2)
    for _ in range(2):
        leased = service.start(svc, job.id, {"timeout_ms": 1000})
        service.abort(svc, job.id, {"lease_token": leased.lease_token})
        clock.advance(1)
    with pytest.raises(RetriesExhausted):
        service.start(svc, job.id, {"timeout_ms": 1000})
    kept = service.get(svc, job.id)  # readable: quarantined, not deleted
    assert kept.state is JobState.ERROR
    assert kept.error is not None and kept.error["code"] == "retries_exhausted"
    assert kept.attempts == 2
    assert kept.complete
    with pytest.raises(AlreadyFinished):
        service.start(svc, job.id, {"timeout_ms": 1000})


def test_start_after_an_expired_lease_at_max_retries_is_retries_exhausted(service, svc, clock):
    job = new_job(service, svc, max_retries=1)
    service.start(svc, job.id, {"timeout_ms": 1000})
    clock.advance(1000)
    with pytest.raises(RetriesExhausted):
        service.start(svc, job.id, {"timeout_ms": 1000})
    kept = service.get(svc, job.id)
    assert kept.state is JobState.ERROR
    assert kept.error is not None and kept.error["code"] == "retries_exhausted"
    assert kept.locked_until is None


# ==========================================================================================
# invariants
# ==========================================================================================
def test_every_write_bumps_version_by_one_and_modified_strictly_increases_on_a_still_clock(service, svc, clock):
    job = new_job(service, svc, max_retries=5)
    seen = [job]

    def step(write: Callable[[], Job]) -> Job:
        after = write()
        assert after.version == seen[-1].version + 1
        assert after.modified > seen[-1].modified
        assert wire(service, svc, after.id) == after.to_wire()
        seen.append(after)
        return after

    step(lambda: service.post_status(svc, job.id, {"new_status": "a", "message_to_append": "a"}))
    started = step(lambda: service.start(svc, job.id, {"timeout_ms": 1000}))
    step(lambda: service.extend(svc, job.id, {"lease_token": started.lease_token, "timeout_ms": 2000}))
    step(lambda: service.post_status(svc, job.id, {"lease_token": started.lease_token, "message_to_append": "b"}))
    step(lambda: service.post_status(svc, job.id, {"lease_token": started.lease_token, "extend_ms": 1000}))
    step(lambda: service.cancel(svc, job.id))  # requested only: still running
    step(lambda: service.extend(svc, job.id, {"lease_token": started.lease_token}))
    step(lambda: service.abort(svc, job.id, {"lease_token": started.lease_token}))  # cancels

    other = new_job(service, svc)
    seen.append(other)
    leased = step(lambda: must_claim(service, svc))
    step(lambda: service.fail(svc, other.id, {"lease_token": leased.lease_token, "retry_in_ms": 0}))
    again = step(lambda: must_claim(service, svc))
    step(lambda: service.complete(svc, other.id, {"lease_token": again.lease_token, "result": 1}))
    assert messages(service, svc, job.id) == ["a", "b"]


def test_modified_strictly_increases_when_a_writers_clock_is_behind(service, svc, clock):
    job = new_job(service, svc, state="idle")
    clock.advance(60_000)
    ahead = service.post_status(svc, job.id, {"new_status": "ahead", "message_to_append": "ahead"})
    behind = Jobs(Engine(service.store, service.settings, clock=ManualClock(start=clock.now() - timedelta(hours=1))))
    seen = [ahead]

    def step(write: Callable[[], Job]) -> Job:
        after = write()
        assert after.version == seen[-1].version + 1
        assert after.modified > seen[-1].modified
        seen.append(after)
        return after

    step(lambda: behind.post_status(svc, job.id, {"new_status": "behind", "message_to_append": "behind"}))
    started = step(lambda: behind.start(svc, job.id, {"timeout_ms": 1000}))
    step(lambda: behind.extend(svc, job.id, {"lease_token": started.lease_token}))
    step(lambda: service.extend(svc, job.id, {"lease_token": started.lease_token}))
    step(lambda: behind.post_status(svc, job.id, {"lease_token": started.lease_token, "message_to_append": "late"}))
    step(lambda: behind.complete(svc, job.id, {"lease_token": started.lease_token, "result": "ok"}))
    assert messages(service, svc, job.id) == ["ahead", "behind", "late"]


@pytest.mark.parametrize("state", ["idle", "pending", "running", "finished"])
def test_an_expired_job_is_missing_for_every_write(service, svc, clock, state):
    job = new_job(service, svc, state="idle" if state == "idle" else "pending")
    token = lease_token(None)
    if state == "running":
        token = must_claim(service, svc).lease_token
    elif state == "finished":
        service.complete(svc, job.id, {"result": 1})
    expire(service, clock, job.id)
    stored = service.store.get(keys.job_key(job.id))

    with pytest.raises(NotFound):
        service.get(svc, job.id)
    calls = {
        **token_calls(service, svc, job.id, token),
        "start": lambda: service.start(svc, job.id, {"timeout_ms": 1000}),
        "cancel": lambda: service.cancel(svc, job.id),
        "complete_no_token": lambda: service.complete(svc, job.id, {"result": 2}),
        "status_no_token": lambda: service.post_status(svc, job.id, {"new_status": "x", "message_to_append": "x"}),
    }
    for name, call in calls.items():
        with pytest.raises(NotFound):
            call()
        assert service.store.get(keys.job_key(job.id)) == stored, f"{name} wrote to an expired job"
    clock.advance(60_000)
    assert claim(service, svc) is None


def test_a_job_past_its_retention_is_missing_for_every_write(service, svc, clock, settings):
    running = new_job(service, svc, ttl_ms=60_000)
    leased = must_claim(service, svc)
    finished = new_job(service, svc, type="other")
    service.complete(svc, finished.id, {"result": 1})
    clock.advance(60_000 + settings.retention_ms + 1000)
    for job_id, token in ((running.id, leased.lease_token), (finished.id, lease_token(None))):
        with pytest.raises(NotFound):
            service.get(svc, job_id)
        for call in (
            *token_calls(service, svc, job_id, token).values(),
            lambda job_id=job_id: service.start(svc, job_id, {"timeout_ms": 1000}),
            lambda job_id=job_id: service.cancel(svc, job_id),
        ):
            with pytest.raises(NotFound):
                call()


@pytest.mark.parametrize("job_id", ["not-a-job-id", "01ARZ3NDEKTSV4RRFFQ69G5FAV"])
def test_a_missing_job_is_not_found_for_every_write(service, svc, job_id):
    calls = {
        **token_calls(service, svc, job_id, lease_token(None)),
        "start": lambda: service.start(svc, job_id, {"timeout_ms": 1000}),
        "cancel": lambda: service.cancel(svc, job_id),
        "complete_no_token": lambda: service.complete(svc, job_id, {"result": 2}),
        "status_no_token": lambda: service.post_status(svc, job_id, {"new_status": "x"}),
    }
    for name, call in calls.items():
        with pytest.raises(NotFound):
            call()
        assert service.store.get(keys.job_key(job_id)) is None, name
