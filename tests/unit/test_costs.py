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
    # It reads the queue's shard count (kept for 30 s), and registers the queue with the job.
    service.create(svc, {"type": "new-queue"})
    assert dict(counter.calls) == {"GetItem": 1, "TransactWriteItems": 1}


def test_creates_read_the_shard_count_at_most_every_30_s(service, svc, clock, counter):
    service.create(svc, {"type": "cost"})
    for _ in range(3):
        clock.advance(9_000)
        service.create(svc, {"type": "cost"})
    counter.reset()
    clock.advance(3_001)  # 30.001 s after the first create read it
    service.create(svc, {"type": "cost"})
    assert dict(counter.calls) == {"GetItem": 1, "PutItem": 1}


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


def test_an_empty_claim_is_one_query_per_level_and_one_read_of_the_queue(service, svc, clock, counter):
    leased(service, svc, clock)  # the queue has a level, and nothing claimable now
    fresh(service, clock, counter)
    assert service.claim(svc, "cost", {"timeout_ms": 1000}) is None
    assert dict(counter.calls) == {"Query": 1, "GetItem": 1}


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
    # The job (which takes the message) and then its log entry: no transaction, no read back.
    assert dict(counter.calls) == {"UpdateItem": 1, "PutItem": 1}


def test_one_list_page_is_one_query_and_one_batch_read(service, svc, clock, counter):
    for n in range(30):
        service.create(svc, {"type": "cost", "owner": "User#alice", "ref_id": f"r{n}"})
    service.list_jobs(svc, {"type": "cost"})  # reads the queue's shard span (kept for 1.5 s)
    for query, keys_read, found in (({"type": "cost"}, 11, 10), ({"owner": "User#alice"}, 11, 10),
                                    ({"type": "cost", "ref_id": "r3"}, 1, 1)):  # fmt: skip
        fresh(service, clock, counter)
        page = service.list_jobs(svc, {**query, "limit": "10"})
        assert len(page.data) == found
        # The keys from the index (one more than the page, to know whether more exist), then
        # the page's jobs themselves.
        assert dict(counter.calls) == {"Query": 1, "BatchGetItem": 1}, query
        assert counter.items_read == keys_read + found, query


def test_a_list_with_no_owner_or_type_is_one_query_per_all_created_partition_and_one_batch_read(service, svc, clock, counter):
    for n in range(30):
        service.create(svc, {"type": "cost", "ref_id": f"r{n}"})
    fresh(service, clock, counter)
    page = service.list_jobs(svc, {"limit": "10"})
    assert len(page.data) == 10
    # The price of spreading every job write over ALL_SHARDS partitions (docs/reliability.md):
    # keys from each, merged, then one read of the page's jobs.
    assert dict(counter.calls) == {"Query": keys.ALL_SHARDS, "BatchGetItem": 1}
    assert counter.items_read <= keys.ALL_SHARDS * 12 + 10


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
    # Register the queue's priority level, as every engine write that puts a job in one does.
    client.update_item(TableName=TABLE_NAME, Key=serialize(keys.queue_name_key("deep")), UpdateExpression="ADD #l :l",
                       ExpressionAttributeNames={"#l": "levels"},
                       ExpressionAttributeValues={":l": {"NS": [str(keys.priority_of(items[0]))]}})  # fmt: skip
    for start in range(0, len(items), 25):
        chunk = [{"PutRequest": {"Item": serialize(i)}} for i in items[start : start + 25]]
        client.batch_write_item(RequestItems={TABLE_NAME: chunk})


def items_read_per_claim(service: Jobs, svc: Principal, clock: ManualClock, counter: RequestCounter) -> list[int]:
    reads = []
    clock.advance(2000)
    assert service.claim(svc, "deep", {"timeout_ms": 60_000}) is not None  # and the queue's item, once
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


# -- queues: reading, steering, recovery, and the stream batch that keeps their counts ------
def test_reading_a_queue_is_its_counts_item_and_one_query_for_its_lag(service, svc, clock, counter):
    for _ in range(20):
        service.create(svc, {"type": "cost"})
    fresh(service, clock, counter)
    service.queue("cost")
    assert dict(counter.calls) == {"GetItem": 1, "Query": 1}
    assert counter.items_read == 2  # however deep the queue


def test_a_queues_page_is_one_query_and_one_per_queue_for_its_lag(service, svc, clock, counter):
    for n in range(3):
        service.create(svc, {"type": f"cost{n}"})
    fresh(service, clock, counter)
    assert len(service.queues().data) == 3
    assert dict(counter.calls) == {"Query": 4}


