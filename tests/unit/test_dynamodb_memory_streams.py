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
