"""Leases: a claim's ``depends`` and a job's ``depends_on``.

Every test drives the engine over moto tables with a manual clock (no sleeps) and asserts
what API.md says.
"""

from __future__ import annotations

import pytest

from jobcore.clock import parse_iso
from jobcore.errors import DependencyFailed, InvalidRequest
from jobcore.ids import new_job_id
from jobcore.model import JobState
from tests.support.leases import (
    _moto_dynamodb,  # noqa: F401  (a fixture: this module's own moto backend)
    claim,
    dynamodb,  # noqa: F401  (a fixture: fresh tables on it for every test)
    must_claim,
    new_job,
    wire,
)


def test_claim_depends_fails_when_a_dependency_is_missing_or_changed(service, svc):
    dep = new_job(service, svc, type="dep")
    job = new_job(service, svc)
    before = wire(service, svc, job.id)

    missing = new_job_id(parse_iso(dep.created))
    with pytest.raises(DependencyFailed) as missing_error:
        claim(service, svc, depends=[{"id": missing}])
    assert [f["id"] for f in missing_error.value.details["failures"]] == [missing]
    assert missing_error.value.details["failures"][0]["reason"] == "not_found"
    assert wire(service, svc, job.id) == before

    with pytest.raises(DependencyFailed) as changed:
        claim(service, svc, depends=[{"id": dep.id, "version": dep.version + 1}])
    assert changed.value.details["failures"][0]["reason"] == "version_mismatch"
    assert wire(service, svc, job.id) == before

    leased = must_claim(service, svc, depends=[{"id": dep.id, "version": dep.version}])
    assert leased.id == job.id and leased.attempts == 1
    assert service.get(svc, dep.id).version == dep.version  # a dependency is checked, not written


def test_claim_depends_without_a_version_needs_only_existence(service, svc, clock):
    dep = new_job(service, svc, type="dep")
    service.post_status(svc, dep.id, {"new_status": "changed"})
    job = new_job(service, svc)
    assert must_claim(service, svc, depends=[{"id": dep.id}]).id == job.id


def test_claim_depends_naming_a_job_twice_is_no_server_error(service, svc):
    """Bad input is a 400 or is accepted, never a 500 (API.md); naming the same
    dependency twice must not reach DynamoDB as two operations on one item."""
    dep = new_job(service, svc, type="dep")
    job = new_job(service, svc)
    try:
        leased = claim(service, svc, depends=[{"id": dep.id, "version": dep.version}, {"id": dep.id}])
    except InvalidRequest:
        assert service.get(svc, job.id).version == job.version
    else:
        assert leased is not None and leased.id == job.id


def test_job_depends_on_waits_until_its_dependencies_finish(service, svc, clock, settings):
    first = new_job(service, svc, type="parent")
    second = new_job(service, svc, type="parent")
    child = new_job(service, svc, type="child", depends_on=[first.id, second.id])

    assert claim(service, svc, "child") is None
    assert service.get(svc, child.id).state is JobState.PENDING
    service.complete(svc, first.id, {"result": 1})
    clock.advance(settings.dependency_poll_ms)
    assert claim(service, svc, "child") is None  # one still unfinished

    service.complete(svc, second.id, {"result": 2})
    clock.advance(settings.dependency_poll_ms)
    leased = must_claim(service, svc, "child")
    assert leased.id == child.id
    assert leased.attempts == 1


@pytest.mark.parametrize("end", ["cancelled", "error"])
def test_job_depends_on_a_failed_dependency_is_quarantined(service, svc, end):
    parent = new_job(service, svc, type="parent")
    child = new_job(service, svc, type="child", depends_on=[parent.id])
    if end == "cancelled":
        service.cancel(svc, parent.id)
    else:
        leased = must_claim(service, svc, "parent")
        service.fail(svc, parent.id, {"lease_token": leased.lease_token, "retry": False})
    assert service.get(svc, parent.id).state.value == end

    assert claim(service, svc, "child") is None
    kept = service.get(svc, child.id)
    assert kept.state is JobState.ERROR
    assert kept.error is not None and kept.error["code"] == "dependency_failed"
    assert kept.attempts == 0
