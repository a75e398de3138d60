"""Leases: cancel, of unleased, running and finished jobs.

Every test drives the engine over moto tables with a manual clock (no sleeps) and asserts
what API.md says.
"""

from __future__ import annotations

import pytest

from jobcore.clock import to_iso
from jobcore.errors import NotFound
from jobcore.model import JobState
from tests.support.leases import (
    _moto_dynamodb,  # noqa: F401  (a fixture: this module's own moto backend)
    assert_unchanged_by,
    claim,
    dynamodb,  # noqa: F401  (a fixture: fresh tables on it for every test)
    must_claim,
    new_job,
    wire,
)


# ==========================================================================================
# cancel
# ==========================================================================================
@pytest.mark.parametrize("state", ["idle", "pending"])
def test_cancel_of_an_unleased_job_cancels_it_now(service, svc, clock, state):
    job = new_job(service, svc, state=state)
    clock.advance(10)
    cancelled = service.cancel(svc, job.id)
    assert cancelled.state is JobState.CANCELLED
    assert cancelled.complete
    assert cancelled.completed == to_iso(clock.now())
    assert cancelled.version == job.version + 1
    assert claim(service, svc) is None


def test_cancel_of_a_running_job_requests_it_and_the_worker_sees_it(service, svc):
    job = new_job(service, svc)
    leased = must_claim(service, svc)
    requested = service.cancel(svc, job.id)
    assert requested.state is JobState.RUNNING
    assert requested.cancel_requested is True
    assert requested.version == leased.version + 1
    assert requested.lease_owner == leased.lease_owner

    extended = service.extend(svc, job.id, {"lease_token": leased.lease_token, "timeout_ms": 1000})
    assert extended.cancel_requested is True and extended.state is JobState.RUNNING
    posted = service.post_status(svc, job.id, {"lease_token": leased.lease_token, "new_status": "still going"})
    assert posted.cancel_requested is True and posted.state is JobState.RUNNING


def test_a_cancel_requested_job_whose_lease_expired_is_cancelled_not_reclaimed(service, svc, clock):
    job = new_job(service, svc)
    must_claim(service, svc)
    service.cancel(svc, job.id)
    clock.advance(1000)
    assert claim(service, svc) is None
    assert service.get(svc, job.id).state is JobState.CANCELLED


@pytest.mark.parametrize("end", ["finished", "error", "cancelled"])
def test_cancel_of_a_finished_job_changes_nothing(service, svc, clock, end):
    job = new_job(service, svc)
    if end == "finished":
        service.complete(svc, job.id, {"result": 1})
    elif end == "error":
        leased = must_claim(service, svc)
        service.fail(svc, job.id, {"lease_token": leased.lease_token, "retry": False})
    else:
        service.cancel(svc, job.id)
    before = wire(service, svc, job.id)
    clock.advance(10)
    again = service.cancel(svc, job.id)
    assert again.to_wire() == before
    assert wire(service, svc, job.id) == before


def test_a_user_cancels_own_jobs_only(service, svc, alice, bob):
    mine = new_job(service, svc, owner=alice.sub)
    assert service.cancel(alice, mine.id).state is JobState.CANCELLED

    pending = new_job(service, svc, owner=alice.sub)
    running = new_job(service, svc, owner=alice.sub, type="busy")
    must_claim(service, svc, "busy")
    for job_id in (pending.id, running.id, mine.id):
        assert_unchanged_by(service, svc, job_id, NotFound, {"cancel": lambda job_id=job_id: service.cancel(bob, job_id)})
    requested = service.cancel(alice, running.id)
    assert requested.cancel_requested and requested.state is JobState.RUNNING
