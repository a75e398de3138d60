"""Fix 3 of ``dynamodb_fixes``, the ordered index structures: each table keeps its items in
key order, and each index and partition keeps its entries in the order moto sorts them,
updated on every write (the Query and Scan that use them are ``dynamodb_fixes_queries``).
A TTL index lets the local TTL sweeper find expired items without a Scan.
"""

from __future__ import annotations

import bisect
import heapq
import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.dynamo_type import DynamoType, Item
from moto.dynamodb.models.table import Table

from .dynamodb_fixes_common import _original
from .dynamodb_fixes_compact import compact

ItemKey = tuple[DynamoType, DynamoType | None]


# ==========================================================================================
# ordered entries
# ==========================================================================================
class _Unorderable(Exception):
    """Key values this module cannot order (mixed types): the table goes back to moto's walk."""


_KEY_TYPES = frozenset({"S", "N", "B"})


def _sort_value(value: DynamoType) -> Any:
    """What moto compares key values by (DynamoType compares ``cast_value``); a str for S."""
    return value.cast_value


def _partition_key(value: DynamoType) -> tuple[str, Any]:
    """A snapshot of a partition's key value, hashed as DynamoType hashes it."""
    cast = value.cast_value
    return value.type, cast


class _Ordered:
    """Entries ``(sort values, item key)`` in ascending order of their sort values, which end
    with the item's table key and so are unique. Sort values are snapshots (str, Decimal):
    moto updates items in place."""

    __slots__ = ("entries", "name", "partition")

    def __init__(self, name: str = "", partition: tuple[str, Any] | None = None) -> None:
        self.entries: list[tuple[tuple[Any, ...], ItemKey]] = []
        # Where it is kept (an emptied partition is dropped): items placed in it point here.
        self.name = name
        self.partition = partition

    def add(self, values: tuple[Any, ...], key: ItemKey) -> None:
        try:
            bisect.insort(self.entries, (values, key), key=_values_of)
        except TypeError as error:
            raise _Unorderable(str(error)) from None

    def remove(self, values: tuple[Any, ...]) -> None:
        try:
            at = bisect.bisect_left(self.entries, values, key=_values_of)
        except TypeError as error:
            raise _Unorderable(str(error)) from None
        if at < len(self.entries) and self.entries[at][0] == values:
            del self.entries[at]

    def __len__(self) -> int:
        return len(self.entries)


def _values_of(entry: tuple[tuple[Any, ...], ItemKey]) -> tuple[Any, ...]:
    return entry[0]


def _first_value(entry: tuple[tuple[Any, ...], ItemKey]) -> Any:
    return entry[0][0]


@dataclass(frozen=True)
class _IndexShape:
    name: str
    hash_attr: str
    range_attr: str


def _index_shapes(table: Table) -> tuple[_IndexShape, ...] | None:
    """The indexes this module can order: one hash and one range key each (all of ours)."""
    shapes = []
    for index in [*table.global_indexes, *table.indexes]:
        hashes = [k["AttributeName"] for k in index.schema if k["KeyType"] == "HASH"]
        ranges = [k["AttributeName"] for k in index.schema if k["KeyType"] == "RANGE"]
        if len(hashes) != 1 or len(ranges) != 1:
            return None
        shapes.append(_IndexShape(index.name, hashes[0], ranges[0]))
    return tuple(shapes)


# Where an item will sit: (structure, partition, sort values). Structure "" is the whole
# table in key order, "#" its base-table partition, any other name an index's partition.
Place = tuple[str, tuple[str, Any] | None, tuple[Any, ...]]
# Where an item sits, as kept for each item: the structure itself and the sort values (the
# structure knows its name and partition; one partition key serves all its items).
Placed = tuple[tuple["_Ordered", tuple[Any, ...]], ...]


