"""Fixes to moto's DynamoDB for a server that runs for hours: memory and time flat.

moto is built for short tests. As the local cloud's embedded DynamoDB under real use it
grows without bound and slows down with the table (measured with moto 5.2.5, DESIGN.md):

1. Every model object ever created stays alive: moto's ``BaseModel`` appends each new
   instance to a class-level list (``instances_tracked``), so every item version, query
   copy and stream record is kept forever. Here DynamoDB's and DynamoDB Streams' models
   are not tracked (the list only feeds moto's dashboard).
   Module: ``dynamodb_fixes_tracking``.
2. ``TransactWriteItems`` deep-copies every table it touches before it starts, to roll
   back on failure; with (1) the copies are never freed (+14 MB a transaction at 2,000
   items). Here a transaction keeps a journal of the items it touches instead and, on
   failure, puts exactly those back and drops the stream records it added: a cancelled
   transaction leaves no trace, as in DynamoDB. Its answers are moto's own.
   Module: ``dynamodb_fixes_transactions``.
3. A Query walks and sorts the whole table (255 ms at 20,000 items); a Scan page walks it
   from the start. Here each table keeps its items in key order, and each index and
   partition keeps its entries in the order moto sorts them, updated on every write; a
   Query hands moto only the entries its key condition and start key select (plus the one
   that tells moto a next page exists), so moto computes the very same answer from a
   handful of items. A TTL index lets the local TTL sweeper find expired items without a
   Scan.
   Modules: ``dynamodb_fixes_ordering`` (the order), ``dynamodb_fixes_queries`` (Query, Scan).
4. Answers are slow to write: moto's model-driven serializer walks every attribute of every
   item against the API's shapes, and projecting an item onto an index converts it to
   Python values and back. Here the data-plane answers (items, pages, transactions) and
   the streams' GetRecords, which moto already builds as DynamoDB JSON, are written with
   ``json.dumps``, and a projection
   copies the attributes it keeps. Expressions are tokenized and parsed once per distinct
   text (moto parses each update expression twice and each condition twice per request):
   the parsed forms are immutable or copied before use, so sharing them changes nothing.
   Module: ``dynamodb_fixes_answers``.
5. A table's stream keeps every record forever, and every shard iterator handed out is
   kept forever (the local pollers take two every 50 ms). Here records older than
   ``stream_retention_s`` are trimmed (DynamoDB keeps 24 h; the local pollers read within
   milliseconds) and at most ``MAX_SHARD_ITERATORS`` iterators are kept (DynamoDB expires
   them after 15 minutes), each as its shard and position under a digest of its ARN: about
   200 bytes instead of moto's 1.7 KB. A record keeps its images (and keys) as JSON text,
   read back as the same dicts: a new job's record 2.2 KB instead of 10.7 KB.
   Module: ``dynamodb_fixes_streams``.
6. moto ignores ``ClientRequestToken``. botocore gives every ``TransactWriteItems`` one and
   sends it again when it retries after a read timeout, so on a loaded machine a batch that
   was applied came back cancelled by its own first attempt (409 ``batch_conflict``). Here,
   as in DynamoDB, a token seen with the same items in the last ten minutes answers success
   without applying them again, and with other items ``IdempotentParameterMismatchException``.
   Module: ``dynamodb_fixes_transactions``.
7. Every stored item keeps each attribute name and each value as an object of its own, so a
   job's 31 attributes take 7.6 KB, most of what memory grows by as jobs accumulate. Here,
   after each write, the stored item's names are interned and its scalar values equal to one
   stored recently are the same ``DynamoType`` object (moto never changes a scalar in place):
   3.2 KB a job, with the very same contents and answers.
   Module: ``dynamodb_fixes_compact``.

``install()`` applies them (idempotent); ``uninstall()`` restores moto as it was (the
tests compare both on the same requests). Every request to DynamoDB or its streams runs
under one lock of the fixes (``_settings.request_lock``): the embedded server is serial
anyway, but in-process moto is called from many threads at once.

This module is the fixes' interface (what the local cloud and the tests call) and the
patch table; each fix lives in a sibling module ``dynamodb_fixes_<family>.py`` (sibling
modules, not a subpackage: pyproject.toml lists localcloud's packages by name).
"""

from __future__ import annotations

import sys
import types
from collections.abc import Iterator
from typing import Any

from moto.core.responses import ActionResult
from moto.dynamodb import models as dynamodb_models
from moto.dynamodb.comparisons import ConditionExpressionParser
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.table import SecondaryIndex, StreamRecord, StreamShard, Table
from moto.dynamodb.parsing import validators as update_validators
from moto.dynamodb.parsing.ast_nodes import DepthFirstTraverser  # type: ignore[attr-defined]
from moto.dynamodb.parsing.expressions import UpdateExpressionParser  # type: ignore[attr-defined]
from moto.dynamodb.responses import DynamoHandler, DynamoResult
from moto.dynamodbstreams import models as streams_models
from moto.dynamodbstreams.responses import DynamoDBStreamsHandler

