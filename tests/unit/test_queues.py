"""Queues as an operator sees them: exact counts from the stream (replayed in whole and in
part) and history.

Beside it: test_queues_settings.py (reading, listing and setting a queue: pause, fifo),
test_queues_retry.py (retry, redrive, purge) and test_queues_moving.py (moving a job to
another queue, priority); they take the helpers they share with this module from it."""

from __future__ import annotations

from collections import Counter
from typing import Any

import boto3
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jobcore import keys
from jobcore.clock import ManualClock
from jobcore.engine.counting import STATES
from jobcore.errors import InvalidRequest
from jobcore.model import Principal
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


def test_history_spans_24_hours_at_most(service):
    """Found by schemathesis: `to` in the year 5723 made a list of every minute until then (a 500)."""
    with pytest.raises(InvalidRequest) as far:
        service.history("mail", {"from": "2026-11-22T09:00:00Z", "to": "5723-05-31T05:39:29Z"})
    assert far.value.details == {"fields": {"to": "at most 24 hours after from"}}
    with pytest.raises(InvalidRequest):
        service.history("mail", {"to": "5723-05-31T05:39:29Z", "from": "2545-07-25T04:58:29Z"})
    day = service.history("mail", {"from": "2026-11-22T09:00:00Z", "to": "2026-11-23T09:00:00Z"})
    assert len(day) == 24 * 60 + 1


def test_an_item_that_is_no_job_is_not_counted_and_does_not_stop_the_shard(service, dynamodb, clock, svc):
    dynamodb.put_item(TableName=TABLE_NAME, Item={"PK": {"S": "JOB#poison"}, "SK": {"S": "JOB"}, "version": {"S": "x"},
                                                  "attempts": {"S": "y"}, "state": {"S": "running"}})  # fmt: skip
    service.create(svc, {"type": "mail"})
    records = job_records(stream_records(dynamodb, clock))
    forget_counts(service)
    service.engine.counting.apply(records, "shard-1")
    assert service.queue("mail").counts["pending"] == 1
