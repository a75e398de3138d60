"""Fix 5 of ``dynamodb_fixes``: stream records older than the retention are trimmed, at most
``MAX_SHARD_ITERATORS`` shard iterators are kept, and every shard gets an id of its own.
"""

from __future__ import annotations

import time
import uuid
from collections import OrderedDict
from datetime import UTC, datetime
from typing import Any

from moto.dynamodb.models.dynamo_type import Item
from moto.dynamodb.models.table import StreamShard, Table
from moto.dynamodbstreams import models as streams_models

from .dynamodb_fixes_common import _original, _settings

MAX_SHARD_ITERATORS = 10_000


# ==========================================================================================
# streams
# ==========================================================================================
def _shard_init(self: StreamShard, account_id: str, table: Table) -> None:
    """A shard id of its own, as in AWS: moto gives every shard of every table the same id,
    so a reader that keeps a mark per shard (queue counts) would take a table made again
    (a restart with persisted data) for the shard it already read."""
    _original(StreamShard, "__init__")(self, account_id, table)
    self.id = f"shardId-{time.time_ns() // 1_000_000:020d}-{uuid.uuid4().hex[:8]}"


def _shard_add(self: StreamShard, old: Item | None, new: Item | None) -> None:
    _original(StreamShard, "add")(self, old, new)
    _trim(self)


def _trim(shard: StreamShard) -> None:
    """Drop records older than the retention; sequence numbers stay as they were."""
    if not shard.items:
        return
    cutoff = datetime.now(UTC).timestamp() - _settings.stream_retention_s
    stale = 0
    for record in shard.items:
        created = record.record["dynamodb"]["ApproximateCreationDateTime"]
        if _timestamp(created) >= cutoff:
            break
        stale += 1
    if stale:
        del shard.items[:stale]
        shard.starting_sequence_number += stale


def _timestamp(value: Any) -> float:
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()
    return float(value)


def _shard_get(self: StreamShard, start: int, quantity: int) -> list[dict[str, Any]]:
    """Records from a sequence number; one already trimmed reads from the oldest kept."""
    offset = max(0, start - self.starting_sequence_number)
    return [record.to_json() for record in self.items[offset : offset + quantity]]


class _BoundedIterators(OrderedDict[str, Any]):
    """Shard iterators, the oldest forgotten past MAX_SHARD_ITERATORS."""

    def __setitem__(self, key: str, value: Any) -> None:
        super().__setitem__(key, value)
        while len(self) > MAX_SHARD_ITERATORS:
            self.popitem(last=False)


def _streams_backend_init(self: Any, *args: Any, **kwargs: Any) -> None:
    _original(streams_models.DynamoDBStreamsBackend, "__init__")(self, *args, **kwargs)
    self.shard_iterators = _BoundedIterators(self.shard_iterators)
