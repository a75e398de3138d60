"""The local cloud's stream event sources and TTL sweeper, on a small template."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from localcloud import event_sources
from localcloud.cloud import CloudConfig, LocalCloud
from tests.e2e.conftest import free_port, wait_for

FIXTURE = Path(__file__).parent / "fixtures" / "streams" / "template.yaml"


@pytest.fixture
def cloud(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[LocalCloud, Path]]:
    monkeypatch.setattr(event_sources, "TTL_SWEEP_INTERVAL_S", 0.2)
    records = tmp_path / "records.jsonl"
    records.touch()
    config = CloudConfig(
        template_path=FIXTURE, http_port=free_port(), ws_port=free_port(), parameters={"RecordFile": str(records)}
    )
    local = LocalCloud(config, log=lambda line: None)
    local.start()
    try:
        yield local, records
    finally:
        local.stop()


def recorded(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def put(local: LocalCloud, key: str, **attributes: Any) -> None:
    item = {"PK": {"S": key}, **attributes}
    local.client("dynamodb").put_item(TableName=local.table_names["ItemsTable"], Item=item)


def test_writes_flow_to_the_function_in_order_with_images(cloud):
    local, records = cloud
    put(local, "a", n={"N": "1"})
    put(local, "a", n={"N": "2"})
    got = wait_for(lambda: recorded(records) if len(recorded(records)) >= 2 else None, timeout=20, message="two records")
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

    message = wait_for(failure_message, timeout=20, message="the failure record in SQS")
    info = json.loads(message["Body"])["DDBStreamBatchInfo"]
    assert info["batchSize"] >= 1 and info["streamArn"].startswith("arn:aws:dynamodb:")
    put(local, "after")
    keys = wait_for(
        lambda: (
            {r["dynamodb"]["Keys"]["PK"]["S"] for r in recorded(records)} >= {"good-1", "good-2", "after"}
            and {r["dynamodb"]["Keys"]["PK"]["S"] for r in recorded(records)}
        ),
        timeout=20,
        message="the records around the poison one",
    )
    assert "bad" not in keys


def test_ttl_expiry_produces_a_remove_record_from_the_ttl_service(cloud):
    local, records = cloud
    put(local, "short-lived", expires_at={"N": str(int(time.time()) - 1)})
    put(local, "long-lived", expires_at={"N": str(int(time.time()) + 3600)})

    def removal() -> Any:
        return next((r for r in recorded(records) if r["eventName"] == "REMOVE"), None)

    record = wait_for(removal, timeout=20, message="the TTL REMOVE record")
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
        timeout=20,
        message="a REMOVE by a user",
    )
    assert "userIdentity" not in manual


def test_data_dir_keeps_the_tables_across_restarts(tmp_path: Path):
    data_dir = tmp_path / "data"
    records = tmp_path / "records.jsonl"
    records.touch()

    def new_cloud() -> LocalCloud:
        config = CloudConfig(
            template_path=FIXTURE,
            http_port=free_port(),
            ws_port=free_port(),
            data_dir=data_dir,
            parameters={"RecordFile": str(records)},
        )
        return LocalCloud(config, log=lambda line: None)

    first = new_cloud()
    first.start()
    try:
        put(first, "kept", n={"N": "7"})
        wait_for(lambda: recorded(records), timeout=20, message="the INSERT record")
    finally:
        first.stop()
    assert (data_dir / "ItemsTable.json").exists()
    second = new_cloud()
    second.start()
    try:
        items = second.client("dynamodb").scan(TableName=second.table_names["ItemsTable"])["Items"]
        assert items == [{"PK": {"S": "kept"}, "n": {"N": "7"}}]
        put(second, "new")
        got = wait_for(lambda: recorded(records) if len(recorded(records)) >= 2 else None, timeout=20, message="the new record")
        # The restore itself emitted no stream record: only the new write followed.
        assert [r["dynamodb"]["Keys"]["PK"]["S"] for r in got] == ["kept", "new"]
    finally:
        second.stop()
