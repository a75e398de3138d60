"""The local cloud's fixes to moto (local/dynamodb_fixes.py): the same answers as moto,
with memory and work that do not grow with the table.

The differential test runs one generated workload twice, on moto as it is and on moto with
the fixes, and asserts every answer and the stream's records are identical."""

from __future__ import annotations

import gc
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from moto import mock_aws
from moto.dynamodb.models.dynamo_type import Item
from moto.dynamodb.models.table import Table

from localcloud import dynamodb_fixes

TABLE = "fixes"
KEY_SCHEMA = [{"AttributeName": "PK", "KeyType": "HASH"}, {"AttributeName": "SK", "KeyType": "RANGE"}]


def _create(client: Any) -> None:
    client.create_table(
        TableName=TABLE,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": n, "AttributeType": "S"} for n in ("PK", "SK", "TPK", "QSK")],
        KeySchema=KEY_SCHEMA,
        GlobalSecondaryIndexes=[
            {
                "IndexName": "queue",
                "KeySchema": [{"AttributeName": "TPK", "KeyType": "HASH"}, {"AttributeName": "QSK", "KeyType": "RANGE"}],
                "Projection": {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["n"]},
            }
        ],
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )
    client.update_time_to_live(TableName=TABLE, TimeToLiveSpecification={"Enabled": True, "AttributeName": "ttl"})


@pytest.fixture
def moto_as_it_is() -> Iterator[None]:
    """The fixes off for one test (the suite runs with them on), then back on."""
    was_installed = dynamodb_fixes.installed()
    dynamodb_fixes.uninstall()
    try:
        yield
    finally:
        if was_installed:
            dynamodb_fixes.install(stream_retention_s=24 * 3600)


# -- generated workloads -------------------------------------------------------------------
pks = st.sampled_from(["A", "B"])
sks = st.sampled_from(["1", "2", "3", "4", "MSG#1", "MSG#2"])
queues = st.sampled_from(["T#x", "T#y"])
visible = st.sampled_from(["2026-01-01", "2026-01-02", "2026-01-03", "2026-02-01"])


@st.composite
def put(draw: st.DrawFn) -> dict[str, Any]:
    item: dict[str, Any] = {"PK": {"S": draw(pks)}, "SK": {"S": draw(sks)}, "n": {"N": str(draw(st.integers(0, 9)))}}
    if draw(st.booleans()):
        item["TPK"] = {"S": draw(queues)}
        if draw(st.booleans()):
            item["QSK"] = {"S": draw(visible) + "#" + item["PK"]["S"] + item["SK"]["S"]}
    if draw(st.booleans()):
        item["ttl"] = {"N": str(draw(st.integers(1, 5)))}
    return {"op": "put", "Item": item, "guarded": draw(st.booleans())}


@st.composite
def update(draw: st.DrawFn) -> dict[str, Any]:
    key = {"PK": {"S": draw(pks)}, "SK": {"S": draw(sks)}}
    if draw(st.booleans()):
        return {"op": "update", "Key": key, "expr": "REMOVE QSK", "values": None}
    value = draw(visible) + "#" + key["PK"]["S"] + key["SK"]["S"]
    return {
        "op": "update",
        "Key": key,
        "expr": "SET QSK = :q, TPK = :t",
        "values": {":q": {"S": value}, ":t": {"S": draw(queues)}},
    }


@st.composite
def delete(draw: st.DrawFn) -> dict[str, Any]:
    return {"op": "delete", "Key": {"PK": {"S": draw(pks)}, "SK": {"S": draw(sks)}}}


@st.composite
def transaction(draw: st.DrawFn) -> dict[str, Any]:
    writes = draw(st.lists(st.one_of(put(), update(), delete()), min_size=1, max_size=3))
    return {"op": "transact", "writes": writes}


INDEX_CONDITIONS = ["", " AND QSK <= :r", " AND QSK >= :r", " AND QSK BETWEEN :r AND :s", " AND begins_with(QSK, :p)"]
TABLE_CONDITIONS = ["", " AND SK <= :r", " AND SK > :r", " AND begins_with(SK, :p)", " AND SK BETWEEN :r AND :s"]


