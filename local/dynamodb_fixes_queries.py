"""Fix 3 of ``dynamodb_fixes``, the reads: a Query hands moto only the entries its key
condition and start key select (plus the one that tells moto a next page exists), and a
Scan page starts at its start key, so moto computes the very same answer from a handful of
items (the order they are taken from is ``dynamodb_fixes_ordering``).
"""

from __future__ import annotations

import bisect
import itertools
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from moto.dynamodb.models.dynamo_type import DynamoType, Item
from moto.dynamodb.models.table import Table

from .dynamodb_fixes_common import _original
from .dynamodb_fixes_ordering import (
    ItemKey,
    _first_value,
    _lookup,
    _order,
    _partition_key,
    _sort_value,
    _TableOrder,
    _values_of,
)

RESULT_SIZE_LIMIT = 1_000_000  # moto's (and DynamoDB's) 1 MB page
MAX_ITEM_BYTES = 410_000  # moto refuses items over 405,000 bytes; a margin above it


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
