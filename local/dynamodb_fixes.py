"""Fixes to moto's DynamoDB for a server that runs for hours: memory and time flat.

moto is built for short tests. As the local cloud's embedded DynamoDB under real use it
grows without bound and slows down with the table (measured with moto 5.2.5, DESIGN.md):

1. Every model object ever created stays alive: moto's ``BaseModel`` appends each new
   instance to a class-level list (``instances_tracked``), so every item version, query
   copy and stream record is kept forever. Here DynamoDB's and DynamoDB Streams' models
   are not tracked (the list only feeds moto's dashboard).
2. ``TransactWriteItems`` deep-copies every table it touches before it starts, to roll
   back on failure; with (1) the copies are never freed (+14 MB a transaction at 2,000
   items). Here a transaction keeps a journal of the items it touches instead and, on
   failure, puts exactly those back and drops the stream records it added: a cancelled
   transaction leaves no trace, as in DynamoDB. Its answers are moto's own.
3. A Query walks and sorts the whole table (255 ms at 20,000 items); a Scan page walks it
   from the start. Here each table keeps its items in key order, and each index and
   partition keeps its entries in the order moto sorts them, updated on every write; a
   Query hands moto only the entries its key condition and start key select (plus the one
   that tells moto a next page exists), so moto computes the very same answer from a
   handful of items. A TTL index lets the local TTL sweeper find expired items without a
   Scan.
4. Answers are slow to write: moto's model-driven serializer walks every attribute of every
   item against the API's shapes, and projecting an item onto an index converts it to
   Python values and back. Here the data-plane answers (items, pages, transactions), which
   moto already builds as DynamoDB JSON, are written with ``json.dumps``, and a projection
   copies the attributes it keeps. Expressions are tokenized and parsed once per distinct
   text (moto parses each update expression twice and each condition twice per request):
   the parsed forms are immutable or copied before use, so sharing them changes nothing.
5. A table's stream keeps every record forever, and every shard iterator handed out is
   kept forever (the local pollers take two every 50 ms). Here records older than
   ``stream_retention_s`` are trimmed (DynamoDB keeps 24 h; the local pollers read within
   milliseconds) and at most ``MAX_SHARD_ITERATORS`` iterators are kept (DynamoDB expires
   them after 15 minutes).

``install()`` applies them (idempotent); ``uninstall()`` restores moto as it was (the
tests compare both on the same requests). Everything here runs under the embedded
server's lock, one request at a time.
"""

from __future__ import annotations

import base64
import bisect
import copy
import heapq
import itertools
import json
import threading
import time
import uuid
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

from moto.dynamodb import models as dynamodb_models
from moto.dynamodb.comparisons import ConditionExpressionParser, get_filter_expression
from moto.dynamodb.exceptions import (
    ConditionalCheckFailed,
    MockValidationException,
    MultipleTransactionsException,
    TooManyTransactionsException,
    TransactionCanceledException,
    TransactWriteSingleOpException,
)
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.dynamo_type import DynamoType, Item, LimitedSizeDict
from moto.dynamodb.models.table import (
    GlobalSecondaryIndex,
    LocalSecondaryIndex,
    SecondaryIndex,
    StreamRecord,
    StreamShard,
    Table,
)
from moto.dynamodb.parsing.expressions import UpdateExpressionParser  # type: ignore[attr-defined]
from moto.dynamodb.responses import DynamoResult
from moto.dynamodbstreams import models as streams_models

RESULT_SIZE_LIMIT = 1_000_000  # moto's (and DynamoDB's) 1 MB page
MAX_ITEM_BYTES = 410_000  # moto refuses items over 405,000 bytes; a margin above it
MAX_SHARD_ITERATORS = 10_000
DEFAULT_STREAM_RETENTION_S = 60.0

ItemKey = tuple[DynamoType, DynamoType | None]


@dataclass
class _Settings:
    stream_retention_s: float = DEFAULT_STREAM_RETENTION_S
    installed: bool = False
    # (class, name) -> (what the class itself held, or None when it inherited it; what a
    # caller reached through the class before the patch)
    originals: dict[tuple[Any, str], tuple[Any, Any]] = field(default_factory=dict)


_settings = _Settings()


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

    __slots__ = ("entries",)

    def __init__(self) -> None:
        self.entries: list[tuple[tuple[Any, ...], ItemKey]] = []

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


