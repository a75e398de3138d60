"""What each operation costs in DynamoDB requests and items read: what a user pays for.

Counted with a botocore event hook, so the numbers do not depend on machine noise. The
clock moves 1 ms before each operation, as it does between real requests (writes within
one millisecond of the last write to a job cost one extra conditional write).
"""

from __future__ import annotations

import random
from typing import Any

import pytest

from jobcore import keys
from jobcore.clock import ManualClock, to_iso
from jobcore.engine import Engine
from jobcore.model import Job, JobState, Principal
from jobcore.settings import Settings
from jobcore.store import TableStore, serialize
from tests.conftest import TABLE_NAME
from tests.support.counting import RequestCounter
from tests.support.jobs import Jobs


def fresh(service: Jobs, clock: ManualClock, counter: RequestCounter) -> None:
    clock.advance(1)
    counter.reset()


def leased(service: Jobs, svc: Principal, clock: ManualClock, job_type: str = "cost", **fields: Any) -> Job:
    service.create(svc, {"type": job_type, **fields})
    clock.advance(1)
    job = service.claim(svc, job_type, {"timeout_ms": 60_000})
    assert job is not None
    return job


def test_create_is_one_put(service, svc, clock, counter):
    service.create(svc, {"type": "cost"})  # this process registers the queue name once
    fresh(service, clock, counter)
    service.create(svc, {"type": "cost", "params": {"x": 1}})
    assert dict(counter.calls) == {"PutItem": 1}


def test_first_create_of_a_queue_in_a_process_is_one_transaction(service, svc, counter):
    service.create(svc, {"type": "new-queue"})
    assert dict(counter.calls) == {"TransactWriteItems": 1}


def test_unique_create_is_one_transaction(service, svc, clock, counter):
    service.create(svc, {"type": "cost"})
    fresh(service, clock, counter)
    service.create(svc, {"type": "cost", "ref_id": "r1", "unique": True})
    assert dict(counter.calls) == {"TransactWriteItems": 1}


def test_get_is_one_read(service, svc, clock, counter):
    job = service.create(svc, {"type": "cost"}).job
    fresh(service, clock, counter)
    service.get(svc, job.id)
    assert dict(counter.calls) == {"GetItem": 1}
    assert counter.items_read == 1


def test_claim_without_contention_is_one_query_and_one_write(service, svc, clock, counter):
    for _ in range(3):
        service.create(svc, {"type": "cost"})
    assert service.claim(svc, "cost", {"timeout_ms": 1000}) is not None  # reads the queue's settings
    fresh(service, clock, counter)
    assert service.claim(svc, "cost", {"timeout_ms": 1000}) is not None
    assert dict(counter.calls) == {"Query": 1, "UpdateItem": 1}


def test_claims_read_the_queue_settings_at_most_once_per_1_5_s(service, svc, clock, counter):
    for _ in range(4):
        service.create(svc, {"type": "cost"})
    fresh(service, clock, counter)
    service.claim(svc, "cost", {"timeout_ms": 1000})
    clock.advance(1000)
    service.claim(svc, "cost", {"timeout_ms": 1000})
    assert counter.calls["GetItem"] == 1
    clock.advance(600)  # 1.6 s after the first read
    service.claim(svc, "cost", {"timeout_ms": 1000})
    assert counter.calls["GetItem"] == 2


@pytest.mark.parametrize(
    ("operation", "body"),
    [
        ("extend", {"timeout_ms": 5000}),
        ("abort", {}),
        ("complete", {"result": {"ok": True}}),
    ],
)
def test_lease_operations_are_one_write(service, svc, clock, counter, operation, body):
    job = leased(service, svc, clock)
    fresh(service, clock, counter)
    getattr(service, operation)(svc, job.id, {"lease_token": job.lease_token, **body})
    assert dict(counter.calls) == {"UpdateItem": 1}


def test_fail_with_retries_left_is_one_write(service, svc, clock, counter):
    # The claim's lease token carries its attempt, so the backoff needs no read; the retry's
    # condition says whether the job may run again.
    job = leased(service, svc, clock)
    fresh(service, clock, counter)
    failed = service.fail(svc, job.id, {"lease_token": job.lease_token, "error": {"code": "boom", "message": "x"}})
    assert failed.state is JobState.PENDING
    assert dict(counter.calls) == {"UpdateItem": 1}


def test_fail_of_the_last_attempt_is_two_writes(service, svc, clock, counter):
    job = leased(service, svc, clock, max_retries=1)
    fresh(service, clock, counter)
    failed = service.fail(svc, job.id, {"lease_token": job.lease_token, "error": {"code": "boom", "message": "x"}})
    assert failed.state is JobState.ERROR
    assert dict(counter.calls) == {"UpdateItem": 2}  # the retry refused, then the end


def test_status_post_is_at_most_two_writes(service, svc, clock, counter):
    job = leased(service, svc, clock)
    fresh(service, clock, counter)
    service.post_status(
        svc,
        job.id,
        {"lease_token": job.lease_token, "extend_ms": 5000, "new_status": "half", "progress": {"current": 1, "maximum": 2}},
    )
    assert dict(counter.calls) == {"UpdateItem": 1}
    fresh(service, clock, counter)
    service.post_status(svc, job.id, {"lease_token": job.lease_token, "message_to_append": "hello"})
    # The job and its message item in one transaction, then the job read back.
    assert counter.writes <= 2
    assert dict(counter.calls) == {"TransactWriteItems": 1, "GetItem": 1}


