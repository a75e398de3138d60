"""Queues as an operator sees them: exact counts from the stream (replayed in whole and in
part), history, pause, fifo, retry, redrive, purge and moving a job to another queue."""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

import boto3
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jobcore import keys
from jobcore.clock import ManualClock
from jobcore.engine import Engine
from jobcore.engine.counting import STATES
from jobcore.errors import Duplicate, InvalidRequest, LeaseHeld, NotFound, NotRetryable, QueuePaused
from jobcore.model import JobState, Principal
from jobcore.settings import Settings
from jobcore.store import TableStore
from tests.conftest import TABLE_NAME
from tests.support.jobs import Jobs

ERROR = {"code": "boom", "message": "it broke"}


# -- the stream, as the counts function receives it ---------------------------------------
class StreamReader:
    """The jobs table's stream, read on from where the last read stopped, its records shaped as
    in a Lambda event (times in epoch seconds; with a clock: its time, so history lands in
    its minutes)."""

    def __init__(self, dynamodb: Any, clock: ManualClock | None = None) -> None:
        self.streams = boto3.client(
            "dynamodbstreams", region_name="us-east-1", endpoint_url="https://streams.dynamodb.us-east-1.amazonaws.com"
        )
        self.arn = dynamodb.describe_table(TableName=TABLE_NAME)["Table"]["LatestStreamArn"]
        self.clock = clock
        self.positions: dict[str, str] = {}

    def read(self) -> list[dict[str, Any]]:
        records: list[dict[str, Any]] = []
        for shard in self.streams.describe_stream(StreamArn=self.arn)["StreamDescription"]["Shards"]:
            position = (
                self.positions.get(shard["ShardId"])
                or self.streams.get_shard_iterator(
                    StreamArn=self.arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
                )["ShardIterator"]
            )
            while True:
                page = self.streams.get_records(ShardIterator=position, Limit=1000)
                records += page["Records"]
                position = page["NextShardIterator"]
                if not page["Records"]:
                    break
            self.positions[shard["ShardId"]] = position
        for record in records:
            at = record["dynamodb"]["ApproximateCreationDateTime"]
            record["dynamodb"]["ApproximateCreationDateTime"] = (self.clock.now() if self.clock else at).timestamp()
        return records


def stream_records(dynamodb: Any, clock: ManualClock | None = None) -> list[dict[str, Any]]:
    """Every record of the jobs table's stream so far, oldest first."""
    return StreamReader(dynamodb, clock).read()