# Where an item sits: (structure, partition, sort values). Structure "" is the whole table in
# key order, "#" its base-table partition, any other name an index's partition.
Place = tuple[str, tuple[str, Any] | None, tuple[Any, ...]]


class _TableOrder:
    """Where each item of one table sits: in key order, in its base-table partition, in each
    index partition it belongs to, and in the TTL heap."""

    def __init__(self, table: Table, shapes: tuple[_IndexShape, ...]) -> None:
        self.items_dict = table.items
        self.shapes = shapes
        self.all = _Ordered()
        self.groups: dict[str, dict[tuple[str, Any], _Ordered]] = {"#": {}, **{s.name: {} for s in shapes}}
        self.placed: dict[ItemKey, list[Place]] = {}
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
            found = group[partition] = _Ordered()
        return found

    def reindex(self, table: Table, key: ItemKey) -> None:
        self.changes += 1
        for name, partition, values in self.placed.pop(key, []):
            structure = self._structure(name, partition, create=False)
            if structure is not None:
                structure.remove(values)
                if not len(structure) and partition is not None:
                    del self.groups[name][partition]
        item = _lookup(table, key)
        if item is None:
            self.ttl_of.pop(key, None)
            return
        stable_key: ItemKey = (item.hash_key, item.range_key)  # the item's own, never changed
        places = self._places(item)
        for name, partition, values in places:
            structure = self._structure(name, partition, create=True)
            assert structure is not None
            structure.add(values, stable_key)
        self.placed[stable_key] = places
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
# reads: moto computes the answer from the entries a request selects
# ==========================================================================================
_scope = threading.local()


def _all_items(self: Table) -> list[Item]:
    scoped = getattr(_scope, "stack", None)
    if scoped and scoped[-1][0] is self:
        return list(scoped[-1][1])
    order = _order(self)
    if order is None:
        return _original(Table, "all_items")(self)  # type: ignore[no-any-return]
    return [item for _, key in order.all.entries if (item := _lookup(self, key)) is not None]


@contextmanager
def _scoped(table: Table, candidates: list[Item]) -> Iterator[None]:
    stack = getattr(_scope, "stack", None)
    if stack is None:
        stack = _scope.stack = []
    stack.append((table, candidates))
    try:
        yield
    finally:
        stack.pop()


def _range_bounds(comparison: str | None, values: list[DynamoType]) -> tuple[Any, Any]:
    """Lower and upper bounds (sort values) of the range key a key condition admits; None: open."""
    operator = (comparison or "").upper()
    if operator in ("=", "EQ"):
        return _sort_value(values[0]), _sort_value(values[0])
    if operator in ("<", "<=", "LT", "LE"):
        return None, _sort_value(values[0])
    if operator in (">", ">=", "GT", "GE"):
        return _sort_value(values[0]), None
    if operator == "BETWEEN":
        return _sort_value(values[0]), _sort_value(values[1])
    if operator == "BEGINS_WITH":
        return _sort_value(values[0]), None
    return None, None


def _select(
    table: Table,
    entries: list[tuple[tuple[Any, ...], ItemKey]],
    *,
    range_of: Callable[[Item], DynamoType | None],
    comparison: str | None,
    values: list[DynamoType],
    start: tuple[Any, ...] | None,
    forward: bool,
    limit: int | None,
) -> list[Item]:
    """The items moto's Query loop would look at before it stops: those after the start key
    whose range key matches (a contiguous run of the order), up to ``limit``, then the one
    item at which moto stops and reports a next page, if any."""
    low, high = _range_bounds(comparison, values)
    if forward:
        at = bisect.bisect_right(entries, start, key=_values_of) if start is not None else 0
        if low is not None:
            at = max(at, bisect.bisect_left(entries, low, key=_first_value))
        positions: Iterable[int] = range(at, len(entries))
    else:
        at = bisect.bisect_left(entries, start, key=_values_of) if start is not None else len(entries)
        if high is not None:
            at = min(at, bisect.bisect_right(entries, high, key=_first_value))
        positions = range(at - 1, -1, -1)
    matches: list[Item] = []
    size = 0
    for position in positions:
        item = _lookup(table, entries[position][1])
        if item is None:
            continue
        item_size = item.size()
        if (limit is not None and len(matches) >= limit) or size + item_size > RESULT_SIZE_LIMIT:
            return [*matches, item]  # moto stops at this one and reports a next page
        value = range_of(item)
        if comparison is None or (value is not None and value.compare(comparison, values)):
            matches.append(item)
            size += item_size
        elif matches and size + MAX_ITEM_BYTES <= RESULT_SIZE_LIMIT:
            break  # past the run, and no later item can stop moto's loop early
    return matches


