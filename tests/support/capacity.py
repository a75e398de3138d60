"""DynamoDB read and write units of each request, by DynamoDB's documented rules, with the
key schema and index projections read from template.yaml itself (so the model cannot drift
from the tables that are deployed).

The rules (DynamoDB developer guide, "read/write capacity units" and "GSI writes"):
- an item's size is the sum of its attribute names' and values' sizes;
- a write costs one unit per started KB of the larger of the item before and after; a
  condition that fails costs the same (the item is read and judged); in a transaction every
  item costs twice;
- each global secondary index whose projection of the item changes is written too: one
  unit per started KB of the projected item; a changed index key is a delete and a put;
- a strongly consistent read costs one unit per started 4 KB (half for an eventually
  consistent one), a Query per started 4 KB of all the items it read together, a
  BatchGetItem per item; in a transaction twice.

A meter registers botocore hooks on a client and reads the items before and after each write
through a second client of its own (so the requests it makes are never counted).
"""

from __future__ import annotations

import base64
import math
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

KB = 1024
READ_UNIT = 4 * KB
WRITE_OPS = {"PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems", "BatchWriteItem"}


def value_size(value: dict[str, Any]) -> int:
    """Bytes DynamoDB counts for one typed value (DynamoDB JSON)."""
    (kind, raw), = value.items()  # fmt: skip
    if kind == "S":
        return len(str(raw).encode())
    if kind == "N":
        digits = Decimal(str(raw)).normalize().as_tuple().digits
        return math.ceil(len(digits) / 2) + 1
    if kind == "B":
        return len(raw) if isinstance(raw, (bytes, bytearray)) else len(base64.b64decode(raw))
    if kind in ("BOOL", "NULL"):
        return 1
    if kind in ("SS", "NS", "BS"):
        return sum(value_size({kind[0]: member}) for member in raw)
    if kind == "L":
        return 3 + sum(1 + value_size(member) for member in raw)
    if kind == "M":
        return 3 + sum(1 + len(name.encode()) + value_size(member) for name, member in raw.items())
    raise ValueError(f"unknown DynamoDB type {kind}")


def item_size(item: dict[str, Any] | None) -> int:
    if not item:
        return 0
    return sum(len(name.encode()) + value_size(value) for name, value in item.items())


def write_units(size: int) -> int:
    return max(1, math.ceil(size / KB))


@dataclass(frozen=True)
class Index:
    """A global secondary index as the template declares it."""

    name: str
    keys: tuple[str, ...]
    projected: frozenset[str] | None  # None: ALL

    def project(self, item: dict[str, Any] | None, table_keys: tuple[str, ...]) -> dict[str, Any] | None:
        if not item or any(key not in item for key in self.keys):
            return None  # sparse: the item is not in this index
        if self.projected is None:
            return item
        kept = self.projected | set(self.keys) | set(table_keys)
        return {name: value for name, value in item.items() if name in kept}


@dataclass(frozen=True)
class TableShape:
    keys: tuple[str, ...]
    indexes: tuple[Index, ...]

    @classmethod
    def from_template(cls, properties: dict[str, Any]) -> TableShape:
        indexes = []
        for gsi in properties.get("GlobalSecondaryIndexes", []):
            projection = gsi["Projection"]
            kind = projection["ProjectionType"]
            projected = None if kind == "ALL" else frozenset(projection.get("NonKeyAttributes", []))
            indexes.append(Index(gsi["IndexName"], tuple(k["AttributeName"] for k in gsi["KeySchema"]), projected))
        return cls(tuple(k["AttributeName"] for k in properties["KeySchema"]), tuple(indexes))

    def index_units(self, before: dict[str, Any] | None, after: dict[str, Any] | None) -> dict[str, int]:
        """Write units of each index a change of one item costs."""
        units: dict[str, int] = {}
        for index, _, used in self.index_writes(before, after):
            units[index] = units.get(index, 0) + used
        return units

    def index_writes(self, before: dict[str, Any] | None, after: dict[str, Any] | None) -> list[tuple[str, str, int]]:
        """(index, partition key value, write units) of each index write a change of one item
        makes: what one index partition takes, for the partition budget (bench/hot_queue.py)."""
        writes: list[tuple[str, str, int]] = []
        for index in self.indexes:
            old, new = index.project(before, self.keys), index.project(after, self.keys)
            if (old is None and new is None) or old == new:
                continue
            if old is not None and new is not None and all(old[key] == new[key] for key in index.keys):
                writes.append((index.name, _partition(new, index), write_units(max(item_size(old), item_size(new)))))
                continue
            # A new, removed or moved entry: a delete of the old one and a put of the new one.
            writes += [(index.name, _partition(entry, index), write_units(item_size(entry))) for entry in (old, new) if entry]
        return writes


def _partition(entry: dict[str, Any], index: Index) -> str:
    (value,) = entry[index.keys[0]].values()
    return str(value)


