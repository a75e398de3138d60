"""Leases: extend and abort.

Every test drives the engine over moto tables with a manual clock (no sleeps) and asserts
what API.md says.
"""

from __future__ import annotations

import pytest

from jobcore.clock import to_iso
from jobcore.errors import LeaseLost
from jobcore.model import JobState
from tests.support.leases import (
    _moto_dynamodb,  # noqa: F401  (a fixture: this module's own moto backend)
    claim,
    dynamodb,  # noqa: F401  (a fixture: fresh tables on it for every test)
    iso_in,
    must_claim,
    new_job,
)


# ==========================================================================================
# extend
# ==========================================================================================
def test_extend_moves_locked_until(service, svc, clock):
    job = new_job(service, svc)
    leased = must_claim(service, svc)
    clock.advance(500)
    extended = service.extend(svc, job.id, {"lease_token": leased.lease_token, "timeout_ms": 5000})
    assert extended.locked_until == iso_in(clock, 5000)
    assert extended.version == leased.version + 1
    assert extended.lease_token == leased.lease_token
    assert extended.cancel_requested is False
    assert extended.state is JobState.RUNNING
    assert extended.attempts == 1
    clock.advance(4999)  # past the first locked_until, before the new one
    assert claim(service, svc, worker="w2") is None
    clock.advance(1)
    assert must_claim(service, svc, worker="w2").attempts == 2


@pytest.mark.parametrize("op", ["extend", "complete", "fail"])
def test_the_holder_may_write_after_locked_until_while_nobody_reclaimed(service, svc, clock, op):
    job = new_job(service, svc)
    leased = must_claim(service, svc)
    clock.advance(5000)
    token = leased.lease_token
    if op == "extend":
        after = service.extend(svc, job.id, {"lease_token": token, "timeout_ms": 1000})
        assert after.state is JobState.RUNNING and after.locked_until == iso_in(clock, 1000)
        assert claim(service, svc, worker="w2") is None
    elif op == "complete":
        after = service.complete(svc, job.id, {"lease_token": token, "result": "late"})
        assert after.state is JobState.FINISHED and after.result == "late"
    else:
        after = service.fail(svc, job.id, {"lease_token": token, "retry_in_ms": 0})
        assert after.state is JobState.PENDING
    assert after.version == leased.version + 1


# ==========================================================================================
# abort
# ==========================================================================================
def test_abort_puts_the_job_back_to_pending_claimable_now(service, svc, clock):
    job = new_job(service, svc)
    leased = must_claim(service, svc)
    clock.advance(100)
    aborted = service.abort(svc, job.id, {"lease_token": leased.lease_token})
    assert aborted.state is JobState.PENDING
    assert aborted.available_at == to_iso(clock.now())
    assert aborted.attempts == 1
    assert aborted.lease_owner is None
    assert aborted.locked_until is None
    assert aborted.lease_token is None
    assert aborted.version == leased.version + 1
    again = must_claim(service, svc, worker="w2")
    assert again.id == job.id and again.attempts == 2
    with pytest.raises(LeaseLost):
        service.complete(svc, job.id, {"lease_token": leased.lease_token})


def test_abort_of_a_cancel_requested_job_cancels_it(service, svc):
    job = new_job(service, svc)
    leased = must_claim(service, svc)
    assert service.cancel(svc, job.id).cancel_requested
    aborted = service.abort(svc, job.id, {"lease_token": leased.lease_token})
    assert aborted.state is JobState.CANCELLED
    assert aborted.complete
    assert aborted.locked_until is None
    assert claim(service, svc) is None