def test_pausing_a_queue_is_one_write_and_history_one_query(service, svc, clock, counter):
    service.create(svc, {"type": "cost"})
    fresh(service, clock, counter)
    service.patch_queue("cost", {"paused": True})
    assert dict(counter.calls) == {"UpdateItem": 1, "Query": 1}
    fresh(service, clock, counter)
    service.history("cost", {"from": to_iso(clock.now().replace(hour=0))})
    assert dict(counter.calls) == {"Query": 1}


def ended_in_error(service: Jobs, svc: Principal, clock: ManualClock, **fields: Any) -> str:
    job = leased(service, svc, clock, max_retries=1, **fields)
    service.fail(svc, job.id, {"lease_token": job.lease_token, "error": {"code": "boom", "message": "x"}})
    clock.advance(1)
    return job.id


@pytest.mark.parametrize("unique", [False, True])
def test_a_retry_is_one_transaction_and_two_reads(service, svc, clock, counter, unique):
    job_id = ended_in_error(service, svc, clock, **({"ref_id": "r", "unique": True} if unique else {}))
    fresh(service, clock, counter)
    service.retry(svc, job_id)
    # Read to answer 404 or 409 rightly; the job, its message (and guard) in one transaction;
    # read back for the answer.
    assert dict(counter.calls) == {"GetItem": 2, "TransactWriteItems": 1}


def test_a_redrive_is_one_transaction_per_job_and_one_query_per_page(service, svc, clock, counter):
    for _ in range(6):
        ended_in_error(service, svc, clock)
    fresh(service, clock, counter)
    assert service.redrive(svc, "cost").retried == 6
    # The run item read and removed; the queue-ended index read once; no job read apart.
    assert dict(counter.calls) == {"GetItem": 1, "Query": 1, "TransactWriteItems": 6, "DeleteItem": 1}
    assert counter.items_read == 6


def test_a_purge_is_one_delete_per_job_and_reads_only_that_queue(service, svc, admin, clock, counter):
    for _ in range(8):
        service.create(svc, {"type": "cost"})
    for _ in range(50):
        service.create(svc, {"type": "elsewhere"})
    fresh(service, clock, counter)
    assert service.purge(admin, "cost").deleted == 8
    # Reads the run item and the queue's shard span; deletes the jobs and the run item.
    assert dict(counter.calls) == {"GetItem": 2, "Query": 1, "DeleteItem": 8 + 1}
    assert counter.items_read == 8 + 1  # the index's keys of the queue's 8 jobs, and the queue item
    # A job with messages: one Query and one batch delete more for them.
    job = leased(service, svc, clock, max_retries=1)
    service.post_status(svc, job.id, {"lease_token": job.lease_token, "message_to_append": "note"})
    service.fail(svc, job.id, {"lease_token": job.lease_token, "error": {"code": "boom", "message": "x"}})
    fresh(service, clock, counter)
    assert service.purge(admin, "cost").deleted == 1
    assert dict(counter.calls) == {"GetItem": 1, "Query": 2, "DeleteItem": 2, "BatchWriteItem": 1}


def test_a_stream_batch_reads_once_and_writes_each_queue_and_minute_once(service, svc, clock, counter, dynamodb):
    from tests.unit.test_queues import forget_counts, job_records, stream_records

    for n in range(60):
        job = service.create(svc, {"type": f"cost{n % 3}"}).job
        if n % 2:
            claimed = service.start(svc, job.id, {"timeout_ms": 60_000})
            service.complete(svc, job.id, {"lease_token": claimed.lease_token})
    records = job_records(stream_records(dynamodb, clock))
    forget_counts(service)
    fresh(service, clock, counter)
    assert service.engine.counting.apply(records, "shard-1") == 6
    assert dict(counter.calls) == {"BatchGetItem": 1, "UpdateItem": 6}  # 150 records, 3 queues, 1 minute


def test_max_jobs_is_one_query_and_one_write_per_job(service, svc, clock, counter):
    from jobcore.commands import Parts
    from jobcore.commands.leases import parse_claim

    for _ in range(12):
        service.create(svc, {"type": "cost"})
    assert service.claim(svc, "cost", {"timeout_ms": 1000}) is not None  # reads the queue's settings
    fresh(service, clock, counter)
    command = parse_claim(Parts(path={"type": "cost"}, body={"timeout_ms": 1000, "max_jobs": 10}), service.limits)
    assert len(service.engine.leasing.claim_many(svc, command)) == 10
    assert dict(counter.calls) == {"Query": 1, "UpdateItem": 10}
    assert counter.items_read <= 16


