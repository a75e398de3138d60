"""Queues as an operator sees them: moving a job to another queue, and priority."""

from __future__ import annotations

import pytest

from jobcore.errors import Duplicate, InvalidRequest, LeaseHeld


# -- moving a job, priority ----------------------------------------------------------------
def test_a_pending_job_moves_to_another_queue_with_its_guard(service, svc, clock):
    job = service.create(svc, {"type": "mail", "ref_id": "r", "unique": True}).job
    moved = service.patch(svc, job.id, {"type": "sms", "priority": 1})
    assert (moved.type, moved.priority) == ("sms", 1)
    assert service.claim(svc, "mail", {"timeout_ms": 1000}) is None
    assert service.create(svc, {"type": "mail", "ref_id": "r", "unique": True}).created  # free in the old queue
    again = service.create(svc, {"type": "sms", "ref_id": "r", "unique": True})
    assert (again.created, again.job.id) == (False, job.id)
    assert "sms" in service.queue_names()
    claimed = service.claim(svc, "sms", {"timeout_ms": 1000})
    assert claimed is not None and claimed.id == job.id
    with pytest.raises(LeaseHeld):
        service.patch(svc, job.id, {"type": "mail"})


def test_a_move_onto_a_taken_ref_id_is_a_duplicate_and_changes_nothing(service, svc):
    taken = service.create(svc, {"type": "sms", "ref_id": "r", "unique": True}).job
    job = service.create(svc, {"type": "mail", "ref_id": "r", "unique": True}).job
    with pytest.raises(Duplicate) as refused:
        service.patch(svc, job.id, {"type": "sms"})
    assert refused.value.details == {"existing_id": taken.id}
    assert service.get(svc, job.id).type == "mail"


def test_priority_is_stored_and_listed(service, svc):
    job = service.create(svc, {"type": "mail", "priority": 4}).job
    assert job.priority == 4 and service.create(svc, {"type": "mail"}).job.priority == 2
    assert service.get(svc, job.id).to_wire()["priority"] == 4
    with pytest.raises(InvalidRequest):
        service.create(svc, {"type": "mail", "priority": 5})