def test_one_list_page_is_one_query(service, svc, clock, counter):
    for n in range(30):
        service.create(svc, {"type": "cost", "owner": "User#alice", "ref_id": f"r{n}"})
    for query in ({"type": "cost"}, {"owner": "User#alice"}, {"type": "cost", "ref_id": "r3"}):
        fresh(service, clock, counter)
        page = service.list_jobs(svc, {**query, "limit": "10"})
        assert page.data
        assert dict(counter.calls) == {"Query": 1}, query


def test_a_list_with_no_owner_or_type_is_one_query_per_all_created_partition(service, svc, clock, counter):
    for n in range(30):
        service.create(svc, {"type": "cost", "ref_id": f"r{n}"})
    fresh(service, clock, counter)
    page = service.list_jobs(svc, {"limit": "10"})
    assert len(page.data) == 10
    # The price of spreading every job write over ALL_SHARDS partitions (docs/reliability.md).
    assert dict(counter.calls) == {"Query": keys.ALL_SHARDS}
    assert counter.items_read <= keys.ALL_SHARDS * 11


def fill_queue(service: Jobs, svc: Principal, count: int, *, expired_lease: bool = False, **fields: Any) -> None:
    """Write many jobs fast: built by the engine, stored by batch writes. With
    ``expired_lease`` each is as a claim that used its attempt left it: running, its
    lease run out now, so it is visible at the head of the queue."""
    now = service.clock.now()
    items = [service._new_job_item(svc, {"type": "deep", **fields}, now)[0] for _ in range(count)]
    for item in items if expired_lease else []:
        item.update(state="running", attempts=1, lease_token="stale", locked_until=to_iso(now), started=to_iso(now))
        item.update(keys.index_attributes(item))
    client = service.store.client
    for start in range(0, len(items), 25):
        chunk = [{"PutRequest": {"Item": serialize(i)}} for i in items[start : start + 25]]
        client.batch_write_item(RequestItems={TABLE_NAME: chunk})


def items_read_per_claim(service: Jobs, svc: Principal, clock: ManualClock, counter: RequestCounter) -> list[int]:
    reads = []
    for _ in range(5):
        fresh(service, clock, counter)
        assert service.claim(svc, "deep", {"timeout_ms": 60_000}) is not None
        reads.append(counter.items_read)
    return reads


def test_items_read_per_claim_do_not_grow_with_queue_depth(dynamodb, svc, clock, counter):
    settings = Settings(table_name=TABLE_NAME, cursor_key=b"costs")
    shallow = Jobs(Engine(TableStore(dynamodb, TABLE_NAME), settings, clock=clock, rng=random.Random(1)))
    fill_queue(shallow, svc, 100)
    clock.advance(1)
    at_100 = items_read_per_claim(shallow, svc, clock, counter)
    fill_queue(shallow, svc, 4_900)
    clock.advance(1)
    at_5000 = items_read_per_claim(shallow, svc, clock, counter)
    assert max(at_100) <= settings.claim_candidates
    assert max(at_5000) <= settings.claim_candidates
    assert max(at_5000) <= max(at_100)


def test_out_of_retries_jobs_at_the_head_are_quarantined_once(service, svc, clock, counter, settings):
    # 500 jobs that used their only attempt and whose leases expired sit at the head of
    # the queue (visible since their lease ran out), ahead of 50 good jobs.
    fill_queue(service, svc, 500, expired_lease=True, max_retries=1)
    clock.advance(100)
    fill_queue(service, svc, 50)
    clock.advance(1)

    counter.reset()
    first = service.claim(svc, "deep", {"timeout_ms": 60_000})
    assert first is not None and first.max_retries == 5  # a good job, past the poisoned head
    # Each poisoned job was moved to error exactly once: one conditional write each.
    assert counter.calls["UpdateItem"] == 500 + 1
    quarantined = service.list_jobs(svc, {"type": "deep", "state": "error", "limit": "100"})
    assert len(quarantined.data) == 100 and quarantined.next_cursor is not None
    assert all(j.error and j.error["code"] == "retries_exhausted" for j in quarantined.data)

    # Afterwards claims read no more than one page of candidates, as on a clean queue.
    for _ in range(5):
        fresh(service, clock, counter)
        assert service.claim(svc, "deep", {"timeout_ms": 60_000}) is not None
        assert counter.items_read <= settings.claim_candidates
        assert counter.calls["UpdateItem"] == 1


def test_quarantined_jobs_stay_readable(service, svc, clock):
    job = service.create(svc, {"type": "q", "max_retries": 1}).job
    clock.advance(1)
    assert service.claim(svc, "q", {"timeout_ms": 10}) is not None
    clock.advance(20)
    assert service.claim(svc, "q", {"timeout_ms": 10}) is None
    stored = service.get(svc, job.id)
    assert stored.state is JobState.ERROR and stored.attempts == 1
    assert stored.completed == to_iso(clock.now())
