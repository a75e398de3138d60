"""The local cloud's stream event sources, TTL sweeper and persistence, on a small template,
served by `make run`'s entry point in a subprocess."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.e2e.conftest import DEADLINE_S, LocalService, start_local_service, stop_local_service, wait_for

FIXTURE = Path(__file__).parent / "fixtures" / "streams" / "template.yaml"


@dataclass
class StreamCloud:
    """The local cloud serving the fixture template, as `make run` does, in a subprocess;
    the test writes to its DynamoDB endpoint (the URL it prints) over HTTP."""

    service: LocalService
    table_names: dict[str, str] = field(default_factory=lambda: {"ItemsTable": "ItemsTable"})

    def client(self, name: str) -> Any:
        endpoint = re.search(r"DynamoDB\s+(http://\S+)", self.service.logs())
        assert endpoint, "the local cloud prints its DynamoDB endpoint"
        return boto3.client(
            name, endpoint_url=endpoint.group(1), region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
        )


def start_cloud(directory: Path, records: Path, **env: str) -> StreamCloud:
    extra = {"JOBS_TEMPLATE": str(FIXTURE), "JOBS_PARAMETERS": f"RecordFile={records}", "JOBS_LOCAL_TTL_SWEEP_S": "0.2", **env}
    return StreamCloud(start_local_service(directory, extra_env=extra))


@pytest.fixture
def cloud(tmp_path: Path) -> Iterator[tuple[StreamCloud, Path]]:
    records = tmp_path / "records.jsonl"
    records.touch()
    local = start_cloud(tmp_path, records)
    try:
        yield local, records
    finally:
        stop_local_service(local.service)


def recorded(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def put(local: StreamCloud, key: str, **attributes: Any) -> None:
    item = {"PK": {"S": key}, **attributes}
    local.client("dynamodb").put_item(TableName=local.table_names["ItemsTable"], Item=item)


def test_writes_flow_to_the_function_in_order_with_images(cloud):
    local, records = cloud
    put(local, "a", n={"N": "1"})
    put(local, "a", n={"N": "2"})
    got = wait_for(lambda: recorded(records) if len(recorded(records)) >= 2 else None, timeout=DEADLINE_S, message="two records")
    assert [r["eventName"] for r in got] == ["INSERT", "MODIFY"]
    assert got[0]["dynamodb"]["NewImage"]["n"] == {"N": "1"}
    assert got[1]["dynamodb"]["OldImage"]["n"] == {"N": "1"} and got[1]["dynamodb"]["NewImage"]["n"] == {"N": "2"}
    assert got[0]["eventSource"] == "aws:dynamodb" and got[0]["eventSourceARN"].startswith("arn:aws:dynamodb:")
    assert isinstance(got[0]["dynamodb"]["ApproximateCreationDateTime"], int)
    assert "userIdentity" not in got[0]


def test_a_poison_record_goes_to_the_destination_and_does_not_block(cloud):
    local, records = cloud
    put(local, "good-1")
    put(local, "bad", poison={"BOOL": True})
    put(local, "good-2")
    sqs = local.client("sqs")

    def failure_message() -> Any:
        url = sqs.create_queue(QueueName="FailuresQueue")["QueueUrl"]
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        return messages[0] if messages else None

    message = wait_for(failure_message, timeout=DEADLINE_S, message="the failure record in SQS")
    info = json.loads(message["Body"])["DDBStreamBatchInfo"]
    assert info["batchSize"] >= 1 and info["streamArn"].startswith("arn:aws:dynamodb:")
    put(local, "after")
    keys = wait_for(
        lambda: (
            {r["dynamodb"]["Keys"]["PK"]["S"] for r in recorded(records)} >= {"good-1", "good-2", "after"}
            and {r["dynamodb"]["Keys"]["PK"]["S"] for r in recorded(records)}
        ),
        timeout=DEADLINE_S,
        message="the records around the poison one",
    )
    assert "bad" not in keys


def test_ttl_expiry_produces_a_remove_record_from_the_ttl_service(cloud):
    local, records = cloud
    put(local, "short-lived", expires_at={"N": str(int(time.time()) - 1)})
    put(local, "long-lived", expires_at={"N": str(int(time.time()) + 3600)})

    def removal() -> Any:
        return next((r for r in recorded(records) if r["eventName"] == "REMOVE"), None)

    record = wait_for(removal, timeout=DEADLINE_S, message="the TTL REMOVE record")
    assert record["dynamodb"]["Keys"]["PK"]["S"] == "short-lived"
    assert record["userIdentity"] == {"type": "Service", "principalId": "dynamodb.amazonaws.com"}
    table = local.client("dynamodb").scan(TableName=local.table_names["ItemsTable"])["Items"]
    assert [i["PK"]["S"] for i in table] == ["long-lived"]
    local.client("dynamodb").delete_item(TableName=local.table_names["ItemsTable"], Key={"PK": {"S": "long-lived"}})
    manual = wait_for(
        lambda: next(
            (r for r in recorded(records) if r["eventName"] == "REMOVE" and r["dynamodb"]["Keys"]["PK"]["S"] == "long-lived"),
            None,
        ),
        timeout=DEADLINE_S,
        message="a REMOVE by a user",
    )
    assert "userIdentity" not in manual


def test_data_dir_keeps_the_tables_across_restarts(tmp_path: Path):
    data_dir = tmp_path / "data"
    records = tmp_path / "records.jsonl"
    records.touch()
    first = start_cloud(tmp_path, records, JOBS_DATA_DIR=str(data_dir))
    try:
        put(first, "kept", n={"N": "7"})
        wait_for(lambda: recorded(records), timeout=DEADLINE_S, message="the INSERT record")
    finally:
        assert stop_local_service(first.service) == 0
    assert (data_dir / "ItemsTable.json").exists()
    second = start_cloud(tmp_path, records, JOBS_DATA_DIR=str(data_dir))
    try:
        items = second.client("dynamodb").scan(TableName="ItemsTable")["Items"]
        assert items == [{"PK": {"S": "kept"}, "n": {"N": "7"}}]
        put(second, "new")
        got = wait_for(
            lambda: recorded(records) if len(recorded(records)) >= 2 else None, timeout=DEADLINE_S, message="the new record"
        )
        # The restore itself emitted no stream record: only the new write followed.
        assert [r["dynamodb"]["Keys"]["PK"]["S"] for r in got] == ["kept", "new"]
    finally:
        stop_local_service(second.service)


def test_writes_after_a_cancelled_transaction_still_flow(cloud):
    """moto swaps a table's stream shard when it rolls a transaction back; the poller must
    keep reading the live one."""
    local, records = cloud
    put(local, "before")
    wait_for(lambda: len(recorded(records)) >= 1, timeout=DEADLINE_S, message="the first record")
    condition = "attribute_not_exists(PK)"
    refused = {"Put": {"TableName": "ItemsTable", "Item": {"PK": {"S": "before"}}, "ConditionExpression": condition}}
    with pytest.raises(local.client("dynamodb").exceptions.TransactionCanceledException):
        local.client("dynamodb").transact_write_items(TransactItems=[refused])
    put(local, "after")
    got = wait_for(
        lambda: recorded(records) if len(recorded(records)) >= 2 else None, timeout=DEADLINE_S, message="the later record"
    )
    assert [r["dynamodb"]["Keys"]["PK"]["S"] for r in got] == ["before", "after"]