@st.composite
def query(draw: st.DrawFn) -> dict[str, Any]:
    forward = draw(st.booleans())
    limit = draw(st.one_of(st.none(), st.integers(1, 3)))
    if draw(st.booleans()):
        condition = draw(
            st.sampled_from(["", " AND QSK <= :r", " AND QSK >= :r", " AND QSK BETWEEN :r AND :s", " AND begins_with(QSK, :p)"])
        )
        return {"op": "query", "index": "queue", "hash": ("TPK", draw(queues)), "condition": condition,
                "forward": forward, "limit": limit}  # fmt: skip
    condition = draw(
        st.sampled_from(["", " AND SK <= :r", " AND SK > :r", " AND begins_with(SK, :p)", " AND SK BETWEEN :r AND :s"])
    )
    return {"op": "query", "index": None, "hash": ("PK", draw(pks)), "condition": condition, "forward": forward, "limit": limit}


@st.composite
def scan(draw: st.DrawFn) -> dict[str, Any]:
    return {"op": "scan", "limit": draw(st.one_of(st.none(), st.integers(1, 5)))}


# Writes outnumber reads, so that partitions fill up past the page sizes read.
operations = st.one_of(put(), put(), put(), put(), put(), update(), delete(), transaction(), query(), query(), scan())
workloads = st.lists(operations, min_size=5, max_size=40)


def _error(error: ClientError) -> dict[str, Any]:
    response = error.response
    return {"error": response.get("Error", {}).get("Code"), "reasons": response.get("CancellationReasons")}