class _TableOrder:
    """Where each item of one table sits: in key order, in its base-table partition, in each
    index partition it belongs to, and in the TTL heap."""

    def __init__(self, table: Table, shapes: tuple[_IndexShape, ...]) -> None:
        self.items_dict = table.items
        self.shapes = shapes
        self.all = _Ordered()
        self.groups: dict[str, dict[tuple[str, Any], _Ordered]] = {"#": {}, **{s.name: {} for s in shapes}}
        self.placed: dict[ItemKey, Placed] = {}
        self.ttl_attr: str | None = None
        self.ttl_heap: list[tuple[int, int, ItemKey]] = []
        self.ttl_of: dict[ItemKey, int] = {}
        self._tiebreak = itertools.count()
        self.changes = 0  # moves on every write: a snapshot can skip an unchanged table

    # -- maintenance --------------------------------------------------------------------
    def _places(self, item: Item) -> list[Place]:
        table_values: tuple[Any, ...] = (_sort_value(item.hash_key),)
        if item.range_key is not None:
            table_values += (_sort_value(item.range_key),)
        places: list[Place] = [("", None, table_values)]
        if item.range_key is not None:
            places.append(("#", _partition_key(item.hash_key), (table_values[1],)))
        for shape in self.shapes:
            hash_value = item.attrs.get(shape.hash_attr)
            range_value = item.attrs.get(shape.range_attr)
            if hash_value is None or range_value is None:
                continue  # not in this (sparse) index
            if hash_value.type not in _KEY_TYPES or range_value.type not in _KEY_TYPES:
                raise _Unorderable(f"{shape.name} keyed by a {hash_value.type}/{range_value.type} value")
            places.append((shape.name, _partition_key(hash_value), (_sort_value(range_value), *table_values)))
        return places

    def _structure(self, name: str, partition: tuple[str, Any] | None, *, create: bool) -> _Ordered | None:
        if name == "":
            return self.all
        group = self.groups[name]
        assert partition is not None
        found = group.get(partition)
        if found is None and create:
            found = group[partition] = _Ordered(name, partition)
        return found

    def reindex(self, table: Table, key: ItemKey) -> None:
        self.changes += 1
        for structure, values in self.placed.pop(key, ()):
            structure.remove(values)
            if not len(structure) and structure.partition is not None:
                group = self.groups[structure.name]
                if group.get(structure.partition) is structure:
                    del group[structure.partition]
        item = _lookup(table, key)
        if item is None:
            if self.ttl_of.pop(key, None) is not None:
                self._compact_ttl()
            return
        stable_key: ItemKey = (item.hash_key, item.range_key)  # the item's own, never changed
        placed = []
        for name, partition, values in self._places(item):
            found = self._structure(name, partition, create=True)
            assert found is not None
            found.add(values, stable_key)
            placed.append((found, values))
        self.placed[stable_key] = tuple(placed)
        self._track_ttl(stable_key, item)

    def _track_ttl(self, key: ItemKey, item: Item) -> None:
        if self.ttl_attr is None:
            return
        seconds = _epoch(item.attrs.get(self.ttl_attr))
        if seconds is None:
            self.ttl_of.pop(key, None)
        elif self.ttl_of.get(key) != seconds:
            self.ttl_of[key] = seconds
            heapq.heappush(self.ttl_heap, (seconds, next(self._tiebreak), key))
        else:
            return
        self._compact_ttl()

    def _compact_ttl(self) -> None:
        """Drop the heap's entries of deleted items and of TTLs since changed. They are
        skipped lazily, but would otherwise be kept (with the keys they hold) until their
        time came: days, for a job's retention. Rebuilt when they outnumber the live ones,
        so the work stays proportional to the writes that made them stale."""
        if len(self.ttl_heap) > 2 * len(self.ttl_of) + 1024:
            self.ttl_heap = [entry for entry in self.ttl_heap if self.ttl_of.get(entry[2]) == entry[0]]
            heapq.heapify(self.ttl_heap)

    def rebuild_ttl(self, table: Table, attribute: str | None) -> None:
        self.ttl_attr = attribute
        self.ttl_heap, self.ttl_of = [], {}
        for key in self.placed:
            item = _lookup(table, key)
            if item is not None:
                self._track_ttl(key, item)

    def expired(self, now_s: int) -> list[ItemKey]:
        """Keys whose TTL is at or before ``now_s``; they stay findable until deleted."""
        found: dict[ItemKey, int] = {}
        while self.ttl_heap and self.ttl_heap[0][0] <= now_s:
            seconds, _, key = heapq.heappop(self.ttl_heap)
            if self.ttl_of.get(key) == seconds:
                found[key] = seconds
        for key, seconds in found.items():
            heapq.heappush(self.ttl_heap, (seconds, next(self._tiebreak), key))
        return list(found)


