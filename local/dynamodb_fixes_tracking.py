"""Fix 1 of ``dynamodb_fixes``: DynamoDB's and DynamoDB Streams' models are not tracked.

moto's ``BaseModel`` appends each new instance to a class-level list (``instances_tracked``,
which only feeds moto's dashboard), so every item version, query copy and stream record
would be kept forever.
"""

from __future__ import annotations

from typing import Any

from moto.dynamodb.models.dynamo_type import Item
from moto.dynamodb.models.table import (
    GlobalSecondaryIndex,
    LocalSecondaryIndex,
    SecondaryIndex,
    StreamRecord,
    StreamShard,
    Table,
)


def _untracked_new(cls: type, *args: Any, **kwargs: Any) -> Any:
    return object.__new__(cls)


_UNTRACKED = (Item, StreamRecord, StreamShard, Table, SecondaryIndex, GlobalSecondaryIndex, LocalSecondaryIndex)