def job_records(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What the mapping's filter (SK = JOB) lets through."""
    return [r for r in records if r["dynamodb"]["Keys"]["SK"]["S"] == keys.JOB_SK]


def truth(dynamodb: Any) -> dict[str, dict[str, int]]:
    """Every queue's jobs by state, counted item by item."""
    found: Counter[tuple[str, str]] = Counter()
    for page in dynamodb.get_paginator("scan").paginate(TableName=TABLE_NAME):
        for item in page["Items"]:
            if item["SK"]["S"] == keys.JOB_SK:
                found[(item["type"]["S"], item["state"]["S"])] += 1
    queues = {queue for queue, _ in found}
    return {queue: {state: found[(queue, state)] for state in STATES} for queue in queues}


def counted(service: Jobs, queues: set[str]) -> dict[str, dict[str, int]]:
    return {queue: service.queue(queue).counts for queue in queues}


def every_item(service: Jobs) -> list[dict[str, Any]]:
    found, start = service.store.scan(limit=1000)
    while start is not None:
        more, start = service.store.scan(limit=1000, start_key=start)
        found += more
    return found


def forget_counts(service: Jobs) -> None:
    """Back to no counts at all: queue items and history items deleted."""
    store = service.store
    for item in every_item(service):
        if item["PK"] == keys.QUEUES_PK or str(item["PK"]).startswith("H#"):
            store.delete({"PK": item["PK"], "SK": item["SK"]})


def a_day_of_work(service: Jobs, svc: Principal, clock: ManualClock, dynamodb: Any) -> None:
    """Creates, claims, completes, failures, retries, cancels, deletes and a TTL expiry,
    over three queues."""
    made = {q: [service.create(svc, {"type": q, "max_retries": 1}).job for _ in range(6)] for q in ("mail", "pdf", "sms")}
    clock.advance(10)
    for queue in ("mail", "pdf"):
        for n in range(4):
            job = service.claim(svc, queue, {"timeout_ms": 60_000})
            assert job is not None
            if n == 0:
                service.complete(svc, job.id, {"lease_token": job.lease_token, "result": {"ok": True}})
            elif n == 1:
                service.fail(svc, job.id, {"lease_token": job.lease_token, "error": ERROR})
            elif n == 2:
                service.extend(svc, job.id, {"lease_token": job.lease_token, "timeout_ms": 5000})
            clock.advance(1)
    service.cancel(svc, made["sms"][0].id)
    service.delete(svc, made["sms"][1].id)
    dynamodb.delete_item(TableName=TABLE_NAME, Key={"PK": {"S": keys.job_key(made["sms"][2].id)["PK"]}, "SK": {"S": "JOB"}})
    failed = [j for j in service.list_jobs(svc, {"type": "mail", "state": "error"}).data]
    service.retry(svc, failed[0].id)
    service.patch(svc, made["sms"][3].id, {"type": "pdf"})


@pytest.fixture
def worked(service: Jobs, svc: Principal, clock: ManualClock, dynamodb: Any) -> list[dict[str, Any]]:
    a_day_of_work(service, svc, clock, dynamodb)
    forget_counts(service)  # the creates registered the queues; counts start from nothing
    return job_records(stream_records(dynamodb, clock))


# -- exact counts -------------------------------------------------------------------------
def test_counts_equal_the_jobs_in_each_state_after_a_mix_of_work(service, dynamodb, worked):
    written = service.engine.counting.apply(worked, "shard-1")
    expected = truth(dynamodb)
    assert counted(service, set(expected)) == expected
    assert expected["pdf"]["running"] == 2 and expected["sms"]["cancelled"] == 1  # the mix is real
    minutes = {(r["dynamodb"]["NewImage"]["type"]["S"]) for r in worked if r["dynamodb"].get("NewImage")}
    assert written <= 2 * len(minutes)  # one counts item and one minute per queue, at most


def test_a_batch_delivered_twice_counts_once(service, dynamodb, worked):
    service.engine.counting.apply(worked, "shard-1")
    assert service.engine.counting.apply(worked, "shard-1") == 0
    assert service.engine.counting.apply(worked[5:20], "shard-1") == 0
    expected = truth(dynamodb)
    assert counted(service, set(expected)) == expected


def test_each_shard_keeps_its_own_mark(service, dynamodb, worked):
    half = len(worked) // 2
    service.engine.counting.apply(worked[:half], "shard-1")
    service.engine.counting.apply(worked[half:], "shard-2")  # after a shard split: a new shard
    expected = truth(dynamodb)
    assert counted(service, set(expected)) == expected


def test_a_mark_of_a_shard_gone_for_a_day_is_removed(service, dynamodb, clock, svc):
    service.create(svc, {"type": "mail"})
    service.engine.counting.apply(job_records(stream_records(dynamodb, clock)), "old-shard")
    clock.advance(26 * 3600 * 1000)
    service.create(svc, {"type": "mail"})
    records = job_records(stream_records(dynamodb, clock))
    service.engine.counting.apply(records[-1:], "new-shard")
    item = service.store.get(keys.queue_name_key("mail"))
    assert item is not None
    assert [name for name in item if name.startswith("seq:")] == ["seq:new-shard"]
    assert service.queue("mail").counts["pending"] == 2


class FailAfter:
    """A store whose conditional updates fail (as a Lambda timeout would cut them) after n."""

    def __init__(self, store: TableStore, writes: int) -> None:
        self.store, self.left = store, writes

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    def update(self, *args: Any, **kwargs: Any) -> Any:
        if self.left <= 0:
            raise TimeoutError("the batch's time ran out")
        self.left -= 1
        return self.store.update(*args, **kwargs)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_counts_stay_exact_however_batches_are_delivered_again(service, dynamodb, worked, data):
    """Lambda's at-least-once delivery: batches of any size, some cut off after a few writes
    (a timeout) and retried from their start or an earlier record, some delivered twice."""
    forget_counts(service)
    counting = service.engine.counting
    position = 0
    while position < len(worked):
        end = data.draw(st.integers(position + 1, min(len(worked), position + 40)), label="end")
        cut = data.draw(st.none() | st.integers(0, 4), label="cut after writes")
        batch = worked[position:end]
        if cut is not None:
            real = counting.ctx.store
            counting.ctx.store = FailAfter(real, cut)  # type: ignore[assignment]
            try:
                counting.apply(batch, "shard-1")
            except TimeoutError:
                # Retried from where the last checkpoint was, or (bisected) a part of it.
                position = data.draw(st.integers(max(0, position - 10), position), label="retry from")
                continue
            finally:
                counting.ctx.store = real
        else:
            counting.apply(batch, "shard-1")
        if data.draw(st.booleans(), label="twice"):
            counting.apply(batch, "shard-1")
        position = end
    expected = truth(dynamodb)
    assert counted(service, set(expected)) == expected


def test_a_batch_writes_each_queue_once_and_each_minute_once(service, dynamodb, clock, svc, counter):
    for n in range(30):
        service.create(svc, {"type": f"q{n % 3}"})
    records = job_records(stream_records(dynamodb, clock))  # all in one minute of the clock
    forget_counts(service)
    counter.reset()
    written = service.engine.counting.apply(records, "shard-1")
    assert written == 6  # 3 queues' counts, 3 queues' minute
    assert dict(counter.calls) == {"BatchGetItem": 1, "UpdateItem": 6}


def test_a_counts_write_lost_to_another_delivery_reads_the_mark_and_adds_only_the_rest(service, dynamodb, clock, svc):
    for _ in range(4):
        service.create(svc, {"type": "mail"})
    records = job_records(stream_records(dynamodb, clock))
    forget_counts(service)
    counting = service.engine.counting
    store = counting.ctx.store
    real_batch_get = store.batch_get

    def read_then_lose_the_race(wanted: Any) -> Any:
        found = real_batch_get(wanted)
        store.batch_get = real_batch_get  # type: ignore[method-assign]
        counting.apply(records[:2], "s")  # another delivery counts the first two meanwhile
        return found

    store.batch_get = read_then_lose_the_race  # type: ignore[method-assign]
    try:
        counting.apply(records, "s")
    finally:
        store.batch_get = real_batch_get  # type: ignore[method-assign]
    assert service.queue("mail").counts["pending"] == 4


# -- history ------------------------------------------------------------------------------
def test_history_counts_each_minutes_events(service, dynamodb, clock, svc, worked):
    service.engine.counting.apply(worked, "shard-1")
    minutes = service.history("mail")
    assert len(minutes) == 61 and minutes[-1]["minute"] <= clock.now().isoformat().replace("+00:00", "Z")
    total = {name: sum(m[name] for m in minutes) for name in ("created", "started", "finished", "failed", "retried")}
    assert total == {"created": 6, "started": 4, "finished": 1, "failed": 1, "retried": 1}
    assert sum(m["created"] for m in service.history("pdf")) == 6  # a job moved in was not created there
    assert all(set(m) == {"minute", "created", "started", "finished", "failed", "retried"} for m in minutes)


def test_history_reaches_back_24_hours_at_most(service):
    with pytest.raises(InvalidRequest):
        service.history("mail", {"from": "2026-11-20T10:00:00Z"})
    with pytest.raises(InvalidRequest):
        service.history("mail", {"from": "2026-11-22T09:30:00Z", "to": "2026-11-22T09:00:00Z"})
    assert len(service.history("mail", {"from": "2026-11-22T09:00:00Z", "to": "2026-11-22T09:04:30Z"})) == 5


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


# -- retry ---------------------------------------------------------------------------------
def failed_job(service: Jobs, svc: Principal, clock: ManualClock, job_type: str = "mail", **fields: Any) -> str:
    job_id = service.create(svc, {"type": job_type, "max_retries": 1, **fields}).job.id
    clock.advance(1)
    job = service.start(svc, job_id, {"timeout_ms": 1000})
    service.post_status(svc, job_id, {"lease_token": job.lease_token, "message_to_append": "working"})
    service.fail(svc, job_id, {"lease_token": job.lease_token, "error": ERROR})
    clock.advance(1)
    return job_id


def test_retry_keeps_the_job_its_history_and_messages(service, svc, clock):
    job_id = failed_job(service, svc, clock)
    retried = service.retry(svc, job_id)
    assert (retried.id, retried.state, retried.attempts, retried.error, retried.complete) == (
        job_id, JobState.PENDING, 0, None, False)  # fmt: skip
    assert [m.message for m in service.messages(svc, job_id).data][-2:] == ["working", "retried"]
    clock.advance(10)  # past the retry's write stamp
    again = service.claim(svc, "mail", {"timeout_ms": 1000})
    assert again is not None and again.id == job_id and again.attempts == 1


@pytest.mark.parametrize("state", ["pending", "running", "finished"])
def test_only_ended_in_error_or_cancelled_may_be_retried(service, svc, clock, state):
    job_id = service.create(svc, {"type": "mail"}).job.id
    if state != "pending":
        job = service.start(svc, job_id, {"timeout_ms": 1000})
        if state == "finished":
            service.complete(svc, job_id, {"lease_token": job.lease_token})
    with pytest.raises(NotRetryable):
        service.retry(svc, job_id)
    assert service.get(svc, job_id).state.value == state


def test_a_cancelled_job_may_be_retried(service, svc):
    job_id = service.create(svc, {"type": "mail"}).job.id
    service.cancel(svc, job_id)
    assert service.retry(svc, job_id).state is JobState.PENDING


def test_a_unique_job_retakes_its_guard_or_names_the_job_that_holds_it(service, svc, clock):
    first = failed_job(service, svc, clock, ref_id="invoice-7", unique=True)
    second = service.create(svc, {"type": "mail", "ref_id": "invoice-7", "unique": True}).job.id
    with pytest.raises(Duplicate) as refused:
        service.retry(svc, first)
    assert refused.value.details == {"existing_id": second}
    assert service.get(svc, first).state is JobState.ERROR  # nothing half-written
    service.cancel(svc, second)
    assert service.retry(svc, first).state is JobState.PENDING
    again = service.create(svc, {"type": "mail", "ref_id": "invoice-7", "unique": True})
    assert (again.created, again.job.id) == (False, first)  # the guard is the retried job's again


def test_retry_of_a_missing_job_is_not_found(service, svc):
    with pytest.raises(NotFound):
        service.retry(svc, "01JDA3Q0Z8M6W4K2T9R7P5N3B1")


# -- redrive -------------------------------------------------------------------------------
def test_redrive_retries_the_error_code_asked_in_calls_of_the_limit(service, svc, clock):
    codes = {}
    for n in range(25):
        job_id = service.create(svc, {"type": "mail", "max_retries": 1}).job.id
        job = service.start(svc, job_id, {"timeout_ms": 1000})
        code = "timeout" if n % 5 else "bad_input"
        service.fail(svc, job_id, {"lease_token": job.lease_token, "error": {"code": code, "message": "x"}})
        codes[job_id] = code
        clock.advance(1)
    cancelled = service.create(svc, {"type": "mail"}).job.id
    service.cancel(svc, cancelled)
    clock.advance(1)
    calls = []
    while True:
        answer = service.redrive(svc, "mail", {"error_code": "timeout", "limit": 7})
        calls.append(answer)
        if not answer.more:
            break
    assert sum(a.retried for a in calls) == 20 and all(a.retried <= 7 for a in calls)
    for job_id, code in codes.items():
        assert service.get(svc, job_id).state is (JobState.PENDING if code == "timeout" else JobState.ERROR)
    assert service.get(svc, cancelled).state is JobState.CANCELLED  # states default to error
    assert service.redrive(svc, "mail", {"states": ["cancelled"]}).retried == 1


def test_a_redrive_run_ends_while_jobs_keep_failing(service, svc, clock):
    for _ in range(6):
        failed_job(service, svc, clock)
    first = service.redrive(svc, "mail", {"limit": 3})
    assert (first.retried, first.more) == (3, True)
    late = failed_job(service, svc, clock)  # failed after the run began: the next run's
    second = service.redrive(svc, "mail", {"limit": 1000})
    assert (second.retried, second.more) == (3, False)
    assert service.get(svc, late).state is JobState.ERROR
    assert service.redrive(svc, "mail").retried == 1


def test_redrive_skips_a_unique_job_whose_ref_id_is_taken(service, svc, clock):
    failed_job(service, svc, clock, ref_id="r", unique=True)
    failed_job(service, svc, clock)
    service.create(svc, {"type": "mail", "ref_id": "r", "unique": True})
    answer = service.redrive(svc, "mail")
    assert (answer.retried, answer.skipped, answer.more) == (1, 1, False)


def test_redrive_stops_with_time_left_to_answer(service, svc, clock):
    for _ in range(3):
        failed_job(service, svc, clock)
    left = iter([30_000, 10_000, 3_000])
    answer = service.engine.recovery.redrive(svc, _redrive_command(service, "mail"), time_left_ms=lambda: next(left, 1_000))
    assert answer.more and answer.retried < 3
    rest = service.redrive(svc, "mail")
    assert answer.retried + rest.retried == 3 and not rest.more


def _redrive_command(service: Jobs, job_type: str) -> Any:
    from jobcore.commands import Parts
    from jobcore.commands.queues import parse_redrive

    return parse_redrive(Parts(path={"type": job_type}, body={}), service.limits)


# -- purge ---------------------------------------------------------------------------------
def test_purge_deletes_all_but_running_jobs_with_guards_and_messages(service, svc, admin, clock, dynamodb):
    for n in range(9):
        service.create(svc, {"type": "mail", "ref_id": f"r{n}", "unique": True})
    service.create(svc, {"type": "other"})
    running = service.claim(svc, "mail", {"timeout_ms": 60_000})
    assert running is not None
    failed_job(service, svc, clock)
    clock.advance(1)
    calls = []
    while not calls or calls[-1].more:
        calls.append(service.purge(admin, "mail", budget=4))
    assert sum(c.deleted for c in calls) == 9 and all(c.deleted <= 4 for c in calls)
    left = every_item(service)
    assert {i["SK"] for i in left if str(i["PK"]).startswith("JOB#")} == {"JOB"}  # no messages left
    assert not [i for i in left if str(i["PK"]).startswith("UNIQ#") and i.get("job_id") != running.id]
    assert truth(dynamodb)["mail"]["running"] == 1 and truth(dynamodb)["other"]["pending"] == 1
    assert service.create(svc, {"type": "mail", "ref_id": "r3", "unique": True}).created  # its guard is free


def test_purge_of_one_state(service, svc, admin, clock):
    failed_job(service, svc, clock)
    service.create(svc, {"type": "mail"})
    assert service.purge(admin, "mail", {"state": "error"}).deleted == 1
    assert [j.state for j in service.queue_jobs("mail").data] == [JobState.PENDING]


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


def test_an_item_that_is_no_job_is_not_counted_and_does_not_stop_the_shard(service, dynamodb, clock, svc):
    dynamodb.put_item(TableName=TABLE_NAME, Item={"PK": {"S": "JOB#poison"}, "SK": {"S": "JOB"}, "version": {"S": "x"},
                                                  "attempts": {"S": "y"}, "state": {"S": "running"}})  # fmt: skip
    service.create(svc, {"type": "mail"})
    records = job_records(stream_records(dynamodb, clock))
    forget_counts(service)
    service.engine.counting.apply(records, "shard-1")
    assert service.queue("mail").counts["pending"] == 1


# Some 15,000 requests to the in-process DynamoDB: about 70 s on an idle 2-core machine, and
# several times that beside a second suite; the suite's 300 s would be a coin toss.
@pytest.mark.timeout(1200)
def test_retry_redrive_and_purge_work_through_5000_jobs_in_budgeted_calls(service, svc, admin, clock, dynamodb):
    """A queue of 5,000 failed jobs (two error codes) and 100 of another queue: redrive one
    code in calls of at most `limit`, purge in calls of at most the budget, reading only that
    queue's jobs. (The counts following these changes through the stream: the tests above
    and tests/e2e/test_queue_operations.py.)"""
    from jobcore.clock import to_iso
    from jobcore.store import serialize

    now = clock.now()
    items = []
    for n in range(5100):
        item, _ = service._new_job_item(svc, {"type": "deep" if n < 5000 else "other"}, now)
        if n < 5000:
            code = "timeout" if n % 10 else "bad_input"
            item.update(state="error", attempts=1, completed=to_iso(now), error=f'{{"code": "{code}", "message": "x"}}')
            item.pop("QSK", None)
            item.update(keys.index_attributes(item))
        items.append(item)
    for start in range(0, len(items), 25):
        chunk = [{"PutRequest": {"Item": serialize(i)}} for i in items[start : start + 25]]
        dynamodb.batch_write_item(RequestItems={TABLE_NAME: chunk})
    clock.advance(1000)

    calls = []
    while not calls or calls[-1].more:
        calls.append(service.redrive(svc, "deep", {"error_code": "timeout", "limit": 1000}))
        clock.advance(10)
    assert sum(c.retried for c in calls) == 4500 and all(c.retried + c.skipped <= 1000 for c in calls)
    assert truth(dynamodb)["deep"] == {**dict.fromkeys(STATES, 0), "pending": 4500, "error": 500}

    purges = []
    while not purges or purges[-1].more:
        purges.append(service.purge(admin, "deep"))
        clock.advance(10)
    assert sum(p.deleted for p in purges) == 5000 and all(p.deleted <= 500 for p in purges) and len(purges) >= 10
    assert truth(dynamodb) == {"other": {**dict.fromkeys(STATES, 0), "pending": 100}}  # only the queue's own jobs


@pytest.mark.parametrize(
    "body",
    [
        {"states": []},
        {"states": ["error", "error"]},
        {"states": ["finished"]},
        {"states": "error"},
        {"limit": 0},
        {"limit": 1001},
        {"error_code": 7},
        {"colour": "red"},
    ],
)
def test_a_bad_redrive_is_refused_naming_the_field(service, svc, body):
    with pytest.raises(InvalidRequest) as refused:
        service.redrive(svc, "mail", body)
    assert set(refused.value.details["fields"]) == set(body)


@pytest.mark.parametrize("body", [{"paused": "yes"}, {"fifo": 1}, {"type": "x"}, [], {"paused": None}])
def test_a_bad_queue_patch_is_refused(service, body):
    with pytest.raises(InvalidRequest):
        service.patch_queue("mail", body)