def _epoch(value: DynamoType | None) -> int | None:
    if value is None or value.type != "N":
        return None
    try:
        return int(float(value.value))
    except (TypeError, ValueError):
        return None


def _lookup(table: Table, key: ItemKey) -> Item | None:
    """The item at a key, without creating the empty partition moto's defaultdict would."""
    partition = dict.get(table.items, key[0])
    if partition is None:
        return None
    if isinstance(partition, Item):
        return partition
    found = partition.get(key[1])
    return found if isinstance(found, Item) else None


def _order(table: Table) -> _TableOrder | None:
    """The table's order, built on first use and again whenever moto swapped its items."""
    if table.__dict__.get("_local_unorderable"):
        return None
    shapes = _index_shapes(table)
    if shapes is None:
        return None
    order: _TableOrder | None = table.__dict__.get("_local_order")
    try:
        if order is None or order.items_dict is not table.items or order.shapes != shapes:
            order = _TableOrder(table, shapes)
            table.__dict__["_local_order"] = order
            for item in list(_items_of(table)):
                order.reindex(table, (item.hash_key, item.range_key))
        ttl_attr = table.ttl.get("AttributeName") if table.ttl.get("TimeToLiveStatus") == "ENABLED" else None
        if order.ttl_attr != ttl_attr:
            order.rebuild_ttl(table, ttl_attr)
    except _Unorderable:
        _give_up(table)
        return None
    return order


def _give_up(table: Table) -> None:
    table.__dict__.pop("_local_order", None)
    table.__dict__["_local_unorderable"] = True


def _items_of(table: Table) -> Iterator[Item]:
    for partition in dict.values(table.items):
        if isinstance(partition, Item):
            yield partition
        else:
            yield from partition.values()


def _reindex(table: Table, hash_key: DynamoType, range_key: DynamoType | None) -> None:
    item = _lookup(table, (hash_key, range_key))
    if item is not None:
        compact(item)
    order: _TableOrder | None = table.__dict__.get("_local_order")
    if order is not None and order.items_dict is table.items:
        try:
            order.reindex(table, (hash_key, range_key))
        except _Unorderable:
            _give_up(table)
    if range_key is not None:
        partition = dict.get(table.items, hash_key)
        if partition is not None and not isinstance(partition, Item) and not partition:
            del table.items[hash_key]  # an emptied partition: moto would keep it forever


# ==========================================================================================
# writes: keep the order up to date
# ==========================================================================================
def _table_put_item(self: Table, item_attrs: dict[str, Any], *args: Any, **kwargs: Any) -> Item:
    try:
        return _original(Table, "put_item")(self, item_attrs, *args, **kwargs)  # type: ignore[no-any-return]
    finally:
        _reindex_attrs(self, item_attrs)


def _reindex_attrs(table: Table, attrs: dict[str, Any]) -> None:
    try:
        hash_key = DynamoType(attrs[table.hash_key_attr])
        range_key = DynamoType(attrs[table.range_key_attr]) if table.range_key_attr else None
    except (KeyError, TypeError, IndexError):
        return  # refused before it touched the table
    _reindex(table, hash_key, range_key)


def _table_delete_item(self: Table, hash_key: DynamoType, range_key: DynamoType | None) -> Item | None:
    try:
        return _original(Table, "delete_item")(self, hash_key, range_key)  # type: ignore[no-any-return]
    finally:
        _reindex(self, hash_key, range_key)


def _table_get_item(self: Table, hash_key: DynamoType, range_key: DynamoType | None = None, *args: Any, **kwargs: Any) -> Any:
    result = _original(Table, "get_item")(self, hash_key, range_key, *args, **kwargs)
    if range_key is not None:
        partition = dict.get(self.items, hash_key)
        if partition is not None and not isinstance(partition, Item) and not partition:
            del self.items[hash_key]  # moto's defaultdict made it while looking
    return result


def _backend_update_item(self: DynamoDBBackend, table_name: str, key: dict[str, Any], *args: Any, **kwargs: Any) -> Item:
    """Updates change items in place: re-place the item afterwards, whatever happened."""
    try:
        return _original(DynamoDBBackend, "update_item")(self, table_name, key, *args, **kwargs)  # type: ignore[no-any-return]
    finally:
        table = self.tables.get(table_name)
        if table is not None:
            _reindex_attrs(table, key)
