"""Fix 7 of ``dynamodb_fixes``: stored items take less memory, with the very same contents.

moto keeps each item as a dict of attribute name -> ``DynamoType``, every name and every
value an object of its own: a job's 32 attributes hold 32 copies of names that every job
has ("state", "available_at", ...) and a ``DynamoType`` for each value, even those most
jobs share ("soak", "finished", "User#7", "1"). Held for every item the table keeps, that
is most of what the local cloud's memory grows by as jobs accumulate (issue 11).

After each write the stored item is compacted: attribute names are interned, and a scalar
value (S, N, B, BOOL, NULL) equal to one stored recently is the same ``DynamoType`` object.
Names, values and their order are unchanged, so every answer is byte-for-byte the same.
Sharing a scalar is safe because moto never changes one in place: an update puts a new
``DynamoType`` in the item (only lists, maps and sets are changed in place, and those are
never shared).
"""

from __future__ import annotations

import sys
from typing import Any

from moto.dynamodb.models.dynamo_type import DynamoType, Item

# Scalars shared, by (type, value); cleared when full, so it stays small whatever the table
# holds (values seen once, such as ids and times, pass through it).
SHARED_MAX = 8192
# Longer values are left as they are: they rarely repeat, and the table keeps them anyway.
SHARED_VALUE_MAX_CHARS = 64
_SCALAR_TYPES = frozenset({"S", "N", "B", "BOOL", "NULL"})
_shared: dict[tuple[str, Any], DynamoType] = {}


def _shared_scalar(value: DynamoType) -> DynamoType:
    raw = value.value
    if isinstance(raw, str):
        if len(raw) > SHARED_VALUE_MAX_CHARS:
            return value
    elif not isinstance(raw, bool | bytes) or (isinstance(raw, bytes) and len(raw) > SHARED_VALUE_MAX_CHARS):
        return value
    key = (value.type, raw)
    shared = _shared.get(key)
    if shared is None:
        if len(_shared) >= SHARED_MAX:
            _shared.clear()
        _shared[key] = shared = value
    return shared


def compact(item: Item) -> None:
    """Intern the item's attribute names and share its scalar values, in place."""
    attrs = item.attrs
    pairs: list[tuple[str, Any]] = []
    changed = False
    for name, value in dict.items(attrs):
        interned = sys.intern(name) if type(name) is str else name
        kept = _shared_scalar(value) if type(value) is DynamoType and value.type in _SCALAR_TYPES else value
        changed = changed or interned is not name or kept is not value
        pairs.append((interned, kept))
    if changed:
        dict.clear(attrs)
        dict.update(attrs, pairs)  # the same order: answers list attributes in it