from . import (
    dynamodb_fixes_answers,
    dynamodb_fixes_common,
    dynamodb_fixes_compact,
    dynamodb_fixes_ordering,
    dynamodb_fixes_queries,
    dynamodb_fixes_streams,
    dynamodb_fixes_tracking,
    dynamodb_fixes_transactions,
)
from .dynamodb_fixes_answers import (
    _action_result,
    _count_actions,
    _execute_result,
    _lex_condition_expression,
    _make_update_expression,
    _project,
    _traverse,
    _validator_deepcopy,
)
from .dynamodb_fixes_common import DEFAULT_STREAM_RETENTION_S, _one_request_at_a_time, _settings
from .dynamodb_fixes_ordering import _backend_update_item, _order, _table_delete_item, _table_get_item, _table_put_item
from .dynamodb_fixes_queries import MAX_ITEM_BYTES, RESULT_SIZE_LIMIT, _all_items, _narrowed, _query_candidates, _scan_candidates
from .dynamodb_fixes_streams import (
    MAX_SHARD_ITERATORS,
    _record_to_json,
    _shard_add,
    _shard_get,
    _shard_init,
    _streams_backend_init,
)
from .dynamodb_fixes_tracking import _UNTRACKED, _untracked_new
from .dynamodb_fixes_transactions import (
    IDEMPOTENCY_WINDOW_S,
    IdempotentParameterMismatch,
    _handler_transact_write_items,
    _transact_write_items,
)

__all__ = [
    "DEFAULT_STREAM_RETENTION_S",
    "IDEMPOTENCY_WINDOW_S",
    "MAX_ITEM_BYTES",
    "MAX_SHARD_ITERATORS",
    "RESULT_SIZE_LIMIT",
    "IdempotentParameterMismatch",
    "changes",
    "expired_keys",
    "install",
    "installed",
    "tables",
    "uninstall",
]

# What a Query hands moto, read and replaced here by tests/unit/test_dynamodb_fixes.py (see _Fixes).
_select = dynamodb_fixes_queries._select


# ==========================================================================================
# install / uninstall
# ==========================================================================================
_PATCHES: list[tuple[Any, str, Any]] = [
    (DynamoHandler, "call_action", _one_request_at_a_time(DynamoHandler)),
    (DynamoDBStreamsHandler, "call_action", _one_request_at_a_time(DynamoDBStreamsHandler)),
    (Table, "all_items", _all_items),
    # A Query, and a Scan page of the table itself, start at their start key, not the first item.
    (Table, "query", _narrowed("query", _query_candidates)),
    (Table, "scan", _narrowed("scan", _scan_candidates)),
    (Table, "put_item", _table_put_item),
    (Table, "delete_item", _table_delete_item),
    (Table, "get_item", _table_get_item),
    (DynamoDBBackend, "update_item", _backend_update_item),
    (DynamoDBBackend, "transact_write_items", _transact_write_items),
    (DynamoHandler, "transact_write_items", _handler_transact_write_items),
    (DynamoResult, "execute_result", _execute_result),
    (ActionResult, "execute_result", _action_result),  # after DynamoResult, which inherits it
    (SecondaryIndex, "project", _project),
    (ConditionExpressionParser, "_lex_condition_expression", _lex_condition_expression),
    (UpdateExpressionParser, "make", classmethod(_make_update_expression)),
    (update_validators, "deepcopy", _validator_deepcopy),
    (DepthFirstTraverser, "traverse", _traverse),
    (update_validators.ActionCountValidator, "traverse", _count_actions),
    (StreamShard, "__init__", _shard_init),
    (StreamShard, "add", _shard_add),
    (StreamShard, "get", _shard_get),
    (StreamRecord, "to_json", _record_to_json),
    (streams_models.DynamoDBStreamsBackend, "__init__", _streams_backend_init),
    (streams_models.ShardIterator, "__new__", staticmethod(_untracked_new)),
    *[(cls, "__new__", staticmethod(_untracked_new)) for cls in _UNTRACKED],
]


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


# ==========================================================================================
# one namespace, as when the fixes were all in this module
# ==========================================================================================
_FAMILIES = (
    dynamodb_fixes_common,
    dynamodb_fixes_compact,
    dynamodb_fixes_tracking,
    dynamodb_fixes_ordering,
    dynamodb_fixes_queries,
    dynamodb_fixes_transactions,
    dynamodb_fixes_answers,
    dynamodb_fixes_streams,
)


class _Fixes(types.ModuleType):
    """This module. A name set on it is also set in each sibling module that holds it, where
    the fixes look it up: replacing ``dynamodb_fixes._select`` (as a test does, to count what
    a Query hands moto) or a constant still changes what the fixes do."""

    def __setattr__(self, name: str, value: Any) -> None:
        if not name.startswith("__"):
            for module in _FAMILIES:
                if name in module.__dict__:
                    setattr(module, name, value)
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Fixes
