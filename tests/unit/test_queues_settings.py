"""Queues as an operator sees them: reading, listing and setting a queue (pause, fifo)."""

from __future__ import annotations

import random
from typing import Any

import pytest

from jobcore.clock import ManualClock
from jobcore.engine import Engine
from jobcore.engine.counting import STATES
from jobcore.errors import InvalidRequest, NotFound, QueuePaused
from jobcore.model import JobState
from jobcore.settings import Settings
from jobcore.store import TableStore
from tests.conftest import TABLE_NAME
from tests.support.jobs import Jobs


# -- reading, listing and setting a queue -------------------------------------------------
def test_a_queue_never_used_is_not_found(service):
    with pytest.raises(NotFound):
        service.queue("never")


def test_queues_list_by_name_with_a_prefix_and_pages(service, svc, clock):
    for name in ("mail.a", "mail.b", "mail.c", "pdf"):
        service.create(svc, {"type": name})
    assert service.queue_names({"prefix": "mail."}) == ["mail.a", "mail.b", "mail.c"]
    first = service.queues({"limit": 2})
    assert [q.type for q in first.data] == ["mail.a", "mail.b"] and first.next_cursor
    rest = service.queues({"limit": 2, "cursor": first.next_cursor})
    assert [q.type for q in rest.data] == ["mail.c", "pdf"]
    with pytest.raises(InvalidRequest):  # a cursor of another listing
        service.queues({"prefix": "mail.", "cursor": first.next_cursor})


def test_lag_is_the_oldest_claimable_jobs_time(service, svc, clock):
    first = service.create(svc, {"type": "mail"}).job
    clock.advance(5000)
    service.create(svc, {"type": "mail"})
    assert service.queue("mail").oldest_pending_at == first.created
    service.create(svc, {"type": "later", "available_at": "2026-11-23T00:00:00Z"})
    assert service.queue("later").oldest_pending_at is None  # not claimable yet


def second_container(dynamodb: Any, settings: Settings, clock: ManualClock) -> Jobs:
    """Another Lambda container: the same table, its own caches."""
    return Jobs(Engine(TableStore(dynamodb, TABLE_NAME), settings, clock=clock, rng=random.Random(3)))


def test_a_pause_binds_every_claim_that_starts_2_s_after_it(service, dynamodb, settings, clock, svc):
    other = second_container(dynamodb, settings, clock)
    for _ in range(4):
        service.create(svc, {"type": "mail"})
    assert other.claim(svc, "mail", {"timeout_ms": 1000}) is not None  # its cache knows the queue
    assert service.patch_queue("mail", {"paused": True}).paused
    assert service.claim(svc, "mail", {"timeout_ms": 1000}) is None  # this container: at once
    clock.advance(2000)
    assert other.claim(svc, "mail", {"timeout_ms": 1000}) is None
    pending = service.list_jobs(svc, {"type": "mail", "state": "pending"}).data
    with pytest.raises(QueuePaused):
        other.start(svc, pending[0].id, {"timeout_ms": 1000})
    assert service.create(svc, {"type": "mail"}).job.state is JobState.PENDING  # creates go on
    service.patch_queue("mail", {"paused": False})
    clock.advance(2000)
    assert other.claim(svc, "mail", {"timeout_ms": 1000}) is not None


def test_a_long_poll_on_a_paused_queue_leases_nothing(service, svc, clock):
    service.create(svc, {"type": "mail"})
    service.patch_queue("mail", {"paused": True})
    assert service.claim(svc, "mail", {"timeout_ms": 1000, "wait_ms": 300}) is None
    assert service.queue_jobs("mail").data  # still there, still claimable once resumed


def test_fifo_claims_take_strictly_the_oldest(service, svc, clock):
    made = []
    for _ in range(12):
        made.append(service.create(svc, {"type": "mail"}).job.id)
        clock.advance(1)
    assert service.patch_queue("mail", {"fifo": True}).fifo
    claimed = []
    for _ in range(12):
        job = service.claim(svc, "mail", {"timeout_ms": 60_000})
        assert job is not None
        claimed.append(job.id)
    assert claimed == made


def test_queue_settings_outlive_its_jobs_and_a_patch_may_create_the_queue(service):
    queue = service.patch_queue("fresh", {"paused": True})
    assert queue.paused and queue.counts == dict.fromkeys(STATES, 0)
    assert service.queue("fresh").paused


@pytest.mark.parametrize("body", [{"paused": "yes"}, {"fifo": 1}, {"type": "x"}, [], {"paused": None}])
def test_a_bad_queue_patch_is_refused(service, body):
    with pytest.raises(InvalidRequest):
        service.patch_queue("mail", body)
