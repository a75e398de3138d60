"""Update expressions through the local cloud's fixes to moto (local/dynamodb_fixes_answers.py):
validated in fewer passes, with the same items and the same errors, message included, as moto
as it is."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from localcloud import dynamodb_fixes
from tests.unit.test_dynamodb_fixes import TABLE, _create

KEY = {"PK": {"S": "A"}, "SK": {"S": "1"}}
VALUES = {":a": {"N": "1"}, ":b": {"S": "b"}, ":l": {"L": [{"S": "x"}]}, ":s": {"SS": ["y"]}}

EXPRESSIONS = [
    "SET n = :a, m = :b",
    "SET n = n + :a, l = list_append(if_not_exists(l, :l), :l), m = if_not_exists(m, :b)",
    "SET #x = :b REMOVE m ADD c :a, s :s",
    "SET q.r = :a",  # a path into an attribute that does not exist
    "SET n = :a SET m = :b",
    "REMOVE n REMOVE m",
    "ADD c :a ADD d :a",
    "ADD c :a SET n = :a SET m = :b ADD d :a",  # several clauses twice: which one moto names
    "SET n = :a, n = :b",
    "SET PK = :b",
    "SET n = :b ADD n :a",
    "SET n = :b - :a",
]


def _answers(client: Any) -> list[Any]:
    _create(client)
    try:
        client.put_item(TableName=TABLE, Item={**KEY, "n": {"N": "5"}, "s": {"SS": ["z"]}})
        answers = []
        for expression in EXPRESSIONS:
            names = {"#x": "x"} if "#x" in expression else {}
            used = {k: v for k, v in VALUES.items() if k in expression}
            try:
                reply = client.update_item(
                    TableName=TABLE, Key=KEY, UpdateExpression=expression, ReturnValues="ALL_NEW",
                    **({"ExpressionAttributeValues": used} if used else {}),
                    **({"ExpressionAttributeNames": names} if names else {}),
                )  # fmt: skip
                answers.append(reply["Attributes"])
            except ClientError as error:
                answers.append((error.response["Error"]["Code"], error.response["Error"]["Message"]))
        return answers
    finally:
        client.delete_table(TableName=TABLE)


@pytest.fixture
def client() -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("dynamodb", region_name="us-east-1")


def test_update_expressions_answer_exactly_as_moto_answers(client: Any) -> None:
    dynamodb_fixes.uninstall()
    try:
        expected = _answers(client)
    finally:
        dynamodb_fixes.install(stream_retention_s=24 * 3600)
    answers = _answers(client)
    assert answers == expected
    failed = {expression: answer[1] for expression, answer in zip(EXPRESSIONS, answers, strict=True) if isinstance(answer, tuple)}
    assert list(failed) == EXPRESSIONS[3:], failed  # the first three apply, the rest fail as moto fails them
    assert '"REMOVE" section can only be used once' in failed["REMOVE n REMOVE m"]
    # two clauses given twice: moto names the one it meets first, bottom up, and so do the fixes
    assert '"SET" section can only be used once' in failed["ADD c :a SET n = :a SET m = :b ADD d :a"]


def test_a_validated_update_leaves_the_shared_syntax_tree_as_parsed(client: Any) -> None:
    """The parsed tree is shared by every request with the same text; validation works on a copy."""
    from moto.dynamodb.parsing.expressions import UpdateExpressionParser  # type: ignore[attr-defined]

    expression = "SET n = n + :a, m = if_not_exists(m, :b)"
    tree = UpdateExpressionParser.make(expression)
    before = repr(_shape(tree))
    _answers(client)  # a table of its own, then the same expression on it
    _create(client)
    client.put_item(TableName=TABLE, Item={**KEY, "n": {"N": "5"}})
    for _ in range(3):
        client.update_item(
            TableName=TABLE, Key=KEY, UpdateExpression=expression,
            ExpressionAttributeValues={":a": VALUES[":a"], ":b": VALUES[":b"]},
        )  # fmt: skip
    item = client.get_item(TableName=TABLE, Key=KEY)["Item"]
    assert item["n"] == {"N": "8"} and item["m"] == {"S": "b"}
    assert UpdateExpressionParser.make(expression) is tree
    assert repr(_shape(tree)) == before


def _shape(node: Any) -> Any:
    children = getattr(node, "children", None)
    if children is None:
        return type(node).__name__
    return (type(node).__name__, [(_shape(c) if hasattr(c, "children") else c) for c in children])
