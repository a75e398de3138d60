"""Faults injected in front of DynamoDB (botocore event hooks on the engine's client):
throttling and transient errors are retried, or answered 429/503 with nothing written; a
function that dies between the writes of an operation leaves nothing inconsistent."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse

from jobcore import keys
from jobcore.errors import NotFound, ServiceUnavailable, Throttled
from jobcore.model import JobState
from tests.conftest import TABLE_NAME


class _Body:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.data


class Faults:
    """Answers the next `count` calls of an operation with an AWS error, before they are sent."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.plan: dict[str, list[tuple[int, str]]] = {}
        self.crash_on: dict[str, int] = {}
        self.sent: list[str] = []
        # First: ahead of moto's own handler, so that ours is the answer botocore takes.
        client.meta.events.register_first("before-send.dynamodb", self._before_send)
        client.meta.events.register("before-call.dynamodb", self._before_call)

    def fail(self, operation: str, count: int, *, status: int = 400, code: str = "ThrottlingException") -> None:
        self.plan.setdefault(operation, []).extend([(status, code)] * count)

    def crash(self, operation: str, *, after: int = 0) -> None:
        """The function dies when it makes the (after + 1)-th call of the operation."""
        self.crash_on[operation] = after

    def _before_call(self, model: Any, **_: Any) -> None:
        name = model.name
        if name in self.crash_on:
            if self.crash_on[name] == 0:
                del self.crash_on[name]
                raise FunctionCrashed(name)
            self.crash_on[name] -= 1

    def _before_send(self, request: Any, **_: Any) -> AWSResponse | None:
        target = request.headers.get("X-Amz-Target", b"")
        operation = (target.decode() if isinstance(target, bytes) else str(target)).rsplit(".", 1)[-1]
        self.sent.append(operation)
        queued = self.plan.get(operation)
        if not queued:
            return None
        status, code = queued.pop(0)
        # botocore runs every before-send handler and takes the first answer: moto's still sees
        # the request, so it is pointed at a table that does not exist and writes nothing.
        request.body = json.dumps(_elsewhere(json.loads(request.body))).encode()
        body = json.dumps({"__type": f"com.amazonaws.dynamodb.v20120810#{code}", "message": "injected"}).encode()
        return AWSResponse(request.url, status, {"x-amzn-RequestId": "injected"}, _Body(body))