def test_a_claim_over_several_queues_is_one_query_per_queue_tried(service, svc, clock, counter):
    from jobcore.commands import Parts
    from jobcore.commands.leases import parse_claim_any

    for job_type in ("first", "second"):  # queues that have had jobs, none claimable now
        leased(service, svc, clock, job_type)
    service.create(svc, {"type": "third"})
    command = parse_claim_any(Parts(body={"types": ["first", "second", "third"]}), service.limits)
    clock.advance(2000)  # past the settings cache: the claim reads each queue's item once
    assert service.engine.leasing.claim_many(svc, command) != []
    service.create(svc, {"type": "third"})
    fresh(service, clock, counter)
    assert service.engine.leasing.claim_many(svc, command) != []
    # A miss on levels the container cached reads the queue's item again (a level another
    # container registered since must not be missed): one GetItem per queue that missed.
    assert dict(counter.calls) == {"Query": 3, "GetItem": 2, "UpdateItem": 1}


def test_a_queue_that_never_had_a_job_costs_a_claim_one_read_and_no_query(service, svc, clock, counter):
    from jobcore.commands import Parts
    from jobcore.commands.leases import parse_claim_any

    service.create(svc, {"type": "used"})
    command = parse_claim_any(Parts(body={"types": ["never-used", "used"]}), service.limits)
    assert service.engine.leasing.claim_many(svc, command) != []  # reads each queue's settings once
    service.create(svc, {"type": "used"})
    fresh(service, clock, counter)
    assert service.engine.leasing.claim_many(svc, command) != []
    assert dict(counter.calls) == {"GetItem": 1, "Query": 1, "UpdateItem": 1}


def test_a_scheduler_run_reads_only_the_due_schedules(service, svc, clock, counter):
    """One Query of the due index, whatever the number of schedules not due or paused, and
    one transaction per slot (the job, its unique guard, the schedule's advance)."""
    for n in range(30):
        service.put_schedule(svc, f"later-{n}", {"cron": "0 3 * * *", "job": {"type": "cost"}})
        service.put_schedule(svc, f"paused-{n}", {"every_ms": 60_000, "job": {"type": "cost"}, "paused": True})
    service.put_schedule(svc, "due", {"every_ms": 60_000, "job": {"type": "cost"}})
    service.create(svc, {"type": "cost"})  # this process has registered the queue
    clock.advance(60_000)
    counter.reset()
    run = service.run_schedules()
    assert run.fired == 1
    # The queue's shard count too: a minute after this process last read it.
    assert dict(counter.calls) == {"Query": 1, "GetItem": 1, "TransactWriteItems": 1}
    assert counter.items_read == 2
    fresh(service, clock, counter)
    assert service.run_schedules().fired == 0  # nothing due: one Query that reads nothing
    assert dict(counter.calls) == {"Query": 1} and counter.items_read == 0


def test_a_claim_by_priority_reads_one_level_when_the_most_urgent_has_work(service, svc, clock, counter):
    for priority in (3, 1, 2):
        service.create(svc, {"type": "levels", "priority": priority})
    assert service.claim(svc, "levels", {"timeout_ms": 1000}) is not None  # level 1: reads the queue's levels once
    service.create(svc, {"type": "levels", "priority": 1})
    fresh(service, clock, counter)
    claimed = service.claim(svc, "levels", {"timeout_ms": 1000})
    assert claimed is not None and claimed.priority == 1
    assert dict(counter.calls) == {"Query": 1, "UpdateItem": 1}
    fresh(service, clock, counter)
    claimed = service.claim(svc, "levels", {"timeout_ms": 1000})  # level 1 is empty now: 1, then 2
    assert claimed is not None and claimed.priority == 2
    assert dict(counter.calls) == {"Query": 2, "UpdateItem": 1}


def test_a_claim_of_a_sharded_queue_reads_the_heads_of_two_shards_and_writes_once(service, svc, clock, counter):
    """Two random shards, the older head first: one Query more than an unsharded claim."""
    service.patch_queue("hot", {"shards": 8})
    for _ in range(40):
        service.create(svc, {"type": "hot"})
    assert service.claim(svc, "hot", {"timeout_ms": 1000}) is not None  # reads the queue's settings
    fresh(service, clock, counter)
    assert service.claim(svc, "hot", {"timeout_ms": 1000}) is not None
    assert dict(counter.calls) == {"Query": 2, "UpdateItem": 1}
    # An empty sharded queue: one Query per shard (and the queue's settings, read again).
    for _ in range(38):
        assert service.claim(svc, "hot", {"timeout_ms": 1000}) is not None
    fresh(service, clock, counter)
    assert service.claim(svc, "hot", {"timeout_ms": 1000}) is None
    assert dict(counter.calls) == {"Query": 8, "GetItem": 1}
