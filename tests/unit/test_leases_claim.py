"""Leases: claim, the quarantine of jobs that may never run, and long polls.

Every test drives the engine over moto tables with a manual clock (no sleeps) and asserts
what API.md says.
"""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
from msgspec.structs import replace

from jobcore.clock import to_iso
from jobcore.engine import Engine
from jobcore.errors import InvalidRequest, LeaseLost
from jobcore.model import Job, JobState
from tests.support.jobs import Jobs
from tests.support.leases import (
    _moto_dynamodb,  # noqa: F401  (a fixture: this module's own moto backend)
    assert_unchanged_by,
    claim,
    dynamodb,  # noqa: F401  (a fixture: fresh tables on it for every test)
    iso_in,
    must_claim,
    new_job,
    token_calls,
)


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