@dataclass
class Units:
    """Units consumed, by table and index (`table` or `table/index`), read and write."""

    writes: Counter[str] = field(default_factory=Counter)
    reads: Counter[str] = field(default_factory=Counter)  # by request kind
    requests: Counter[str] = field(default_factory=Counter)
    # Write units by (table/index, partition key value): what each index partition takes.
    partitions: Counter[tuple[str, str]] = field(default_factory=Counter)
    # Changes of job items: the stream records the fan-out and the queue counts read.
    job_records: int = 0

    @property
    def write_units(self) -> float:
        return sum(self.writes.values())

    @property
    def read_units(self) -> float:
        return sum(self.reads.values())

    def add(self, other: Units) -> None:
        self.writes.update(other.writes)
        self.reads.update(other.reads)
        self.requests.update(other.requests)
        self.partitions.update(other.partitions)
        self.job_records += other.job_records


@dataclass
class CapacityMeter:
    """Units of every request a client makes, from the items before and after each write."""

    reader: Any  # a client of its own, on the same tables: its reads are not metered
    shapes: dict[str, TableShape]  # physical table name -> shape
    units: Units = field(default_factory=Units)
    _before: list[tuple[str, dict[str, Any], dict[str, Any] | None, int]] = field(default_factory=list)
    _consistent: bool = False

    def attach(self, client: Any) -> CapacityMeter:
        client.meta.events.register("before-parameter-build.dynamodb", self._before_call)
        client.meta.events.register("after-call.dynamodb", self._after_call)
        return self

    def reset(self) -> Units:
        taken, self.units = self.units, Units()
        return taken

    def _get(self, table: str, key: dict[str, Any]) -> dict[str, Any] | None:
        found: dict[str, Any] | None = self.reader.get_item(TableName=table, Key=key, ConsistentRead=True).get("Item")
        return found

    def _key(self, table: str, item: dict[str, Any]) -> dict[str, Any]:
        return {name: item[name] for name in self.shapes[table].keys}

    def _targets(self, name: str, params: dict[str, Any]) -> list[tuple[str, dict[str, Any], int]]:
        """(table, key, cost factor) of each item a write request touches."""
        if name == "PutItem":
            return [(params["TableName"], self._key(params["TableName"], params["Item"]), 1)]
        if name in ("UpdateItem", "DeleteItem"):
            return [(params["TableName"], params["Key"], 1)]
        if name == "BatchWriteItem":
            return [
                (table, self._key(table, request["PutRequest"]["Item"]) if "PutRequest" in request
                 else request["DeleteRequest"]["Key"], 1)
                for table, requests in params["RequestItems"].items() for request in requests
            ]  # fmt: skip
        targets = []
        for entry in params["TransactItems"]:
            ((kind, body),) = entry.items()
            key = self._key(body["TableName"], body["Item"]) if kind == "Put" else body["Key"]
            targets.append((body["TableName"], key, 2))
        return targets

    def _before_call(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        self._before = []
        self._consistent = bool(params.get("ConsistentRead")) or any(
            bool(request.get("ConsistentRead")) for request in (params.get("RequestItems") or {}).values()
            if isinstance(request, dict)
        )  # fmt: skip
        if model.name in WRITE_OPS:
            self._before = [(table, key, self._get(table, key), factor) for table, key, factor in
                            self._targets(model.name, params)]  # fmt: skip

    def _after_call(self, model: Any, parsed: dict[str, Any], **_: Any) -> None:
        name = model.name
        self.units.requests[name] += 1
        if name in WRITE_OPS:
            failed = "Error" in parsed
            for table, key, before, factor in self._before:
                after = before if failed else self._get(table, key)
                self.units.writes[table] += factor * write_units(max(item_size(before), item_size(after)))
                if not failed and after != before and key.get("SK") == {"S": "JOB"}:
                    self.units.job_records += 1
                if not failed:
                    for index, partition, units in self.shapes[table].index_writes(before, after):
                        self.units.writes[f"{table}/{index}"] += units
                        self.units.partitions[(f"{table}/{index}", partition)] += units
            self._before = []
            return
        if "Error" in parsed:
            return
        self._count_reads(name, parsed)

    def _count_reads(self, name: str, parsed: dict[str, Any]) -> None:
        # A strongly consistent read costs a unit per started 4 KB, an eventually consistent
        # one half; a request that found nothing still costs its minimum.
        factor = 1.0 if self._consistent else 0.5
        if name == "GetItem":
            self.units.reads["GetItem"] += factor * math.ceil(max(1, item_size(parsed.get("Item"))) / READ_UNIT)
        elif name in ("Query", "Scan"):
            items = parsed.get("Items", [])
            scanned = int(parsed.get("ScannedCount", len(items)))
            # Items a filter dropped are billed too; their sizes are not in the answer.
            total = sum(item_size(item) for item in items) + (scanned - len(items)) * item_size_mean(items)
            self.units.reads[name] += factor * max(1, math.ceil(total / READ_UNIT))
        elif name == "BatchGetItem":
            for items in parsed.get("Responses", {}).values():
                self.units.reads[name] += factor * sum(math.ceil(max(1, item_size(i)) / READ_UNIT) for i in items)


def item_size_mean(items: list[dict[str, Any]]) -> int:
    return sum(item_size(item) for item in items) // len(items) if items else KB
