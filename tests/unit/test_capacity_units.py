"""What each operation costs in DynamoDB read and write units (what on-demand bills and what
throttles), computed from template.yaml's keys and projections: the figures of
`bench/cost_model.py` and docs/benchmarks.md. test_costs.py asserts the requests."""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from localcloud.template import tables
from tests.conftest import CONNECTIONS_TABLE, TABLE_NAME
from tests.support.capacity import KB, CapacityMeter, Index, TableShape, Units, item_size, value_size
from tests.support.jobs import Jobs


@pytest.fixture
def meter(dynamodb: Any, template: dict[str, Any]) -> CapacityMeter:
    names = {"JobsTable": TABLE_NAME, "ConnectionsTable": CONNECTIONS_TABLE}
    shapes = {names[logical]: TableShape.from_template(props) for logical, props in tables(template).items()}
    return CapacityMeter(boto3.client("dynamodb", region_name="us-east-1"), shapes).attach(dynamodb)


def test_item_sizes_follow_dynamodbs_rules():
    assert item_size({"id": {"S": "abc"}}) == 2 + 3
    assert item_size({"héllo": {"S": "é"}}) == 6 + 2  # UTF-8 bytes, names too
    assert value_size({"N": "12345"}) == 4 and value_size({"N": "100"}) == 2  # (significant digits / 2) + 1
    assert value_size({"BOOL": True}) == 1 and value_size({"NULL": True}) == 1
    assert value_size({"B": b"\x00" * 10}) == 10
    assert value_size({"M": {"a": {"S": "xy"}}}) == 3 + 1 + 1 + 2
    assert value_size({"L": [{"S": "xy"}, {"N": "1"}]}) == 3 + (1 + 2) + (1 + 2)


def test_an_index_is_written_only_when_its_projection_of_the_item_changes():
    shape = TableShape(("PK", "SK"), (Index("by-q", ("Q", "T"), frozenset({"state"})), Index("all", ("A", "T"), None)))
    base = {"PK": {"S": "j"}, "SK": {"S": "JOB"}, "Q": {"S": "q"}, "T": {"S": "1"}, "A": {"S": "a"}, "state": {"S": "p"}}
    big = {**base, "params": {"S": "x" * 3 * KB}}
    assert shape.index_units(None, base) == {"by-q": 1, "all": 1}  # a put into each
    assert shape.index_units(base, {**base, "note": {"S": "n"}}) == {"all": 1}  # not projected into by-q
    assert shape.index_units(big, {**big, "note": {"S": "n"}}) == {"all": 4}  # the whole copy, per KB
    assert shape.index_units(base, {**base, "T": {"S": "2"}}) == {"by-q": 2, "all": 2}  # a key moved: delete + put
    assert shape.index_units(base, {k: v for k, v in base.items() if k != "Q"}) == {"by-q": 1, "all": 1}  # out of a sparse one
    assert shape.index_units(base, base) == {}


def test_index_writes_name_the_partition_each_lands_in():
    shape = TableShape(("PK", "SK"), (Index("by-q", ("Q", "T"), frozenset({"state"})),))
    base = {"PK": {"S": "j"}, "SK": {"S": "JOB"}, "Q": {"S": "q#0"}, "T": {"S": "1"}, "state": {"S": "p"}}
    assert shape.index_writes(None, base) == [("by-q", "q#0", 1)]
    assert shape.index_writes(base, {**base, "state": {"S": "r"}}) == [("by-q", "q#0", 1)]
    # A moved key: the delete lands in the old partition, the put in the new one.
    assert shape.index_writes(base, {**base, "Q": {"S": "q#1"}}) == [("by-q", "q#0", 1), ("by-q", "q#1", 1)]
    assert shape.index_writes(base, {**base, "T": {"S": "2"}}) == [("by-q", "q#0", 1), ("by-q", "q#0", 1)]


def units_of(meter: CapacityMeter, clock: Any, step: Any) -> Units:
    clock.advance(1)
    meter.reset()
    step()
    return meter.reset()


def writes_by_index(units: Units) -> dict[str, int]:
    return {name.split("/")[-1]: int(n) for name, n in units.writes.items() if "/" in name}


SMALL = {"type": "cost", "params": {"n": 1}, "owner": "User#1", "title": "a job"}


def test_each_operation_of_a_small_job(service: Jobs, svc: Any, clock: Any, meter: CapacityMeter):
    service.create(svc, {"type": "cost"})  # the queue exists
    service.claim(svc, "cost", {"timeout_ms": 60_000})
    created = units_of(meter, clock, lambda: service.create(svc, SMALL))
    assert (created.write_units, created.read_units) == (5, 0)
    assert writes_by_index(created) == {"queue-level-visible": 1, "type-created": 1, "owner-created": 1, "all-created": 1}
    clock.advance(1)  # requests are milliseconds apart (a second write in the same one costs more)
    leased = service.claim(svc, "cost", {"timeout_ms": 60_000})
    assert leased is not None
    token = leased.lease_token
    heartbeat = units_of(meter, clock, lambda: service.extend(svc, leased.id, {"lease_token": token, "timeout_ms": 60_000}))
    # The queue index moves its key (delete + put); the listing indexes hold keys only, which
    # a heartbeat does not change.
    assert heartbeat.write_units == 3 and writes_by_index(heartbeat) == {"queue-level-visible": 2}
    status = units_of(meter, clock, lambda: service.post_status(svc, leased.id, {"lease_token": token, "new_status": "half"}))
    assert status.write_units == 1 and writes_by_index(status) == {}
    with_message = units_of(meter, clock, lambda: service.post_status(svc, leased.id, {"lease_token": token,
                                                                                       "message_to_append": "done"}))  # fmt: skip
    assert with_message.write_units == 2  # the job, then its log entry: no transaction to double them
    assert with_message.read_units == 0  # and nothing read back
    completed = units_of(meter, clock, lambda: service.complete(svc, leased.id, {"lease_token": token}))
    assert completed.write_units == 2 and writes_by_index(completed) == {"queue-level-visible": 1}  # out of the queue
    got = units_of(meter, clock, lambda: service.get(svc, leased.id))
    assert (got.write_units, got.read_units) == (0, 1)