def _narrowed(name: str, candidates: Callable[..., list[Item] | None]) -> Callable[..., Any]:
    """moto's Table.<name>, handed only the items ``candidates`` selects (None: all of them)."""

    def run(self: Table, *args: Any, **kwargs: Any) -> Any:
        original = _original(Table, name)
        found = candidates(self, *args, **kwargs)
        if found is None:
            return original(self, *args, **kwargs)
        with _scoped(self, found):
            return original(self, *args, **kwargs)

    return run


def _query_candidates(
    table: Table,
    hash_key: DynamoType | None,
    range_comparison: str | None,
    range_objs: list[DynamoType],
    limit: int | None,
    exclusive_start_key: dict[str, Any] | None,
    scan_index_forward: bool,
    projection_expressions: Any,
    index_name: str | None = None,
    consistent_read: bool = False,
    filter_expression: Any = None,
    hash_key_conditions: list[tuple[str, DynamoType]] | None = None,
    range_key_conditions: list[tuple[str, str, list[DynamoType]]] | None = None,
    **filter_kwargs: Any,
) -> list[Item] | None:
    """The items to hand moto's Query, or None to let it walk the table as it would."""
    if filter_kwargs or len(range_key_conditions or []) > 1:
        return None
    order = _order(table)
    if order is None:
        return None
    try:
        if index_name is None:
            return _table_query(table, order, hash_key, range_comparison, range_objs, limit, exclusive_start_key,
                                scan_index_forward, hash_key_conditions, range_key_conditions)  # fmt: skip
        return _index_query(table, order, index_name, range_comparison, range_objs, limit, exclusive_start_key,
                            scan_index_forward, consistent_read, hash_key_conditions, range_key_conditions)  # fmt: skip
    except (KeyError, TypeError, AttributeError, IndexError, ValueError, ArithmeticError):
        return None  # a request shape this does not cover: moto's own path, and its errors


def _table_query(
    table: Table,
    order: _TableOrder,
    hash_key: DynamoType | None,
    comparison: str | None,
    values: list[DynamoType],
    limit: int | None,
    start_key: dict[str, Any] | None,
    forward: bool,
    hash_conditions: list[tuple[str, DynamoType]] | None,
    range_conditions: list[tuple[str, str, list[DynamoType]]] | None,
) -> list[Item] | None:
    if hash_key is None or table.range_key_attr is None or len(hash_conditions or []) > 1:
        return None
    if range_conditions and range_conditions[0][0] != table.range_key_attr:
        return None
    partition = order.groups["#"].get(_partition_key(hash_key))
    start = None
    if start_key is not None:
        if DynamoType(start_key[table.hash_key_attr]) != hash_key:
            return None
        start = (_sort_value(DynamoType(start_key[table.range_key_attr])),)
    if partition is None:
        return []
    return _select(table, partition.entries, range_of=lambda item: item.range_key, comparison=comparison,
                   values=values, start=start, forward=forward, limit=limit)  # fmt: skip


def _index_query(
    table: Table,
    order: _TableOrder,
    index_name: str,
    comparison: str | None,
    values: list[DynamoType],
    limit: int | None,
    start_key: dict[str, Any] | None,
    forward: bool,
    consistent_read: bool,
    hash_conditions: list[tuple[str, DynamoType]] | None,
    range_conditions: list[tuple[str, str, list[DynamoType]]] | None,
) -> list[Item] | None:
    shape = next((s for s in order.shapes if s.name == index_name), None)
    if shape is None or consistent_read or not hash_conditions or len(hash_conditions) != 1:
        return None
    attribute, value = hash_conditions[0]
    if attribute != shape.hash_attr or (range_conditions and range_conditions[0][0] != shape.range_attr):
        return None
    start = None
    if start_key is not None:
        start_hash = DynamoType(start_key[shape.hash_attr])
        if start_hash != value:
            return None
        table_values = [_sort_value(DynamoType(start_key[table.hash_key_attr]))]
        if table.range_key_attr is not None:
            table_values.append(_sort_value(DynamoType(start_key[table.range_key_attr])))
        start = (_sort_value(DynamoType(start_key[shape.range_attr])), *table_values)
    partition = order.groups[index_name].get(_partition_key(value))
    if partition is None:
        return []
    return _select(table, partition.entries, range_of=lambda item: item.attrs.get(shape.range_attr),
                   comparison=comparison, values=values, start=start, forward=forward, limit=limit)  # fmt: skip