def _elsewhere(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: ("no-such-table" if k == "TableName" else _elsewhere(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [_elsewhere(v) for v in value]
    return value


class FunctionCrashed(BaseException):
    """Stands for a Lambda that died (timeout, out of memory) in the middle of an operation:
    no `except Exception` of the code under test may catch it, as none could catch a death."""


@pytest.fixture
def faults(dynamodb: Any) -> Faults:
    return Faults(dynamodb)


def items(dynamodb: Any) -> list[dict[str, Any]]:
    return dynamodb.scan(TableName=TABLE_NAME)["Items"]


def test_throttling_that_passes_is_retried_and_the_job_written_once(service, svc, faults, dynamodb):
    faults.fail("TransactWriteItems", 2)
    job = service.create(svc, {"type": "t", "ref_id": "r", "unique": True}).job
    assert faults.sent.count("TransactWriteItems") == 3
    assert service.get(svc, job.id).state is JobState.PENDING
    assert sum(1 for i in items(dynamodb) if i["SK"]["S"] == "JOB") == 1


def test_throttling_that_lasts_is_a_429_and_nothing_is_written(api, svc, faults, dynamodb):
    faults.fail("TransactWriteItems", 1000)
    result = api.call("POST", "/v1/jobs", principal=svc, body={"type": "t", "ref_id": "r", "unique": True})
    assert (result.status, result.error_code) == (429, "throttled")
    assert result.headers["Retry-After"] == "1"
    assert items(dynamodb) == []


def test_a_database_that_keeps_failing_is_a_503_and_nothing_is_written(api, service, svc, faults, dynamodb):
    job = service.create(svc, {"type": "t"}).job
    before = items(dynamodb)
    faults.fail("UpdateItem", 1000, status=500, code="InternalServerError")
    faults.fail("TransactWriteItems", 1000, status=500, code="InternalServerError")
    result = api.call("POST", f"/v1/jobs/{job.id}/status", principal=svc, body={"new_status": "s", "message_to_append": "m"})
    assert (result.status, result.error_code) == (503, "unavailable")
    assert items(dynamodb) == before


@pytest.mark.parametrize("error", [Throttled, ServiceUnavailable])
def test_a_claim_under_faults_either_leases_once_or_leases_nothing(service, svc, faults, dynamodb, error):
    job = service.create(svc, {"type": "q"}).job
    code = "ThrottlingException" if error is Throttled else "InternalServerError"
    faults.fail("UpdateItem", 1000, status=400 if error is Throttled else 500, code=code)
    with pytest.raises(error):
        service.claim(svc, "q", {"timeout_ms": 1000})
    faults.plan.clear()  # the database recovers
    assert service.get(svc, job.id).state is JobState.PENDING
    assert service.get(svc, job.id).attempts == 0
    leased = service.claim(svc, "q", {"timeout_ms": 1000})
    assert leased is not None and leased.attempts == 1


def test_a_crash_after_finishing_a_unique_job_leaves_a_guard_the_next_create_takes_over(service, svc, faults, dynamodb):
    first = service.create(svc, {"type": "t", "ref_id": "r", "unique": True}).job
    faults.crash("DeleteItem")  # the guard's release
    with pytest.raises(FunctionCrashed):
        service.complete(svc, first.id, {"result": 1})
    assert service.get(svc, first.id).state is JobState.FINISHED
    stale = dynamodb.get_item(TableName=TABLE_NAME, Key={k: {"S": v} for k, v in keys.guard_key("t", "r").items()})
    assert stale["Item"]["job_id"]["S"] == first.id  # left behind by the crash
    second = service.create(svc, {"type": "t", "ref_id": "r", "unique": True})
    assert second.created and second.job.id != first.id
    assert service.create(svc, {"type": "t", "ref_id": "r", "unique": True}).job.id == second.job.id


@pytest.mark.parametrize("crash_at", ["guard", "messages"])
def test_a_crash_while_deleting_leaves_only_what_expires_or_is_taken_over(service, svc, faults, dynamodb, crash_at):
    job = service.create(svc, {"type": "t", "ref_id": "r", "unique": True}).job
    for n in range(3):
        service.post_status(svc, job.id, {"message_to_append": f"m{n}"})
    if crash_at == "guard":
        faults.crash("DeleteItem", after=1)  # the job is gone; its guard and messages stay
    else:
        faults.crash("BatchWriteItem")  # the job and its guard are gone; its messages stay
    with pytest.raises(FunctionCrashed):
        service.delete(svc, job.id)
    with pytest.raises(NotFound):
        service.get(svc, job.id)
    with pytest.raises(NotFound):
        service.messages(svc, job.id, {})
    left = [i for i in items(dynamodb) if i["PK"]["S"] != keys.QUEUES_PK]
    messages = [i for i in left if i["SK"]["S"].startswith(keys.MESSAGE_PREFIX)]
    assert len(messages) == 3 and all("expires_at" in i for i in messages)  # TTL takes them
    assert len(left) == (4 if crash_at == "guard" else 3)
    again = service.create(svc, {"type": "t", "ref_id": "r", "unique": True})  # a stale guard is taken over
    assert again.created and again.job.id != job.id


def test_a_status_post_that_dies_between_its_two_writes_loses_no_message(service, svc, faults, dynamodb, clock):
    from tests.unit.test_queues import stream_records

    job = service.create(svc, {"type": "t"}).job
    faults.crash("PutItem")  # the log entry, after the job took the message
    with pytest.raises(FunctionCrashed):
        service.post_status(svc, job.id, {"new_status": "s", "message_to_append": "m"})
    took = service.get(svc, job.id)
    assert (took.status, took.last_message, took.msg_count) == ("s", "m", 1)
    assert service.messages(svc, job.id, {}).data == []
    # The job's write is the commit: the stream's counting consumer writes the entry it lacks.
    records = stream_records(dynamodb, clock)
    assert service.engine.message_log.repair(records) == 1
    logged = service.messages(svc, job.id, {}).data
    assert [(m.message, m.at) for m in logged] == [("m", took.modified)]
    assert service.engine.message_log.repair(records) == 0  # a batch delivered again writes nothing


def test_a_message_entry_that_dynamodb_refuses_is_answered_and_written_from_the_stream(service, svc, faults, dynamodb,
                                                                                       clock, events):  # fmt: skip
    from tests.unit.test_queues import stream_records

    job = service.create(svc, {"type": "t"}).job
    faults.fail("PutItem", 20, status=500, code="InternalServerError")  # past botocore's retries
    posted = service.post_status(svc, job.id, {"new_status": "s", "message_to_append": "m"})
    assert (posted.status, posted.msg_count) == ("s", 1)  # answered: a retry would append it twice
    assert events.counts["MessageLogDeferred"] == 1
    faults.plan.clear()
    assert service.messages(svc, job.id, {}).data == []
    assert service.engine.message_log.repair(stream_records(dynamodb, clock)) == 1
    assert [m.message for m in service.messages(svc, job.id, {}).data] == ["m"]


def test_a_job_deleted_before_the_repair_gets_no_message_entry_back(service, svc, faults, dynamodb, clock):
    from tests.unit.test_queues import stream_records

    job = service.create(svc, {"type": "t"}).job
    faults.crash("PutItem")
    with pytest.raises(FunctionCrashed):
        service.post_status(svc, job.id, {"message_to_append": "m"})
    service.delete(svc, job.id)
    assert service.engine.message_log.repair(stream_records(dynamodb, clock)) == 0
    left = dynamodb.query(TableName=TABLE_NAME, KeyConditionExpression="PK = :pk",
                          ExpressionAttributeValues={":pk": {"S": keys.job_key(job.id)["PK"]}})["Items"]  # fmt: skip
    assert left == []


def test_the_counts_consumer_writes_the_entry_a_dead_request_left_out(service, svc, faults, dynamodb, clock, engine):
    """The handler the stream's counting mapping invokes does the repair, in the same batch."""
    from jobcore.stream import counts_handler
    from jobcore.wiring import wiring
    from tests.unit.test_queues import job_records, stream_records

    job = service.create(svc, {"type": "t"}).job
    faults.crash("PutItem")
    with pytest.raises(FunctionCrashed):
        service.post_status(svc, job.id, {"message_to_append": "kept"})
    wiring.use(engine=engine)
    try:
        event = {"Records": job_records(stream_records(dynamodb, clock)), "shardId": "shard-1"}
        assert counts_handler(event, None) == {"state": {}}
    finally:
        wiring.reset()
    assert [m.message for m in service.messages(svc, job.id, {}).data] == ["kept"]
