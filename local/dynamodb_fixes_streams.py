"""Fix 5 of ``dynamodb_fixes``: stream records older than the retention are trimmed, their
images kept as JSON text, at most ``MAX_SHARD_ITERATORS`` shard iterators are kept, each in a
few hundred bytes, and every shard gets an id of its own.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
import uuid
from collections import OrderedDict
from collections.abc import Iterator, MutableMapping
from datetime import UTC, datetime
from typing import Any

from moto.dynamodb.models.dynamo_type import Item
from moto.dynamodb.models.table import StreamRecord, StreamShard, Table
from moto.dynamodbstreams import models as streams_models
from moto.dynamodbstreams.models import ShardIterator

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
    if self.items:
        _pack(self.items[-1])
    _trim(self)


class _Image(str):
    """A stream record's image (or keys), kept as its JSON text."""

    __slots__ = ()


_IMAGES = ("Keys", "NewImage", "OldImage")


def _pack(record: StreamRecord) -> None:
    """Keep the record's images as JSON text: moto builds them as a dict per attribute
    ({"S": value}), 10.7 KB the record of a new job (twice that with an old image too); a
    minute of records, 20 to 40 MB of small objects among the table's, whose arenas they keep
    from being returned once freed (issue 11). As text, 2.2 KB. Read back, they are the same
    dicts (``_record_to_json``)."""
    dynamodb = record.record["dynamodb"]
    for name in _IMAGES:
        value = dynamodb.get(name)
        if type(value) is dict:
            # A value JSON cannot hold (bytes) leaves the image as moto made it.
            with contextlib.suppress(TypeError, ValueError):
                dynamodb[name] = _Image(json.dumps(value))


def _record_to_json(self: StreamRecord) -> dict[str, Any]:
    """The record as moto built it: its images as dicts again, in the same order."""
    dynamodb = self.record["dynamodb"]
    if not any(type(dynamodb.get(name)) is _Image for name in _IMAGES):
        return self.record
    unpacked = {k: json.loads(v) if type(v) is _Image else v for k, v in dynamodb.items()}
    return {**self.record, "dynamodb": unpacked}


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
    return [_record_to_json(record) for record in self.items[offset : offset + quantity]]


class _CompactIterators(MutableMapping[str, ShardIterator]):
    """Shard iterators by ARN, the oldest forgotten past MAX_SHARD_ITERATORS, each kept as
    what reading from it needs: (shard, type, sequence number) under a 16-byte digest of its
    ARN. moto's iterator is 1.7 KB (a 632-character random id, an ARN of 750 characters
    as its key, an object); kept like this, about 250 bytes. The local pollers take a fresh
    one for every read, so the kept iterators were up to 17 MB of the server's memory
    (issue 11). An iterator read back is moto's, with the same id, shard and position."""

    def __init__(self, backend: Any) -> None:
        self.backend = backend
        self.kept: OrderedDict[bytes, tuple[StreamShard, str, int]] = OrderedDict()

    @staticmethod
    def _digest(arn: str) -> bytes:
        return hashlib.blake2b(arn.encode(), digest_size=16).digest()

    def __setitem__(self, arn: str, iterator: ShardIterator) -> None:
        self.kept[self._digest(arn)] = (iterator.stream_shard, iterator.shard_iterator_type, iterator.sequence_number)
        while len(self.kept) > MAX_SHARD_ITERATORS:
            self.kept.popitem(last=False)

    def __getitem__(self, arn: str) -> ShardIterator:
        found = self.kept.get(self._digest(arn))
        if found is None:
            raise KeyError(arn)  # what moto's dict raised
        iterator: ShardIterator = object.__new__(ShardIterator)
        iterator.id = arn.rsplit("|", 1)[-1]
        iterator.streams_backend = self.backend
        iterator.stream_shard, iterator.shard_iterator_type, iterator.sequence_number = found
        return iterator

    def __delitem__(self, arn: str) -> None:
        try:
            del self.kept[self._digest(arn)]
        except KeyError:
            raise KeyError(arn) from None

    def __iter__(self) -> Iterator[str]:
        raise TypeError("shard iterators are kept by a digest of their ARN: they cannot be listed")

    def __len__(self) -> int:
        return len(self.kept)


def _streams_backend_init(self: Any, *args: Any, **kwargs: Any) -> None:
    _original(streams_models.DynamoDBStreamsBackend, "__init__")(self, *args, **kwargs)
    self.shard_iterators = _CompactIterators(self)
