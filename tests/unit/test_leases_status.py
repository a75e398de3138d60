"""Leases: status posts (title, status, progress, messages, extend, complete).

Every test drives the engine over moto tables with a manual clock (no sleeps) and asserts
what API.md says.
"""

from __future__ import annotations

import pytest

from jobcore.clock import to_iso
from jobcore.errors import InvalidRequest, LeaseHeld
from jobcore.model import JobState
from tests.support.leases import (
    _moto_dynamodb,  # noqa: F401  (a fixture: this module's own moto backend)
    assert_unchanged_by,
    claim,
    dynamodb,  # noqa: F401  (a fixture: fresh tables on it for every test)
    iso_in,
    messages,
    must_claim,
    new_job,
    wire,
)


# ==========================================================================================
# status posts
# ==========================================================================================
def test_post_status_sets_title_status_progress_speeds_and_appends_a_message(service, svc, clock):
    job = new_job(service, svc)
    leased = must_claim(service, svc)
    progress = {"title": "Counting", "current": 1, "maximum": 3}
    speeds = [{"title": "rate", "speed": 1.5, "unit": "n/s", "as_text": "1.5 n/s"}]
    posted = service.post_status(
        svc,
        job.id,
        {
            "lease_token": leased.lease_token,
            "new_title": "Counter",
            "new_status": "Count is now 1",
            "progress": progress,
            "speeds": speeds,
            "message_to_append": "Count is now 1",
        },
    )
    assert posted.title == "Counter"
    assert posted.status == "Count is now 1"
    assert posted.progress == progress
    assert posted.speeds == speeds
    assert posted.state is JobState.RUNNING
    assert posted.locked_until == leased.locked_until  # no extend_ms: the lease is not moved
    assert posted.version == leased.version + 1
    assert service.get(svc, job.id).to_wire() == posted.to_wire()
    page = service.messages(svc, job.id, {})
    assert [m.message for m in page.data] == ["Count is now 1"]
    assert page.data[0].at == posted.modified


def test_post_status_complete_finishes_the_job(service, svc, clock):
    job = new_job(service, svc)
    leased = must_claim(service, svc)
    done = service.post_status(svc, job.id, {"lease_token": leased.lease_token, "message_to_append": "done", "complete": True})
    assert done.state is JobState.FINISHED
    assert done.complete
    assert done.completed == to_iso(clock.now())
    assert done.locked_until is None
    assert messages(service, svc, job.id) == ["done"]
    assert claim(service, svc) is None


def test_post_status_extend_ms_moves_the_holders_lease(service, svc, clock):
    job = new_job(service, svc)
    leased = must_claim(service, svc)
    clock.advance(900)
    posted = service.post_status(svc, job.id, {"lease_token": leased.lease_token, "extend_ms": 4000, "new_status": "alive"})
    assert posted.locked_until == iso_in(clock, 4000)
    assert posted.status == "alive"
    clock.advance(3999)
    assert claim(service, svc, worker="w2") is None
    clock.advance(1)
    assert must_claim(service, svc, worker="w2").id == job.id


def test_post_status_extend_ms_without_a_token_is_invalid(service, svc):
    job = new_job(service, svc, state="idle")
    before = wire(service, svc, job.id)
    with pytest.raises(InvalidRequest) as bad:
        service.post_status(svc, job.id, {"extend_ms": 1000, "new_status": "x"})
    assert "extend_ms" in bad.value.details["fields"]
    assert wire(service, svc, job.id) == before


def test_post_status_without_a_token_on_a_running_job_is_lease_held(service, svc):
    job = new_job(service, svc)
    must_claim(service, svc)
    assert_unchanged_by(
        service,
        svc,
        job.id,
        LeaseHeld,
        {"status": lambda: service.post_status(svc, job.id, {"new_status": "x", "message_to_append": "x"})},
    )


def test_counting_to_three_on_an_idle_job(service, svc, clock):
    """The UCloud example: a job nobody leases, driven by status posts."""
    job = new_job(service, svc, state="idle", title="Count to 3")
    for n in range(1, 4):
        posted = service.post_status(
            svc,
            job.id,
            {
                "new_status": f"Count is now {n}",
                "progress": {"title": "count", "current": n, "maximum": 3},
                "message_to_append": f"Count is now {n}",
            },
        )
        assert posted.state is JobState.IDLE
        assert posted.version == job.version + n
        clock.advance(10)
    done = service.post_status(svc, job.id, {"new_status": "Done", "complete": True})
    assert done.state is JobState.FINISHED
    assert done.complete
    assert done.status == "Done"
    assert done.title == "Count to 3"
    assert done.progress == {"title": "count", "current": 3, "maximum": 3}
    assert messages(service, svc, job.id) == ["Count is now 1", "Count is now 2", "Count is now 3"]