def _scan_candidates(
    table: Table,
    filters: dict[str, Any],
    limit: int | None,
    exclusive_start_key: dict[str, Any] | None,
    filter_expression: Any = None,
    index_name: str | None = None,
    consistent_read: bool = False,
    projection_expression: Any = None,
    segments: tuple[Any, Any] = (None, None),
) -> list[Item] | None:
    if filters or index_name is not None or tuple(segments) != (None, None):
        return None
    order = _order(table)
    if order is None:
        return None
    entries = order.all.entries
    at = 0
    if exclusive_start_key is not None:
        try:
            start = [_sort_value(DynamoType(exclusive_start_key[table.hash_key_attr]))]
            if table.range_key_attr is not None:
                start.append(_sort_value(DynamoType(exclusive_start_key[table.range_key_attr])))
            at = bisect.bisect_right(entries, tuple(start), key=_values_of)
        except (KeyError, TypeError, IndexError, ValueError, ArithmeticError):
            return None
    picked: list[Item] = []
    size = 0
    for _, key in itertools.islice(entries, at, None):
        item = _lookup(table, key)
        if item is None:
            continue
        picked.append(item)
        item_size = item.size()
        if (limit is not None and len(picked) > limit) or size + item_size > RESULT_SIZE_LIMIT:
            break  # moto stops at this one and reports a next page
        size += item_size
    return picked


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


# ==========================================================================================
# answers
# ==========================================================================================
# Actions whose answers are DynamoDB JSON already (items, keys, counts): written as they are.
_PLAIN_ANSWERS = frozenset(
    {"GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query", "Scan", "BatchGetItem", "BatchWriteItem",
     "TransactGetItems", "TransactWriteItems"}
)  # fmt: skip


def _binary(value: Any) -> str:
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(value).decode()  # B and BS values, as the serializer writes them
    raise TypeError(f"{type(value).__name__} is not JSON")


def _execute_result(self: DynamoResult, context: Any) -> Any:
    result = self.result
    if context.operation_model.name in _PLAIN_ANSWERS and isinstance(result, dict):
        try:
            body = json.dumps({k: v for k, v in result.items() if v is not None}, default=_binary)
        except (TypeError, ValueError):
            pass
        else:
            return 200, {"Content-Type": "application/x-amz-json-1.0"}, body
    return _original(DynamoResult, "execute_result")(self, context)


def _project(self: SecondaryIndex, item: Item) -> Item:
    """The item as the index holds it: its keys, the index's keys and what it projects."""
    projection_type = (self.projection or {}).get("ProjectionType")
    if projection_type not in ("KEYS_ONLY", "INCLUDE"):
        return _original(SecondaryIndex, "project")(self, item)  # type: ignore[no-any-return]
    kept = [*self.table_key_attrs, *(k["AttributeName"] for k in self.schema)]
    if projection_type == "INCLUDE":
        kept += self.projection.get("NonKeyAttributes", [])
    projected = cast(Item, Item.__new__(Item))
    projected.hash_key, projected.range_key = item.hash_key, item.range_key
    projected.attrs = LimitedSizeDict()
    for name in kept:  # in moto's order: keys first, then the included attributes
        value = item.attrs.get(name)
        if value is not None and name not in projected.attrs:
            dict.__setitem__(projected.attrs, name, copy.deepcopy(value))
    return projected


# Parsed expressions by their text; cleared when full (a server sees a few dozen distinct ones).
_PARSED_MAX = 4096
_lexed_conditions: dict[str, tuple[Any, ...]] = {}
_parsed_updates: dict[str, Any] = {}


def _lex_condition_expression(self: ConditionExpressionParser) -> deque[Any]:
    """The condition's tokens (immutable named tuples), lexed once per text."""
    text = self.condition_expression or ""
    tokens = _lexed_conditions.get(text)
    if tokens is None:
        tokens = tuple(_original(ConditionExpressionParser, "_lex_condition_expression")(self))
        if len(_lexed_conditions) >= _PARSED_MAX:
            _lexed_conditions.clear()
        _lexed_conditions[text] = tokens
    return deque(tokens)


