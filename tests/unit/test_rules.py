"""Every transition's DynamoDB condition and its Python check agree, on any item and time.

For generated items (every state, lease, deadline, retry count, expiry, queue key) and
generated values (now, stamps, tokens, bounds), the condition as DynamoDB evaluates it (moto's
evaluator) holds exactly when the Python check lets the write through: so the error a failed
write names from ALL_OLD is always the reason it failed."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from moto.dynamodb.comparisons import get_filter_expression
from moto.dynamodb.models.dynamo_type import DynamoType, Item

from jobcore import rules
from jobcore.store import serialize

TIMES = ["2026-11-22T10:00:00.000Z", "2026-11-22T10:00:00.001Z", "2026-11-22T10:00:05.000Z", "2026-11-22T11:00:00.000Z"]
SECONDS = [1_795_000_000, 1_795_000_001, 1_795_000_002]
STATES = ["idle", "pending", "running", "finished", "error", "cancelled"]

times = st.sampled_from(TIMES)


@st.composite
def items(draw: st.DrawFn) -> dict[str, Any] | None:
    if draw(st.integers(0, 9)) == 0:
        return None  # no item at all
    item: dict[str, Any] = {
        "PK": "JOB#A",
        "SK": "JOB",
        "id": "A",
        "state": draw(st.sampled_from(STATES)),
        "attempts": draw(st.integers(0, 4)),
        "version": draw(st.integers(1, 3)),
        "modified": draw(times),
        "cancel_requested": draw(st.booleans()),
        "depends_on": draw(st.sampled_from([[], ["B"]])),
    }
    optional = {
        "max_retries": st.integers(1, 4),
        "execute_until": times,
        "locked_until": times,
        "lease_token": st.sampled_from(["1-t", "2-t"]),
        "expires_at": st.sampled_from(SECONDS),
        "TPK": st.sampled_from(["T#q", "T#other"]),
        "QSK": st.sampled_from([f"{t}#A" for t in TIMES]),
        "owner": st.sampled_from(["alice", "bob"]),
        "job_id": st.sampled_from(["A", "B"]),
    }
    for name, strategy in optional.items():
        if draw(st.booleans()):
            item[name] = draw(strategy)
    return item


@st.composite
def values(draw: st.DrawFn) -> dict[str, Any]:
    return {
        ":now": draw(times),
        ":now_s": draw(st.sampled_from(SECONDS)),
        ":stamp": draw(times),
        ":token": draw(st.sampled_from(["1-t", "2-t"])),
        ":queue": draw(st.sampled_from(["T#q", "T#other"])),
        ":bound": draw(st.sampled_from([f"{t}#~" for t in TIMES])),
        ":claim_max": draw(st.integers(1, 5)),
        ":seen": draw(st.sampled_from([f"{t}#A" for t in TIMES])),
        ":retry_at": draw(times),
        ":version": draw(st.integers(1, 3)),
        ":user": draw(st.sampled_from(["alice", "bob"])),
        ":job": draw(st.sampled_from(["A", "B"])),
    }


def dynamodb_says(rule: rules.Transition, item: dict[str, Any] | None, given_values: dict[str, Any]) -> bool:
    stored = None
    if item is not None:
        stored = Item(DynamoType({"S": item["PK"]}), DynamoType({"S": item["SK"]}), serialize(item))
    condition = get_filter_expression(rule.condition, rule.names, serialize(rule.values(given_values)))
    return bool(condition.expr(stored))


def python_says(rule: rules.Transition, item: dict[str, Any] | None, given_values: dict[str, Any]) -> bool:
    # As the engine's writes hand them: the times always, the rest as the rule names them.
    always = {k: given_values[k] for k in (":now", ":now_s", ":stamp")}
    try:
        rule.check(item, {**rules.CONSTANTS, **always, **rule.values(given_values)})
    except Exception:
        return False
    return True


@pytest.mark.parametrize("rule", rules.ALL, ids=lambda r: r.name)
@settings(max_examples=300, deadline=None)
@given(item=items(), given_values=values())
def test_the_condition_and_the_check_of_every_transition_agree(rule: rules.Transition, item: Any, given_values: Any) -> None:
    assert dynamodb_says(rule, item, given_values) == python_says(rule, item, given_values)


@given(sample=values())
def test_every_transition_names_each_value_it_needs(sample: dict[str, Any]) -> None:
    for rule in rules.ALL:
        assert set(rule.values(sample)) == set(re.findall(r":\w+", rule.condition))
