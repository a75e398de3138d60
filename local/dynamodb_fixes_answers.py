"""Fix 4 of ``dynamodb_fixes``: data-plane answers (and the streams' GetRecords) written
with ``json.dumps``, index projections that copy the attributes they keep, and expressions tokenized and parsed once
per distinct text.
"""

from __future__ import annotations

import base64
import copy
import json
from collections import deque
from datetime import datetime
from typing import Any, cast

from botocore.utils import parse_to_aware_datetime
from moto.core.responses import ActionResult
from moto.core.serialize import TimestampSerializer
from moto.dynamodb.comparisons import ConditionExpressionParser
from moto.dynamodb.models.dynamo_type import Item, LimitedSizeDict
from moto.dynamodb.models.table import SecondaryIndex
from moto.dynamodb.parsing.ast_nodes import (  # type: ignore[attr-defined]
    DepthFirstTraverser,
    Node,
    UpdateExpressionAddClause,
    UpdateExpressionRemoveClause,
    UpdateExpressionSetClause,
)
from moto.dynamodb.parsing.expressions import UpdateExpressionParser  # type: ignore[attr-defined]
from moto.dynamodb.parsing.validators import ActionCountValidator
from moto.dynamodb.responses import DynamoResult

from .dynamodb_fixes_common import _original

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


def _plain_answer(result: object, default: Any) -> tuple[int, dict[str, str], str] | None:
    """The answer as ``json.dumps`` writes it; None when the result holds what JSON cannot."""
    if not isinstance(result, dict):
        return None
    try:
        body = json.dumps({k: v for k, v in result.items() if v is not None}, default=default)
    except (TypeError, ValueError):
        return None
    return 200, {"Content-Type": "application/x-amz-json-1.0"}, body


def _execute_result(self: DynamoResult, context: Any) -> Any:
    answer = _plain_answer(self.result, _binary) if context.operation_model.name in _PLAIN_ANSWERS else None
    return answer or _original(DynamoResult, "execute_result")(self, context)


def _stream_value(value: Any) -> Any:
    if isinstance(value, datetime):  # ApproximateCreationDateTime, as moto's serializer writes it
        return TimestampSerializer._timestamp_unixtimestamp(parse_to_aware_datetime(cast(Any, value)))
    return _binary(value)


def _action_result(self: ActionResult, context: Any) -> Any:
    """GetRecords written with ``json.dumps``. moto's model-driven serializer walked every
    attribute of every image: measured under `bench/claim_load.py`, 28% of the local cloud
    process's time went to it (two stream pollers read every record)."""
    records = context.operation_model.name == "GetRecords" and context.service_model.service_name == "dynamodbstreams"
    answer = _plain_answer(self.result, _stream_value) if records else None
    return answer or _original(ActionResult, "execute_result")(self, context)


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


def _copy_tree(node: Any, parent: Any) -> Any:
    copied = object.__new__(type(node))
    copied.__dict__.update(node.__dict__)  # a node holds only its type, children and parent
    copied.parent = parent
    if isinstance(node.children, list):
        copied.children = [
            _copy_tree(child, copied) if isinstance(child, Node) else copy.deepcopy(child) for child in node.children
        ]
    return copied


def _validator_deepcopy(value: Any, memo: dict[int, Any] | None = None) -> Any:
    """``deepcopy`` as moto's update-expression validator calls it: a whole syntax tree (its
    root has no parent) is copied node by node, leaves as ``deepcopy`` copies them; the
    same copy, 1/4 of the time. Anything else goes to ``copy.deepcopy``."""
    if isinstance(value, Node) and value.parent is None and memo is None:
        return _copy_tree(value, None)
    return copy.deepcopy(value, memo)


# moto validates an update expression in ten passes over its syntax tree (about 90 nodes for
# a claim): half of an UpdateItem's time, measured in-process.
def _traverse(self: DepthFirstTraverser, node: Any) -> Any:
    """moto's depth-first pass, node for node, with the node types it processes looked up once
    per pass instead of once per node (moto rebuilds that map for every node it visits)."""
    kinds = self.nodes_to_be_processed()

    def visit(node: Any, child_id: int) -> Any:
        if isinstance(node, Node):
            parent = node.parent
            if node.children is not None:
                for i, child in enumerate(node.children):
                    self.pre_processing_of_child(node, i)
                    visit(child, i)
            if isinstance(node, kinds):
                node = self.process(node)
                node.parent = parent
                if parent:
                    parent.children[child_id] = node
        return node

    return visit(node, -1)


_CLAUSES = (UpdateExpressionAddClause, UpdateExpressionRemoveClause, UpdateExpressionSetClause)


def _count_actions(self: ActionCountValidator, node: Any) -> Any:
    """At most one ADD, REMOVE and SET clause. moto checks every node's subtree, each node
    three times (quadratic in the clauses); when the whole tree passes, every subtree does,
    so only a tree that fails takes moto's pass, which names the clause moto names."""
    if all(len(node.find_clauses([clause])) <= 1 for clause in _CLAUSES):
        return node
    return _traverse(self, node)
