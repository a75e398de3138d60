"""What the embedded DynamoDB keeps for its streams, in memory (issue 11,
local/dynamodb_fixes_streams.py): shard iterators kept in a few hundred bytes each, at most
MAX_SHARD_ITERATORS of them, read back as moto's own."""

from __future__ import annotations

import gc
import tracemalloc
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.dynamodbstreams.models import dynamodbstreams_backends

from localcloud import dynamodb_fixes
from tests.unit.test_dynamodb_fixes import TABLE, _create

ACCOUNT, REGION = "123456789012", "us-east-1"


def _streams() -> Any:
    # moto 5.2 answers on the classic endpoint, not botocore's account-based one.
    return boto3.client("dynamodbstreams", region_name=REGION, endpoint_url=f"https://streams.dynamodb.{REGION}.amazonaws.com")


def _stream_of_one_write() -> tuple[Any, str, str]:
    """A table whose stream holds one record; its streams backend, stream ARN and shard id."""
    client = boto3.client("dynamodb", region_name=REGION)
    _create(client)
    client.put_item(TableName=TABLE, Item={"PK": {"S": "A"}, "SK": {"S": "1"}, "n": {"N": "1"}})
    arn = client.describe_table(TableName=TABLE)["Table"]["LatestStreamArn"]
    shard = _streams().describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    return dynamodbstreams_backends[ACCOUNT][REGION], arn, shard


def test_a_kept_shard_iterator_takes_a_few_hundred_bytes():
    """The local pollers take two iterators every 50 ms, each kept; as moto keeps them (a
    632-character id, a 750-character ARN as the key, an object) 1.7 KB each, 17 MB at
    MAX_SHARD_ITERATORS: most of what the server's memory grew by after the table (issue 11)."""
    with mock_aws():
        backend, arn, shard = _stream_of_one_write()
        count = 2000
        for _ in range(50):  # the structures' first allocations are not what is measured
            backend.get_shard_iterator(arn, shard, "TRIM_HORIZON")
        gc.collect()
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            for _ in range(count):
                backend.get_shard_iterator(arn, shard, "TRIM_HORIZON")
            gc.collect()
            kept = (tracemalloc.get_traced_memory()[0] - before) / count
        finally:
            tracemalloc.stop()
        assert len(backend.shard_iterators) == count + 50
        assert kept < 400, f"{kept:.0f} bytes kept per shard iterator"


def test_a_kept_iterator_reads_what_moto_reads_and_old_ones_are_forgotten(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(dynamodb_fixes, "MAX_SHARD_ITERATORS", 5)
    with mock_aws():
        _, arn, shard = _stream_of_one_write()
        streams = _streams()
        first = streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        latest = streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="LATEST")["ShardIterator"]
        page = streams.get_records(ShardIterator=first)
        assert [r["eventName"] for r in page["Records"]] == ["INSERT"]
        assert streams.get_records(ShardIterator=latest)["Records"] == []
        # The next iterator (AFTER_SEQUENCE_NUMBER) reads nothing more, until a write.
        boto3.client("dynamodb", region_name=REGION).delete_item(TableName=TABLE, Key={"PK": {"S": "A"}, "SK": {"S": "1"}})
        after = streams.get_records(ShardIterator=page["NextShardIterator"])
        assert [r["eventName"] for r in after["Records"]] == ["REMOVE"]
        assert after["Records"][0]["dynamodb"]["SequenceNumber"] > page["Records"][0]["dynamodb"]["SequenceNumber"]
        # A sixth iterator later (each read hands one out too), the first is forgotten.
        for _ in range(5):
            streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON")
        assert len(dynamodbstreams_backends[ACCOUNT][REGION].shard_iterators) == 5
        with pytest.raises(KeyError):  # as moto: in-process, its KeyError; over HTTP, a 500
            streams.get_records(ShardIterator=first)


def _bytes_per_stream_record(count: int) -> float:
    """Memory the stream's records hold, per record of a job's write (a new image of 31
    attributes): measured by dropping the records, the items staying."""
    from moto.dynamodb.models import dynamodb_backends

    from tests.unit.test_dynamodb_compact import _job_attrs

    with mock_aws():
        _create(boto3.client("dynamodb", region_name=REGION))
        backend = dynamodb_backends[ACCOUNT][REGION]
        shard = next(t for t in dynamodb_fixes.tables() if t.name == TABLE).stream_shard
        assert shard is not None
        tracemalloc.start()  # before the writes: only what is allocated while tracing is seen
        try:
            for i in range(count):
                backend.put_item(TABLE, _job_attrs(i))
            assert len(shard.items) == count
            gc.collect()
            with_records = tracemalloc.get_traced_memory()[0]
            shard.items.clear()
            gc.collect()
            freed = with_records - tracemalloc.get_traced_memory()[0]
        finally:
            tracemalloc.stop()
        return freed / count


def test_a_stream_record_keeps_its_images_as_text():
    """A minute of records is 20 to 40 MB at the soak's rate; as moto builds them (a dict per
    attribute) 9 KB each for a job's write, small objects among the table's that keep their
    memory from being returned (issue 11)."""
    per_record = _bytes_per_stream_record(500)
    assert per_record < 3_000, f"{per_record:.0f} bytes per stream record"


