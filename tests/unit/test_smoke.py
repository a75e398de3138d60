from jobcore.model import JobState


def test_lifecycle(service, svc, clock):
    created = service.create(svc, {"type": "email", "params": {"to": "a@b"}, "owner": "User#alice"})
    assert created.created and created.job.state is JobState.PENDING
    job = service.claim(svc, "email", {"timeout_ms": 1000, "worker": "w1"})
    assert job is not None and job.id == created.job.id and job.lease_token
    ext = service.extend(svc, job.id, {"lease_token": job.lease_token, "timeout_ms": 5000})
    assert ext.version == job.version + 1
    done = service.complete(svc, job.id, {"lease_token": job.lease_token, "result": {"ok": True}})
    assert done.state is JobState.FINISHED and done.result == {"ok": True}
    assert service.claim(svc, "email", {"timeout_ms": 1000}) is None
