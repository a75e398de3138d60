"""Fixes 2 and 6 of ``dynamodb_fixes``: ``TransactWriteItems`` rolled back by a journal of
the items it touches instead of deep copies of the tables, and ``ClientRequestToken``
honoured as DynamoDB honours it.
"""

from __future__ import annotations

import copy
import hashlib
import json
import time
from dataclasses import dataclass, field
from typing import Any

from moto.core.responses import ActionResult
from moto.dynamodb.comparisons import get_filter_expression
from moto.dynamodb.exceptions import (
    ERROR_TYPE_PREFIX,
    ConditionalCheckFailed,
    DynamodbException,
    MockValidationException,
    MultipleTransactionsException,
    TooManyTransactionsException,
    TransactionCanceledException,
    TransactWriteSingleOpException,
)
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.dynamo_type import DynamoType, Item
from moto.dynamodb.models.table import StreamShard, Table
from moto.dynamodb.responses import DynamoHandler

from .dynamodb_fixes_common import _original, _settings
from .dynamodb_fixes_ordering import _lookup, _reindex

IDEMPOTENCY_WINDOW_S = 600.0  # DynamoDB honours a ClientRequestToken for ten minutes


@dataclass
class _Journal:
    """What a transaction changed, to put back if it is cancelled."""

    items: list[tuple[Table, DynamoType, DynamoType | None, Item | None]] = field(default_factory=list)
    stream_ends: dict[int, tuple[StreamShard, int]] = field(default_factory=dict)

    def before_write(self, table: Table, hash_key: DynamoType, range_key: DynamoType | None) -> None:
        shard = table.stream_shard
        if shard is not None and id(shard) not in self.stream_ends:
            self.stream_ends[id(shard)] = (shard, shard.starting_sequence_number + len(shard.items))
        old = _lookup(table, (hash_key, range_key))
        self.items.append((table, hash_key, range_key, copy.deepcopy(old) if old is not None else None))

    def roll_back(self) -> None:
        for table, hash_key, range_key, old in reversed(self.items):
            if range_key is None:
                if old is None:
                    table.items.pop(hash_key, None)
                else:
                    table.items[hash_key] = old  # type: ignore[assignment]  # a hash-only table
            elif old is None:
                partition = dict.get(table.items, hash_key)
                if partition is not None:
                    partition.pop(range_key, None)
            else:
                table.items[hash_key][range_key] = old
            _reindex(table, hash_key, range_key)
        for shard, end in self.stream_ends.values():
            del shard.items[max(0, end - shard.starting_sequence_number) :]


def _transact_write_items(self: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> None:
    """moto's TransactWriteItems, rolled back by journal instead of deep copies of tables."""
    if len(transact_items) > 100:
        raise TooManyTransactionsException()
    journal = _Journal()
    touched: set[tuple[str, str]] = set()
    errors: list[tuple[str | None, str | None, dict[str, Any] | None]] = []
    try:
        for entry in transact_items:
            original_item: dict[str, Any] | None = None
            if len(entry) > 1:
                raise TransactWriteSingleOpException
            try:
                op_type, op = next(iter(entry.items()))
                if op_type not in {"ConditionCheck", "Put", "Delete", "Update"}:
                    raise ValueError("Unsupported transaction operation")
                table_name = op["TableName"]
                condition = op.get("ConditionExpression")
                names = op.get("ExpressionAttributeNames")
                values = op.get("ExpressionAttributeValues")
                if op_type == "Put":
                    table = self.get_table(table_name)
                    key = {table.hash_key_attr: op["Item"][table.hash_key_attr]}
                    if table.range_key_attr is not None:
                        key[table.range_key_attr] = op["Item"][table.range_key_attr]
                else:
                    key = op["Key"]
                signature = (str(table_name), str(dict(sorted(key.items()))))
                if signature in touched:
                    raise MultipleTransactionsException()
                touched.add(signature)
                current = self.get_item(table_name, key)
                if condition is not None and not get_filter_expression(condition, names, values).expr(current):
                    if op.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD" and current:
                        original_item = current.to_json()["Attributes"]
                    raise ConditionalCheckFailed(item=original_item)
                if op_type != "ConditionCheck":
                    table = self.get_table(table_name)
                    journal.before_write(table, *self.get_keys_value(table, key))
                if op_type == "Put":
                    self.put_item(table_name, op["Item"], condition_expression=condition,
                                  expression_attribute_names=names, expression_attribute_values=values)  # fmt: skip
                elif op_type == "Delete":
                    self.delete_item(table_name, key, condition_expression=condition,
                                     expression_attribute_names=names, expression_attribute_values=values)  # fmt: skip
                elif op_type == "Update":
                    self.update_item(table_name, key, update_expression=op["UpdateExpression"], condition_expression=condition,
                                     expression_attribute_names=names, expression_attribute_values=values)  # fmt: skip
                errors.append((None, None, None))
            except (MultipleTransactionsException, MockValidationException):
                raise
            except ConditionalCheckFailed as failed:
                errors.append(("ConditionalCheckFailed", str(failed.message), original_item))
            except Exception as failed:  # moto reports any other failure as the op's reason
                errors.append((type(failed).__name__, str(failed), original_item))
    except BaseException:
        journal.roll_back()
        raise
    if any(code is not None for code, _, _ in errors):
        journal.roll_back()
        raise TransactionCanceledException(errors)


class IdempotentParameterMismatch(DynamodbException):
    error_type = ERROR_TYPE_PREFIX + "IdempotentParameterMismatchException"

    def __init__(self) -> None:
        super().__init__(self.error_type, message="ClientRequestToken was already used with different TransactItems")


def _handler_transact_write_items(self: DynamoHandler) -> Any:
    """TransactWriteItems that honours ClientRequestToken, as DynamoDB does."""
    token = self.body.get("ClientRequestToken")
    if not isinstance(token, str):
        return _original(DynamoHandler, "transact_write_items")(self)
    tokens = _settings.client_tokens
    now = time.monotonic()
    while tokens and next(iter(tokens.values()))[1] < now - IDEMPOTENCY_WINDOW_S:
        tokens.popitem(last=False)
    digest = hashlib.sha256(json.dumps(self.body.get("TransactItems"), sort_keys=True).encode()).hexdigest()
    seen = tokens.get(token)
    if seen is not None:
        if seen[0] != digest:
            raise IdempotentParameterMismatch()
        return ActionResult({"ConsumedCapacity": [], "ItemCollectionMetrics": {}})
    answer = _original(DynamoHandler, "transact_write_items")(self)
    # Only applied transactions are remembered: a cancelled one wrote nothing, so running
    # it again on a retry is what DynamoDB does too.
    tokens[token] = (digest, now)
    return answer