def life(service: Jobs, svc: Any, clock: Any, meter: CapacityMeter, params: dict[str, Any]) -> Units:
    service.create(svc, {"type": "life"})
    service.claim(svc, "life", {"timeout_ms": 60_000})
    clock.advance(1)
    meter.reset()
    service.create(svc, {**SMALL, "type": "life", "params": params})
    clock.advance(1)
    leased = service.claim(svc, "life", {"timeout_ms": 60_000})
    assert leased is not None
    for step in range(3):
        clock.advance(1)
        service.post_status(svc, leased.id, {"lease_token": leased.lease_token, "new_status": f"step {step}",
                                             "message_to_append": f"step {step} done",
                                             "progress": {"current": step + 1, "maximum": 3}})  # fmt: skip
    clock.advance(1)
    service.complete(svc, leased.id, {"lease_token": leased.lease_token, "result": {"ok": True}})
    return meter.reset()


def test_a_small_jobs_life(service: Jobs, svc: Any, clock: Any, meter: CapacityMeter):
    units = life(service, svc, clock, meter, {"n": 1})
    # 37 write units and 3.5 read units before the listing indexes held keys only and a
    # message left its transaction (docs/benchmarks.md "cost"): now 16 and 0.5 (the claim's Query).
    assert units.write_units == 16 and units.read_units == 0.5
    assert units.job_records == 6  # create, claim, three posts, complete: what the stream consumers read


def test_the_life_of_a_job_with_100_kib_of_params(service: Jobs, svc: Any, clock: Any, meter: CapacityMeter):
    units = life(service, svc, clock, meter, {"blob": "x" * 100 * KB})
    # The params ride in every write of the job, and in no index (2,737 units when three
    # indexes copied the whole job on every write).
    assert units.write_units == 616
    assert writes_by_index(units) == {"type-created": 1, "owner-created": 1, "all-created": 1, "queue-level-visible": 4}


def test_an_idle_worker_on_the_socket_costs_a_safety_poll_and_each_connection_nine_units(service: Jobs, svc: Any,
                                                                                          clock: Any, meter: CapacityMeter,
                                                                                          subscriptions: Any):  # fmt: skip
    """The figures of the cost model's idle worker on the WebSocket (bench/cost_model.py)."""
    from jobcore.live.messages import Topic

    service.create(svc, {"type": "idle"})
    service.claim(svc, "idle", {"timeout_ms": 60_000})
    poll = units_of(meter, clock, lambda: service.claim(svc, "idle", {"timeout_ms": 60_000}))
    assert dict(poll.requests) == {"Query": 1, "GetItem": 1} and poll.write_units == 0
    connected = units_of(meter, clock, lambda: subscriptions.connect("c1", svc))
    subscribed = units_of(meter, clock, lambda: subscriptions.subscribe("c1", svc, Topic("work", "idle")))
    gone = units_of(meter, clock, lambda: subscriptions.disconnect("c1"))
    assert connected.write_units == 1
    assert subscribed.write_units == 5  # a transaction of two items (x2), and the topic index
    assert gone.write_units == 3  # both items, and the topic index


def test_a_sharded_queues_job_writes_its_queue_indexes_in_its_own_shard_only(service: Jobs, svc: Any, clock: Any,
                                                                              meter: CapacityMeter):  # fmt: skip
    """What bench/hot_queue.py sums per partition: a life (create, claim, heartbeat, complete)
    costs the queue index 6 units and type-created 1, all in the partitions of the job's shard."""
    from jobcore import keys

    service.patch_queue("hot", {"shards": 8})
    meter.reset()
    job = service.create(svc, {"type": "hot"}).job
    clock.advance(1)
    leased = service.claim(svc, "hot", {"timeout_ms": 60_000})
    assert leased is not None and leased.id == job.id
    clock.advance(1)
    service.extend(svc, job.id, {"lease_token": leased.lease_token, "timeout_ms": 60_000})
    clock.advance(1)
    service.complete(svc, job.id, {"lease_token": leased.lease_token})
    shard = keys.shard_of(job.id, 8)
    written = {(name.split("/")[-1], partition): n for (name, partition), n in meter.reset().partitions.items()
               if name.split("/")[-1] in ("queue-level-visible", "type-created")}  # fmt: skip
    assert written == {("queue-level-visible", keys.queue_partition("hot", 2, shard)): 6,
                       ("type-created", keys.type_partition("hot", shard)): 1}  # fmt: skip
