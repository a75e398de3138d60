"""The fixes to moto keep indexes beside moto's items, so requests must not interleave: the
embedded server is serial, but in-process moto (these unit tests) is called from many
threads at once. Every request to DynamoDB or its streams holds the fixes' lock."""

from __future__ import annotations

import sys
import threading
from types import TracebackType
from typing import Any

import boto3
from botocore.exceptions import ClientError
from moto import mock_aws

from localcloud import dynamodb_fixes
from localcloud.dynamodb_fixes_common import _settings

TABLE = "threads"


def _create(client: Any) -> None:
    client.create_table(
        TableName=TABLE,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": n, "AttributeType": "S"} for n in ("PK", "SK")],
        KeySchema=[{"AttributeName": "PK", "KeyType": "HASH"}, {"AttributeName": "SK", "KeyType": "RANGE"}],
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )


class _CountingLock:
    """The request lock, counting how often it is taken."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.taken = 0

    def __enter__(self) -> None:
        self.inner.acquire()
        self.taken += 1

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None) -> None:
        self.inner.release()


def test_every_request_to_dynamodb_and_its_streams_holds_the_fixes_lock() -> None:
    assert dynamodb_fixes.installed()
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        _create(client)
        streams = boto3.client(
            "dynamodbstreams", region_name="us-east-1", endpoint_url="https://streams.dynamodb.us-east-1.amazonaws.com"
        )
        arn = client.describe_table(TableName=TABLE)["Table"]["LatestStreamArn"]
        original = _settings.request_lock
        counting = _CountingLock(original)
        _settings.request_lock = counting  # type: ignore[assignment]
        try:
            client.put_item(TableName=TABLE, Item={"PK": {"S": "A"}, "SK": {"S": "1"}})
            client.query(TableName=TABLE, KeyConditionExpression="PK = :p", ExpressionAttributeValues={":p": {"S": "A"}})
            client.transact_write_items(
                TransactItems=[{"Delete": {"TableName": TABLE, "Key": {"PK": {"S": "A"}, "SK": {"S": "1"}}}}]
            )
            streams.describe_stream(StreamArn=arn)
        finally:
            _settings.request_lock = original
    assert counting.taken == 4


def test_threads_adding_and_emptying_one_partition_at_once_leave_it_consistent() -> None:
    """The race a multi-threaded test met: two transactions emptying the same partition."""
    threads_n, rounds = 4, 60
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        _create(client)
        start = threading.Barrier(threads_n)
        failures: list[BaseException] = []
        won = [0] * threads_n

        def work(n: int) -> None:
            try:
                start.wait(timeout=60)
                for r in range(rounds):
                    key = {"PK": {"S": "P"}, "SK": {"S": f"{r}"}}
                    try:
                        client.transact_write_items(
                            TransactItems=[{"Put": {"TableName": TABLE, "Item": {**key, "by": {"N": str(n)}},
                                                    "ConditionExpression": "attribute_not_exists(PK)"}}]
                        )  # fmt: skip
                        won[n] += 1
                    except ClientError as refused:
                        assert refused.response["Error"]["Code"] == "TransactionCanceledException"
                    client.transact_write_items(TransactItems=[{"Delete": {"TableName": TABLE, "Key": key}}])
            except BaseException as failed:  # reported below, with the thread's own error
                failures.append(failed)

        workers = [threading.Thread(target=work, args=(n,)) for n in range(threads_n)]
        interval = sys.getswitchinterval()
        sys.setswitchinterval(1e-6)  # threads switch often, so an unguarded interleaving shows
        try:
            for worker in workers:
                worker.start()
            for worker in workers:
                worker.join(timeout=240)
        finally:
            sys.setswitchinterval(interval)
        assert not any(worker.is_alive() for worker in workers)
        assert failures == []
        assert sum(won) >= rounds  # each slot was taken at least once, and deleted after
        assert client.query(TableName=TABLE, KeyConditionExpression="PK = :p",
                            ExpressionAttributeValues={":p": {"S": "P"}})["Items"] == []  # fmt: skip
