"""Leases: start, claim, extend, abort, complete, fail, cancel and status posts.

Every test drives the engine over moto tables with a manual clock (no sleeps) and asserts
what API.md says: the lease rules, the quarantine of jobs that may never run, and the
invariants of every write (``version`` +1, ``modified`` strictly increasing).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws

from jobcore import keys
from jobcore.clock import ManualClock, epoch_seconds, parse_iso, plus_ms, to_iso
from jobcore.engine import Engine
from jobcore.engine.leasing import new_token as lease_token
from jobcore.errors import (
    AlreadyFinished,
    DeadlineExceeded,
    DependencyFailed,
    InvalidRequest,
    LeaseHeld,
    LeaseLost,
    NotFound,
    NotRunning,
    RetriesExhausted,
)
from jobcore.ids import new_job_id
from jobcore.model import Job, JobState, Principal
from jobcore.store import Expr
from localcloud.template import create_tables
from tests.conftest import TABLE_NAME
from tests.support.jobs import Jobs

TYPE = "work"


# ==========================================================================================
# fixtures: one moto backend for the module, fresh tables for every test
# ==========================================================================================
@pytest.fixture(scope="module")
def _moto_dynamodb() -> Any:
    with mock_aws():
        yield boto3.client("dynamodb", region_name="us-east-1")


@pytest.fixture
def dynamodb(_moto_dynamodb: Any, template: dict[str, Any], _aws_environment: None) -> Any:
    """The conftest's tables, built from template.yaml the same way, without starting moto
    and a client for every test (most of a test's time otherwise)."""
    for name in _moto_dynamodb.list_tables()["TableNames"]:
        _moto_dynamodb.delete_table(TableName=name)
    create_tables(_moto_dynamodb, template, {"JobsTable": TABLE_NAME})
    return _moto_dynamodb


# ==========================================================================================
# helpers
# ==========================================================================================
def new_job(service: Jobs, principal: Principal, **fields: Any) -> Job:
    result = service.create(principal, {"type": TYPE, **fields})
    assert result.created
    return result.job


def claim(service: Jobs, principal: Principal, job_type: str = TYPE, **body: Any) -> Job | None:
    return service.claim(principal, job_type, {"timeout_ms": 1000, "worker": "w1", **body})


def must_claim(service: Jobs, principal: Principal, job_type: str = TYPE, **body: Any) -> Job:
    job = claim(service, principal, job_type, **body)
    assert job is not None, "expected a job to be claimable"
    return job


def wire(service: Jobs, principal: Principal, job_id: str) -> dict[str, Any]:
    return service.get(principal, job_id).to_wire()


def iso_in(clock: ManualClock, ms: int) -> str:
    return to_iso(plus_ms(clock.now(), ms))


def ms_until(clock: ManualClock, moment: str) -> int:
    return int((parse_iso(moment) - clock.now()) / timedelta(milliseconds=1))


def expire(service: Jobs, clock: ManualClock, job_id: str) -> None:
    """Put the item's expires_at in the past, as TTL would before deleting it (late)."""
    e = Expr()
    update = f"SET {e.n('expires_at')} = {e.v(epoch_seconds(clock.now()) - 1)}"
    service.store.update(keys.job_key(job_id), update, condition=None, expr=e)


def messages(service: Jobs, principal: Principal, job_id: str) -> list[str]:
    return [m.message for m in service.messages(principal, job_id, {"limit": 100}).data]


def assert_unchanged_by(
    service: Jobs, principal: Principal, job_id: str, error: type[Exception], calls: dict[str, Callable[[], Any]]
) -> None:
    """Each call raises ``error`` and leaves the job exactly as it was."""
    before = wire(service, principal, job_id)
    before_messages = messages(service, principal, job_id)
    for name, call in calls.items():
        with pytest.raises(error):
            call()
        assert wire(service, principal, job_id) == before, f"{name} changed the job"
    assert messages(service, principal, job_id) == before_messages


def token_calls(service: Jobs, principal: Principal, job_id: str, token: str) -> dict[str, Callable[[], Any]]:
    """Every write a lease holder sends with its token."""
    return {
        "extend": lambda: service.extend(principal, job_id, {"lease_token": token, "timeout_ms": 60_000}),
        "complete": lambda: service.complete(principal, job_id, {"lease_token": token, "result": {"stale": True}}),
        "fail": lambda: service.fail(principal, job_id, {"lease_token": token, "error": {"code": "x", "message": "y"}}),
        "fail_no_retry": lambda: service.fail(principal, job_id, {"lease_token": token, "retry": False}),
        "abort": lambda: service.abort(principal, job_id, {"lease_token": token}),
        "status": lambda: service.post_status(
            principal, job_id, {"lease_token": token, "new_status": "stale", "message_to_append": "stale"}
        ),
        "status_extend": lambda: service.post_status(principal, job_id, {"lease_token": token, "extend_ms": 60_000}),
        "status_complete": lambda: service.post_status(principal, job_id, {"lease_token": token, "complete": True}),
    }


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
# claim
# ==========================================================================================
def test_claim_on_an_empty_queue_is_none(service, svc):
    assert claim(service, svc) is None
    new_job(service, svc, type="other")
    assert claim(service, svc) is None


def test_claim_leases_every_job_exactly_once(service, svc, clock):
    created = set()
    for _ in range(20):
        created.add(new_job(service, svc).id)
        clock.advance(1)
    claimed = []
    tokens = set()
    for n in range(20):
        job = must_claim(service, svc, worker=f"w{n}")
        assert job.state is JobState.RUNNING
        assert job.attempts == 1
        assert job.lease_owner == f"w{n}"
        assert job.locked_until == iso_in(clock, 1000)
        claimed.append(job.id)
        tokens.add(job.lease_token)
    assert sorted(claimed) == sorted(created)
    assert len(tokens) == 20
    assert claim(service, svc) is None


def test_claim_takes_the_oldest_visible_job_first(service, svc, clock, settings):
    # One candidate per page makes the order exact (the default picks among the oldest).
    strict = Jobs(Engine(service.store, replace(settings, claim_candidates=1), clock=clock, rng=random.Random(1)))
    late = new_job(service, svc, delay_ms=3000)
    early = new_job(service, svc, delay_ms=1000)
    middle = new_job(service, svc, delay_ms=2000)
    now = new_job(service, svc)
    clock.advance(3000)
    order = [must_claim(strict, svc).id for _ in range(4)]
    assert order == [now.id, early.id, middle.id, late.id]


def test_claim_respects_delay_ms(service, svc, clock):
    job = new_job(service, svc, delay_ms=5000)
    assert job.available_at == iso_in(clock, 5000)
    assert claim(service, svc) is None
    clock.advance(4999)
    assert claim(service, svc) is None
    clock.advance(1)
    assert must_claim(service, svc).id == job.id


def test_claim_respects_available_at(service, svc, clock):
    job = new_job(service, svc, available_at=iso_in(clock, 2000))
    clock.advance(1999)
    assert claim(service, svc) is None
    clock.advance(1)
    assert must_claim(service, svc).id == job.id


def test_claim_never_takes_idle_jobs(service, svc, clock):
    job = new_job(service, svc, state="idle")
    assert claim(service, svc) is None
    clock.advance(24 * 3600 * 1000)
    assert claim(service, svc) is None
    kept = service.get(svc, job.id)
    assert kept.state is JobState.IDLE and kept.version == 1 and kept.attempts == 0


def test_an_expired_lease_is_claimable_again_and_attempts_keep_counting(service, svc, clock):
    job = new_job(service, svc)
    first = must_claim(service, svc, worker="w1")
    assert first.attempts == 1
    assert claim(service, svc, worker="w2") is None
    clock.advance(999)
    assert claim(service, svc, worker="w2") is None
    clock.advance(1)  # locked_until <= now: free
    second = must_claim(service, svc, worker="w2")
    assert second.id == job.id
    assert second.attempts == 2
    assert second.lease_owner == "w2"
    assert second.lease_token != first.lease_token
    assert second.started == to_iso(clock.now())


def test_a_stale_worker_gets_lease_lost_and_changes_nothing(service, svc, clock):
    job = new_job(service, svc)
    stale = must_claim(service, svc, worker="w1")
    service.post_status(svc, job.id, {"lease_token": stale.lease_token, "message_to_append": "w1 was here"})
    clock.advance(1000)
    fresh = must_claim(service, svc, worker="w2")
    assert fresh.id == job.id

    assert_unchanged_by(service, svc, job.id, LeaseLost, token_calls(service, svc, job.id, stale.lease_token))
    # ...also after its lease would have run out again, and after the new holder finished.
    clock.advance(5000)
    assert_unchanged_by(service, svc, job.id, LeaseLost, token_calls(service, svc, job.id, stale.lease_token))
    done = service.complete(svc, job.id, {"lease_token": fresh.lease_token, "result": "w2"})
    assert done.state is JobState.FINISHED
    assert_unchanged_by(service, svc, job.id, LeaseLost, token_calls(service, svc, job.id, stale.lease_token))
    assert service.get(svc, job.id).result == "w2"


def test_claim_quarantines_a_job_out_of_retries_at_the_head_of_the_queue(service, svc, clock):
    poisoned = new_job(service, svc, max_retries=1)
    leased = must_claim(service, svc)
    service.abort(svc, poisoned.id, {"lease_token": leased.lease_token})
    clock.advance(1)
    healthy = new_job(service, svc)

    assert must_claim(service, svc).id == healthy.id
    kept = service.get(svc, poisoned.id)  # never returned, not deleted
    assert kept.state is JobState.ERROR
    assert kept.error is not None and kept.error["code"] == "retries_exhausted"
    assert kept.attempts == 1
    assert claim(service, svc) is None


def test_claim_quarantines_an_expired_lease_out_of_retries(service, svc, clock):
    job = new_job(service, svc, max_retries=1)
    must_claim(service, svc)
    clock.advance(1000)
    assert claim(service, svc) is None
    kept = service.get(svc, job.id)
    assert kept.state is JobState.ERROR
    assert kept.error is not None and kept.error["code"] == "retries_exhausted"
    assert kept.attempts == 1


def test_claim_quarantines_jobs_past_execute_until(service, svc, clock):
    job = new_job(service, svc, ttl_ms=1000)
    clock.advance(1001)
    assert claim(service, svc) is None
    kept = service.get(svc, job.id)
    assert kept.state is JobState.ERROR
    assert kept.error is not None and kept.error["code"] == "deadline_exceeded"
    assert kept.attempts == 0


def test_claim_reads_past_a_poisoned_head_longer_than_all_its_pages(service, svc, clock, settings):
    # Small pages, so the poisoned head is longer than claim_max_pages pages of candidates.
    small = Jobs(Engine(service.store, replace(settings, claim_candidates=2, claim_max_pages=2), clock=clock))
    poisoned = [new_job(service, svc, ttl_ms=1000).id for _ in range(2 * 2 + 3)]
    clock.advance(1001)
    healthy = new_job(service, svc)
    assert must_claim(small, svc).id == healthy.id
    for job_id in poisoned:
        kept = service.get(svc, job_id)
        assert kept.state is JobState.ERROR
        assert kept.error is not None and kept.error["code"] == "deadline_exceeded"


def test_a_claims_own_max_retries_passes_a_job_by_and_never_quarantines_it(service, svc, clock):
    tried = new_job(service, svc)
    leased = must_claim(service, svc)
    service.abort(svc, tried.id, {"lease_token": leased.lease_token})
    clock.advance(1)
    assert claim(service, svc, max_retries=1) is None
    kept = service.get(svc, tried.id)
    assert kept.state is JobState.PENDING and kept.error is None  # its own limit allows more starts
    # A job with starts left under the claim's limit is leased; a claim without the limit
    # takes the one it passed by.
    fresh = new_job(service, svc)
    assert must_claim(service, svc, max_retries=1).id == fresh.id
    assert must_claim(service, svc).id == tried.id


def test_a_claims_max_retries_reads_a_bounded_number_of_pages(service, svc, clock, counter):
    """Jobs the claim's limit rules out, many at the head: the claim gives up after its
    page budget (claim_max_pages), reading no more (docs/architecture.md, the trade-off)."""
    count = service.settings.claim_candidates * (service.settings.claim_max_pages + 2)
    for _ in range(count):
        new_job(service, svc)
    taken = [must_claim(service, svc) for _ in range(count)]  # each started once
    for job in taken:
        service.abort(svc, job.id, {"lease_token": job.lease_token})
    clock.advance(1)
    counter.reset()
    assert claim(service, svc, max_retries=1) is None
    assert counter.calls["Query"] == service.settings.claim_max_pages


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


def test_claim_long_poll_returns_a_job_created_during_the_wait(service, svc, clock, monkeypatch):
    created: list[Job] = []
    advance = clock.sleep

    def sleep(seconds: float) -> None:
        if not created:
            created.append(new_job(service, svc))
        advance(seconds)

    monkeypatch.setattr(clock, "sleep", sleep)
    began = clock.now()
    job = claim(service, svc, wait_ms=10_000)
    assert job is not None and created and job.id == created[0].id
    assert clock.now() - began < timedelta(milliseconds=10_000)


def test_claim_long_poll_gives_up_after_wait_ms(service, svc, clock, settings):
    began = clock.now()
    assert claim(service, svc, wait_ms=3000) is None
    waited = clock.now() - began
    assert timedelta(milliseconds=3000) <= waited < timedelta(milliseconds=3000 + settings.poll_interval_ms)


def test_claim_wait_ms_is_at_most_20000(service, svc, clock):
    with pytest.raises(InvalidRequest) as bad:
        claim(service, svc, wait_ms=20_001)
    assert "wait_ms" in bad.value.details["fields"]
    began = clock.now()
    assert claim(service, svc, wait_ms=20_000) is None
    assert clock.now() - began >= timedelta(milliseconds=20_000)


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