def _make_update_expression(cls: type[UpdateExpressionParser], expression: str) -> Any:
    """The update expression's syntax tree, parsed once per text. moto's users of it only
    read it, or deep-copy it first (the validator), so one tree serves every request."""
    tree = _parsed_updates.get(expression)
    if tree is None:
        tree = _original(UpdateExpressionParser, "make").__func__(cls, expression)
        if len(_parsed_updates) >= _PARSED_MAX:
            _parsed_updates.clear()
        _parsed_updates[expression] = tree
    return tree


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


# ==========================================================================================
# install / uninstall
# ==========================================================================================
def _untracked_new(cls: type, *args: Any, **kwargs: Any) -> Any:
    return object.__new__(cls)


_UNTRACKED = (Item, StreamRecord, StreamShard, Table, SecondaryIndex, GlobalSecondaryIndex, LocalSecondaryIndex)

_PATCHES: list[tuple[Any, str, Any]] = [
    (Table, "all_items", _all_items),
    # A Query, and a Scan page of the table itself, start at their start key, not the first item.
    (Table, "query", _narrowed("query", _query_candidates)),
    (Table, "scan", _narrowed("scan", _scan_candidates)),
    (Table, "put_item", _table_put_item),
    (Table, "delete_item", _table_delete_item),
    (Table, "get_item", _table_get_item),
    (DynamoDBBackend, "update_item", _backend_update_item),
    (DynamoDBBackend, "transact_write_items", _transact_write_items),
    (DynamoResult, "execute_result", _execute_result),
    (SecondaryIndex, "project", _project),
    (ConditionExpressionParser, "_lex_condition_expression", _lex_condition_expression),
    (UpdateExpressionParser, "make", classmethod(_make_update_expression)),
    (StreamShard, "__init__", _shard_init),
    (StreamShard, "add", _shard_add),
    (StreamShard, "get", _shard_get),
    (streams_models.DynamoDBStreamsBackend, "__init__", _streams_backend_init),
    (streams_models.ShardIterator, "__new__", staticmethod(_untracked_new)),
    *[(cls, "__new__", staticmethod(_untracked_new)) for cls in _UNTRACKED],
]


def _original(owner: Any, name: str) -> Any:
    """What ``owner.name`` was before the patch (inherited methods included)."""
    saved = _settings.originals.get((owner, name))
    return saved[1] if saved is not None else getattr(owner, name)


def install(*, stream_retention_s: float = DEFAULT_STREAM_RETENTION_S) -> None:
    """Apply the fixes to moto in this process (idempotent)."""
    _settings.stream_retention_s = stream_retention_s
    if _settings.installed:
        return
    for owner, name, replacement in _PATCHES:
        _settings.originals[(owner, name)] = (owner.__dict__.get(name), getattr(owner, name))
        setattr(owner, name, replacement)
    for cls in (*_UNTRACKED, streams_models.ShardIterator):
        tracked: list[Any] = getattr(cls, "instances_tracked", [])
        tracked.clear()
    _settings.installed = True


def uninstall() -> None:
    """Put moto back as it was (tables built meanwhile keep working either way)."""
    if not _settings.installed:
        return
    for owner, name, _ in _PATCHES:
        owned, _ = _settings.originals.pop((owner, name), (None, None))
        if owned is None:
            delattr(owner, name)
        else:
            setattr(owner, name, owned)
    _settings.installed = False


def installed() -> bool:
    return _settings.installed


def expired_keys(table: Table, now_s: int) -> list[dict[str, Any]]:
    """Keys (DynamoDB JSON) of the table's items whose TTL attribute is at or before now_s."""
    order = _order(table)
    if order is None or order.ttl_attr is None:
        return []
    found = []
    for hash_key, range_key in order.expired(now_s):
        key = {table.hash_key_attr: hash_key.to_json()}
        if table.range_key_attr is not None and range_key is not None:
            key[table.range_key_attr] = range_key.to_json()
        found.append(key)
    return found


def changes(table: Table) -> int:
    """A counter that moves on every write of the table (0 before the first read of it)."""
    order = _order(table)
    return order.changes if order is not None else -1


def tables() -> Iterator[Table]:
    """Every table of every account and region of this process's moto."""
    for account in dynamodb_models.dynamodb_backends.values():
        for backend in account.values():
            yield from backend.tables.values()