def test_a_record_reads_back_as_moto_built_it():
    """Images of every type read back as written, old and new, in the attributes' order;
    bytes moto leaves in a nested value (JSON cannot hold them) keep the image as moto made it."""
    from moto.dynamodb.models.table import StreamRecord

    item = {
        "PK": {"S": "A"}, "SK": {"S": "1"}, "n": {"N": "1.50"}, "t": {"BOOL": True},
        "z": {"NULL": True}, "l": {"L": [{"S": "x"}, {"N": "2"}, {"M": {"k": {"S": "\u00e9\U0001f600"}}}]},
        "m": {"M": {"nested": {"L": [{"BOOL": False}]}}}, "ss": {"SS": ["a", "b"]}, "ns": {"NS": ["1", "2"]},
    }  # fmt: skip
    binary = {
        "PK": {"S": "B"}, "SK": {"S": "1"}, "b": {"B": b"\x00\xff"}, "m": {"M": {"b": {"B": b"\x07"}}},
        "bs": {"BS": [b"\x01", b"\x02"]},
    }  # fmt: skip
    with mock_aws():
        client = boto3.client("dynamodb", region_name=REGION)
        _create(client)
        client.put_item(TableName=TABLE, Item=item)
        client.put_item(TableName=TABLE, Item={**item, "n": {"N": "2"}})
        client.put_item(TableName=TABLE, Item=binary)
        shard = next(t for t in dynamodb_fixes.tables() if t.name == TABLE).stream_shard
        assert shard is not None
        packed = [type(r.record["dynamodb"].get("NewImage")).__name__ for r in shard.items]
        assert packed == ["_Image", "_Image", "dict"]
        arn = client.describe_table(TableName=TABLE)["Table"]["LatestStreamArn"]
        streams = _streams()
        shard_id = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
        iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard_id, ShardIteratorType="TRIM_HORIZON")
        records = streams.get_records(ShardIterator=iterator["ShardIterator"])["Records"]
        assert [r["eventName"] for r in records] == ["INSERT", "MODIFY", "INSERT"]
        assert records[0]["dynamodb"]["NewImage"] == item
        assert list(records[1]["dynamodb"]["NewImage"]) == list(item)
        assert records[1]["dynamodb"]["OldImage"] == item
        assert records[1]["dynamodb"]["NewImage"]["n"] == {"N": "2"}
        assert records[1]["dynamodb"]["Keys"] == {"PK": {"S": "A"}, "SK": {"S": "1"}}
        assert records[2]["dynamodb"]["NewImage"] == binary
        assert isinstance(StreamRecord.to_json(shard.items[0])["dynamodb"]["NewImage"], dict)


def test_get_records_is_written_as_moto_writes_it(monkeypatch: pytest.MonkeyPatch):
    """GetRecords bypasses moto's serializer (28% of the local cloud's time under claim load):
    the body written is, read as JSON, the very body moto's serializer writes for the same
    records (timestamps to the millisecond, bytes in base64, every record type)."""
    import json

    from moto.core.responses import ActionResult

    from localcloud.dynamodb_fixes_common import _original

    bodies: list[tuple[str, str]] = []
    fixed = ActionResult.execute_result

    def both(self: ActionResult, context: Any) -> Any:
        answer = fixed(self, context)
        if context.operation_model.name == "GetRecords":
            bodies.append((answer[2], _original(ActionResult, "execute_result")(self, context)[2]))
        return answer

    monkeypatch.setattr(ActionResult, "execute_result", both)
    with mock_aws():
        client = boto3.client("dynamodb", region_name=REGION)
        _create(client)
        client.put_item(TableName=TABLE, Item={"PK": {"S": "A"}, "SK": {"S": "1"}, "n": {"N": "1.5"}, "b": {"B": b"\x00\xff"}})
        client.update_item(
            TableName=TABLE, Key={"PK": {"S": "A"}, "SK": {"S": "1"}}, UpdateExpression="SET m = :m",
            ExpressionAttributeValues={":m": {"M": {"l": {"L": [{"NULL": True}, {"BS": [b"\x01"]}, {"SS": ["x"]}]}}}},
        )  # fmt: skip
        client.delete_item(TableName=TABLE, Key={"PK": {"S": "A"}, "SK": {"S": "1"}})
        arn = client.describe_table(TableName=TABLE)["Table"]["LatestStreamArn"]
        streams = _streams()
        shard_id = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
        iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard_id, ShardIteratorType="TRIM_HORIZON")
        records = streams.get_records(ShardIterator=iterator["ShardIterator"])["Records"]
        streams.get_records(ShardIterator=iterator["ShardIterator"], Limit=1)
    assert [r["eventName"] for r in records] == ["INSERT", "MODIFY", "REMOVE"]
    assert records[1]["dynamodb"]["NewImage"]["m"]["M"]["l"]["L"][1] == {"BS": [b"\x01"]}
    assert len(bodies) == 2
    for written, moto_writes in bodies:
        assert written != moto_writes  # the fix wrote it: key order differs from the serializer's
        assert json.loads(written) == json.loads(moto_writes)