def _write_args(write: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    if write["op"] == "put":
        args: dict[str, Any] = {"TableName": TABLE, "Item": write["Item"]}
        if write["guarded"]:
            args["ConditionExpression"] = "attribute_not_exists(PK)"
        return "Put", args
    if write["op"] == "update":
        args = {"TableName": TABLE, "Key": write["Key"], "UpdateExpression": write["expr"],
                "ConditionExpression": "attribute_exists(PK)"}  # fmt: skip
        if write["values"]:
            args["ExpressionAttributeValues"] = write["values"]
        return "Update", args
    return "Delete", {"TableName": TABLE, "Key": write["Key"]}


def _run(client: Any, op: dict[str, Any]) -> Any:
    """One operation; a query or scan is paged to its end, every page kept."""
    try:
        if op["op"] == "transact":
            items = []
            for write in op["writes"]:
                kind, args = _write_args(write)
                args["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
                items.append({kind: args})
            return client.transact_write_items(TransactItems=items)["ResponseMetadata"]["HTTPStatusCode"]
        if op["op"] in ("put", "update", "delete"):
            kind, args = _write_args(op)
            call = {"Put": client.put_item, "Update": client.update_item, "Delete": client.delete_item}[kind]
            args["ReturnValues"] = "ALL_OLD" if kind != "Update" else "ALL_NEW"
            return {k: v for k, v in call(**args).items() if k != "ResponseMetadata"}
        pages = []
        start = None
        while True:
            if op["op"] == "scan":
                args = {"TableName": TABLE}
                if op["limit"]:
                    args["Limit"] = op["limit"]
                page = client.scan(**args, **({"ExclusiveStartKey": start} if start else {}))
            else:
                name, value = op["hash"]
                args = {
                    "TableName": TABLE,
                    "KeyConditionExpression": f"{name} = :h{op['condition']}",
                    "ScanIndexForward": op["forward"],
                    "ExpressionAttributeValues": {":h": {"S": value}},
                }
                sort = "QSK" if op["index"] else "SK"
                if ":r" in op["condition"]:
                    args["ExpressionAttributeValues"][":r"] = {"S": "2026-01-02" if sort == "QSK" else "2"}
                if ":s" in op["condition"]:
                    args["ExpressionAttributeValues"][":s"] = {"S": "2026-01-03~" if sort == "QSK" else "4"}
                if ":p" in op["condition"]:
                    args["ExpressionAttributeValues"][":p"] = {"S": "2026-01" if sort == "QSK" else "MSG#"}
                if op["index"]:
                    args["IndexName"] = op["index"]
                if op["limit"]:
                    args["Limit"] = op["limit"]
                page = client.query(**args, **({"ExclusiveStartKey": start} if start else {}))
            pages.append({k: v for k, v in page.items() if k != "ResponseMetadata"})
            start = page.get("LastEvaluatedKey")
            if not start or len(pages) > 50:
                return pages
    except ClientError as error:
        return _error(error)


def _stream(client: Any) -> list[tuple[Any, ...]]:
    # moto 5.2 answers on the classic endpoint, not botocore's account-based one.
    streams = boto3.client(
        "dynamodbstreams", region_name="us-east-1", endpoint_url="https://streams.dynamodb.us-east-1.amazonaws.com"
    )
    arn = client.describe_table(TableName=TABLE)["Table"]["LatestStreamArn"]
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    records = streams.get_records(ShardIterator=iterator, Limit=1000)["Records"]
    return [
        (r["eventName"], r["dynamodb"]["Keys"], r["dynamodb"].get("OldImage"), r["dynamodb"].get("NewImage")) for r in records
    ]


def _replay(client: Any, workload: list[dict[str, Any]]) -> tuple[list[Any], list[tuple[Any, ...]]]:
    _create(client)
    try:
        answers = [_run(client, op) for op in workload]
        return answers, _stream(client)
    finally:
        client.delete_table(TableName=TABLE)


def test_moto_with_the_fixes_answers_exactly_as_moto_does() -> None:
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")

        @settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
        @given(workload=workloads)
        def same_answers(workload: list[dict[str, Any]]) -> None:
            dynamodb_fixes.uninstall()
            try:
                expected = _replay(client, workload)
            finally:
                dynamodb_fixes.install(stream_retention_s=24 * 3600)
            assert _replay(client, workload) == expected

        same_answers()


def test_pages_end_at_one_megabyte_exactly_where_moto_ends_them() -> None:
    big = "x" * 300_000
    workload: list[dict[str, Any]] = [
        {"op": "put", "guarded": False,
         "Item": {"PK": {"S": "A"}, "SK": {"S": str(i)}, "TPK": {"S": "T#x"}, "QSK": {"S": f"2026-01-0{i}"}, "b": {"S": big}}}
        for i in range(1, 8)
    ]  # fmt: skip
    for index, name in ((None, ("PK", "A")), ("queue", ("TPK", "T#x"))):
        for forward in (True, False):
            workload.append({"op": "query", "index": index, "hash": name, "condition": "", "forward": forward, "limit": None})
    workload.append({"op": "scan", "limit": None})
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        dynamodb_fixes.uninstall()
        try:
            expected = _replay(client, workload)
        finally:
            dynamodb_fixes.install(stream_retention_s=24 * 3600)
        answers, records = _replay(client, workload)
    assert (answers, records) == expected
    assert [len(page["Items"]) for page in answers[7]] == [3, 3, 1]  # three 300 KB items a page


# -- memory and work -----------------------------------------------------------------------
def _live(cls: type) -> int:
    gc.collect()
    return sum(1 for obj in gc.get_objects() if type(obj) is cls)


def _fill_and_transact(transactions: int) -> tuple[int, int]:
    """Live Table and Item objects after 300 items and then ``transactions`` transactions."""
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        _create(client)
        for i in range(300):
            client.put_item(TableName=TABLE, Item={"PK": {"S": f"J{i}"}, "SK": {"S": "JOB"}, "TPK": {"S": "T#x"},
                                                   "QSK": {"S": f"2026-01-01#{i:05d}"}})  # fmt: skip
        for i in range(transactions):
            client.transact_write_items(
                TransactItems=[
                    {"Update": {"TableName": TABLE, "Key": {"PK": {"S": f"J{i}"}, "SK": {"S": "JOB"}},
                                "UpdateExpression": "SET n = :n", "ExpressionAttributeValues": {":n": {"N": "1"}}}},
                    {"Put": {"TableName": TABLE, "Item": {"PK": {"S": f"J{i}"}, "SK": {"S": f"MSG#{i}"}}}},
                ]
            )  # fmt: skip
        return _live(Table), _live(Item)


def test_transactions_keep_no_copies_of_the_tables():
    tables_before, items_before = _fill_and_transact(0)
    tables_after, items_after = _fill_and_transact(60)
    assert tables_after == tables_before
    # 60 messages were added; no copy of the 300 items is left behind.
    assert items_after - items_before <= 60 + 10


def test_without_the_fixes_moto_keeps_two_tables_a_transaction(moto_as_it_is):
    """The measurement above is sensitive: moto as it is keeps every copy it makes."""
    tables_before, _ = _fill_and_transact(0)
    tables_after, items_after = _fill_and_transact(20)
    assert tables_after - tables_before >= 20
    assert items_after > 20 * 300


def test_a_query_hands_moto_only_the_page_it_asked_for():
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        _create(client)
        for i in range(2000):
            queue = "T#big" if i % 2 else "T#other"
            client.put_item(TableName=TABLE, Item={"PK": {"S": f"J{i:05d}"}, "SK": {"S": "JOB"}, "TPK": {"S": queue},
                                                   "QSK": {"S": f"2026-01-01#{i:05d}"}})  # fmt: skip
        looked_at: list[int] = []
        original = dynamodb_fixes._select

        def counting(*args: Any, **kwargs: Any) -> list[Any]:
            found = original(*args, **kwargs)
            looked_at.append(len(found))
            return found

        dynamodb_fixes._select = counting  # type: ignore[assignment]
        query = {
            "TableName": TABLE,
            "IndexName": "queue",
            "KeyConditionExpression": "TPK = :t AND QSK <= :b",
            "ExpressionAttributeValues": {":t": {"S": "T#big"}, ":b": {"S": "2026-01-02"}},
            "Limit": 16,
        }
        try:
            page = client.query(**query)
            again = client.query(**query, ExclusiveStartKey=page["LastEvaluatedKey"])
        finally:
            dynamodb_fixes._select = original  # type: ignore[assignment]
        assert [i["PK"]["S"] for i in page["Items"]] == [f"J{i:05d}" for i in range(1, 32, 2)]
        assert again["Items"][0]["PK"]["S"] == "J00033"
        assert looked_at == [17, 17]  # the page and the one item that says "there is more"


def test_a_cancelled_transaction_leaves_no_stream_records_and_the_same_shard():
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        _create(client)
        client.put_item(TableName=TABLE, Item={"PK": {"S": "A"}, "SK": {"S": "1"}})
        shard = next(t for t in dynamodb_fixes.tables() if t.name == TABLE).stream_shard
        with pytest.raises(ClientError):
            client.transact_write_items(
                TransactItems=[
                    {"Put": {"TableName": TABLE, "Item": {"PK": {"S": "B"}, "SK": {"S": "1"}}}},
                    {"Put": {"TableName": TABLE, "Item": {"PK": {"S": "A"}, "SK": {"S": "1"}},
                             "ConditionExpression": "attribute_not_exists(PK)"}},
                ]
            )  # fmt: skip
        assert next(t for t in dynamodb_fixes.tables() if t.name == TABLE).stream_shard is shard
        assert [r[0] for r in _stream(client)] == ["INSERT"]
        assert "Item" not in client.get_item(TableName=TABLE, Key={"PK": {"S": "B"}, "SK": {"S": "1"}})


def test_expired_keys_come_from_the_ttl_index():
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        _create(client)
        for i, ttl in enumerate([5, 50, 500]):
            client.put_item(TableName=TABLE, Item={"PK": {"S": f"J{i}"}, "SK": {"S": "JOB"}, "ttl": {"N": str(ttl)}})
        table = next(t for t in dynamodb_fixes.tables() if t.name == TABLE)
        assert dynamodb_fixes.expired_keys(table, 60) == [
            {"PK": {"S": "J0"}, "SK": {"S": "JOB"}},
            {"PK": {"S": "J1"}, "SK": {"S": "JOB"}},
        ]
        client.update_item(TableName=TABLE, Key={"PK": {"S": "J0"}, "SK": {"S": "JOB"}}, UpdateExpression="SET #t = :t",
                           ExpressionAttributeNames={"#t": "ttl"}, ExpressionAttributeValues={":t": {"N": "900"}})  # fmt: skip
        client.delete_item(TableName=TABLE, Key={"PK": {"S": "J1"}, "SK": {"S": "JOB"}})
        assert dynamodb_fixes.expired_keys(table, 60) == []
        assert dynamodb_fixes.expired_keys(table, 1000) == [
            {"PK": {"S": "J2"}, "SK": {"S": "JOB"}},
            {"PK": {"S": "J0"}, "SK": {"S": "JOB"}},
        ]


def test_the_ttl_index_lets_go_of_deleted_items_and_changed_ttls():
    """Entries of deleted items (a job's TTL is days away) must not pile up in the TTL heap."""
    from localcloud.dynamodb_fixes_ordering import _order

    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        _create(client)
        for i in range(3000):
            key = {"PK": {"S": f"J{i}"}, "SK": {"S": "JOB"}}
            client.put_item(TableName=TABLE, Item={**key, "ttl": {"N": str(10**9 + i)}})
            later = {":t": {"N": str(2 * 10**9)}}
            client.update_item(TableName=TABLE, Key=key, UpdateExpression="SET #t = :t",
                               ExpressionAttributeNames={"#t": "ttl"}, ExpressionAttributeValues=later)  # fmt: skip
            if i >= 10:
                client.delete_item(TableName=TABLE, Key=key)
        table = next(t for t in dynamodb_fixes.tables() if t.name == TABLE)
        order = _order(table)
        assert order is not None and len(order.ttl_of) == 10
        assert len(order.ttl_heap) <= 2 * len(order.ttl_of) + 1024 + 2
        assert len(dynamodb_fixes.expired_keys(table, 2 * 10**9)) == 10
        assert dynamodb_fixes.expired_keys(table, 10**9 + 5000) == []


def _insert_once(client: Any, token: str, pk: str) -> Any:
    return client.transact_write_items(
        ClientRequestToken=token,
        TransactItems=[{"Put": {"TableName": TABLE, "Item": {"PK": {"S": pk}, "SK": {"S": "1"}},
                                "ConditionExpression": "attribute_not_exists(PK)"}}],
    )  # fmt: skip


def test_a_transaction_sent_again_with_its_token_is_applied_once():
    # botocore resends a TransactWriteItems with the same token after a read timeout.
    token = f"retry-{uuid.uuid4()}"
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        _create(client)
        _insert_once(client, token, "A")
        _insert_once(client, token, "A")  # the retry: success, nothing written again
        assert [r[0] for r in _stream(client)] == ["INSERT"]
        with pytest.raises(ClientError) as mismatch:
            _insert_once(client, token, "B")
        assert mismatch.value.response["Error"]["Code"] == "IdempotentParameterMismatchException"
        assert "Item" not in client.get_item(TableName=TABLE, Key={"PK": {"S": "B"}, "SK": {"S": "1"}})
        # A fresh token is a new transaction, and its condition fails as it should.
        with pytest.raises(ClientError) as cancelled:
            _insert_once(client, f"other-{uuid.uuid4()}", "A")
        assert cancelled.value.response["Error"]["Code"] == "TransactionCanceledException"


def test_a_cancelled_transaction_runs_again_when_sent_again_with_its_token():
    token = f"cancelled-{uuid.uuid4()}"
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        _create(client)
        client.put_item(TableName=TABLE, Item={"PK": {"S": "A"}, "SK": {"S": "1"}})
        with pytest.raises(ClientError):
            _insert_once(client, token, "A")
        client.delete_item(TableName=TABLE, Key={"PK": {"S": "A"}, "SK": {"S": "1"}})
        _insert_once(client, token, "A")  # nothing was applied the first time: now it is
        assert [r[0] for r in _stream(client)] == ["INSERT", "REMOVE", "INSERT"]


def test_without_the_fixes_a_retry_is_cancelled_by_its_own_first_attempt(moto_as_it_is):
    token = f"as-is-{uuid.uuid4()}"
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        _create(client)
        _insert_once(client, token, "A")
        with pytest.raises(ClientError) as cancelled:
            _insert_once(client, token, "A")
        assert cancelled.value.response["Error"]["Code"] == "TransactionCanceledException"
