"""The embedded DynamoDB's stored items take less memory with the same contents and answers
(local/dynamodb_fixes_compact.py): attribute names interned, equal short scalars shared."""

from __future__ import annotations

import gc
import json
import tracemalloc
from typing import Any

import boto3
from moto import mock_aws
from moto.dynamodb.models.dynamo_type import DynamoType

from localcloud import dynamodb_fixes
from tests.unit.test_dynamodb_fixes import KEY_SCHEMA, TABLE, _create


def _job_attrs(i: int) -> dict[str, Any]:
    """A finished job as the service stores it, parsed from JSON as a request body is: every
    name and value a string of its own, most values shared with other jobs."""
    at = f"2026-12-03T09:{i // 1000 % 60:02d}:{i % 60:02d}.{i % 1000:03d}Z"
    job_id = f"01M8XN3Q817A572D6NH{i:07d}"
    item = {
        "PK": {"S": f"JOB#{job_id}"}, "SK": {"S": "JOB"}, "id": {"S": job_id}, "type": {"S": "soak"},
        "processor": {"S": "svc-soak"}, "state": {"S": "finished"}, "attempts": {"N": "1"}, "version": {"N": "5"},
        "created": {"S": at}, "modified": {"S": at}, "available_at": {"S": at}, "cancel_requested": {"BOOL": False},
        "msg_count": {"N": "2"}, "priority": {"N": "2"}, "owner": {"S": f"User#{i % 50}"},
        "max_retries": {"N": "5"}, "params": {"S": json.dumps({"n": i})}, "TPK": {"S": "T#soak"},
        "QPK": {"S": "Q#soak#2"}, "APK": {"S": f"ALL#{i % 8}"}, "CSK": {"S": f"{at}#{job_id}"},
        "OPK": {"S": f"O#User#{i % 50}"}, "lease_token": {"S": f"1-{i:032x}"}, "lease_owner": {"S": "svc-soak"},
        "started": {"S": at}, "status": {"S": "step 2"}, "last_message": {"S": "step 2 of 2"},
        "progress": {"S": '{"title":"soak","current":2,"maximum":2}'}, "completed": {"S": at},
        "expires_at": {"N": str(1796896371 + i)}, "result": {"S": json.dumps({"ok": i})},
    }  # fmt: skip
    loaded: dict[str, Any] = json.loads(json.dumps(item))
    return loaded


def _bytes_per_stored_job(count: int) -> float:
    from moto.dynamodb.models import dynamodb_backends

    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(TableName=TABLE, BillingMode="PAY_PER_REQUEST", KeySchema=KEY_SCHEMA,
                            AttributeDefinitions=[{"AttributeName": n, "AttributeType": "S"} for n in ("PK", "SK")])  # fmt: skip
        backend = dynamodb_backends["123456789012"]["us-east-1"]
        backend.put_item(TABLE, _job_attrs(0))  # the table's order is built before measuring
        gc.collect()
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            for i in range(1, count + 1):
                backend.put_item(TABLE, _job_attrs(i))
            gc.collect()
            retained = tracemalloc.get_traced_memory()[0] - before
        finally:
            tracemalloc.stop()
        table = next(t for t in dynamodb_fixes.tables() if t.name == TABLE)
        assert len(table.items) == count + 1
        return retained / count


def test_a_stored_job_keeps_its_names_and_shared_values_once():
    """What the local cloud's memory grows by as jobs accumulate (issue 11): moto keeps each
    attribute name and each value as an object of its own per item, 7.6 KB a job of 31
    attributes (with the table's order); with names interned and equal scalars shared, 3.2 KB."""
    assert _bytes_per_stored_job(2000) < 5_000


def test_shared_values_are_the_same_objects_and_answers_unchanged():
    from moto.dynamodb.models import dynamodb_backends

    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        _create(client)
        backend = dynamodb_backends["123456789012"]["us-east-1"]
        for i in (1, 2):
            backend.put_item(TABLE, _job_attrs(i))
        table = next(t for t in dynamodb_fixes.tables() if t.name == TABLE)
        one, two = (table.items[DynamoType({"S": f"JOB#01M8XN3Q817A572D6NH{i:07d}"})][DynamoType({"S": "JOB"})] for i in (1, 2))
        assert one.attrs["state"] is two.attrs["state"] and one.attrs["lease_owner"] is two.attrs["processor"]
        assert [a for a in one.attrs if a is not next(b for b in two.attrs if b == a)] == []
        assert one.attrs["id"] is not two.attrs["id"]
        # An update replaces the value it changes and leaves the other job's alone.
        client.update_item(TableName=TABLE, Key={"PK": one.attrs["PK"].to_json(), "SK": {"S": "JOB"}},
                           UpdateExpression="SET #s = :s", ExpressionAttributeNames={"#s": "state"},
                           ExpressionAttributeValues={":s": {"S": "failed"}})  # fmt: skip
        assert one.attrs["state"].value == "failed" and two.attrs["state"].value == "finished"
        got = client.get_item(TableName=TABLE, Key={"PK": two.attrs["PK"].to_json(), "SK": {"S": "JOB"}})["Item"]
        assert list(got) == list(_job_attrs(2)) and got == _job_attrs(2)
