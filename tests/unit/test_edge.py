"""The edge, fuzzed: whatever a request holds, parsing it ends in a command or in a 4xx.

Every route's parser is fed arbitrary JSON values and strings (deep, large, numbers of many
digits, NaN and Infinity, every plane of Unicode with lone surrogates, the routes' own field
names with wrong values), and the body decoder arbitrary bytes. Nothing may raise anything
but the contract's 4xx errors. The cases the issue named are checked one by one as well.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jobcore.commands import Parts, leases, queues, schedules, status
from jobcore.commands import jobs as job_commands
from jobcore.commands.live import parse_topic
from jobcore.errors import JobsError
from jobcore.settings import Limits
from jobcore.wire import decode_json, encode_json
from localcloud.functions import api_routes
from localcloud.template import load_template

LIMITS = Limits()
JOB = "01JDA3Q0Z8M6W4K2T9R7P5N3B1"

ROUTE_PARSERS: dict[str, Callable[[Parts, Limits], Any]] = {
    "POST /v1/jobs": job_commands.parse_create,
    "GET /v1/jobs": job_commands.parse_list,
    "DELETE /v1/jobs": job_commands.parse_delete_all,
    "POST /v1/jobs/clean": job_commands.parse_clean,
    "GET /v1/jobs/{id}": job_commands.parse_job_by_id,
    "PATCH /v1/jobs/{id}": job_commands.parse_patch,
    "DELETE /v1/jobs/{id}": job_commands.parse_job_by_id,
    "GET /v1/jobs/{id}/result": job_commands.parse_job_by_id,
    "POST /v1/batch": job_commands.parse_batch,
    "POST /v1/jobs/{id}/start": leases.parse_start,
    "POST /v1/queues/{type}/claim": leases.parse_claim,
    "POST /v1/claim": leases.parse_claim_any,
    "POST /v1/jobs/{id}/extend": leases.parse_extend,
    "POST /v1/jobs/{id}/abort": leases.parse_abort,
    "POST /v1/jobs/{id}/complete": leases.parse_complete,
    "POST /v1/jobs/{id}/fail": leases.parse_fail,
    "POST /v1/jobs/{id}/status": status.parse_status,
    "POST /v1/jobs/{id}/cancel": job_commands.parse_job_by_id,
    "GET /v1/jobs/{id}/messages": status.parse_messages,
    "GET /v1/queues": queues.parse_list_queues,
    "GET /v1/queues/{type}/jobs": status.parse_queue_jobs,
    "GET /v1/queues/{type}": queues.parse_get_queue,
    "PATCH /v1/queues/{type}": queues.parse_patch_queue,
    "GET /v1/queues/{type}/history": queues.parse_history,
    "POST /v1/jobs/{id}/retry": job_commands.parse_job_by_id,
    "POST /v1/queues/{type}/redrive": queues.parse_redrive,
    "DELETE /v1/queues/{type}/jobs": queues.parse_purge,
    "PUT /v1/schedules/{name}": schedules.parse_put_schedule,
    "GET /v1/schedules/{name}": schedules.parse_schedule_by_name,
    "GET /v1/schedules": schedules.parse_list_schedules,
    "PATCH /v1/schedules/{name}": schedules.parse_patch_schedule,
    "DELETE /v1/schedules/{name}": schedules.parse_schedule_by_name,
}
PARSE_NOTHING = {"GET /v1/schema"}

FIELD_NAMES = sorted(
    job_commands.CREATE_FIELDS | job_commands.LIST_FIELDS | job_commands.PATCH_FIELDS | leases.CLAIM_FIELDS
    | status.STATUS_FIELDS | {"paused", "fifo", "from", "to", "prefix", "states", "error_code", "limit", "priority",
    "types", "lease_token", "timeout_ms", "worker", "result", "error", "retry", "retry_in_ms", "code",
    "message", "id", "version", "create", "update", "delete", "depends", "title", "current", "maximum", "speed", "unit",
    "as_text", "action", "job_id", "cron", "every_ms", "timezone", "job"}
)  # fmt: skip

# Every plane, with lone surrogates, NUL and other controls often enough to matter.
characters = st.one_of(
    st.characters(), st.characters(categories=["Cs"]), st.sampled_from(["\ud800", "\udfff", "\x00", "\x1f", "é", "😀", "#", "/"])
)
any_text = st.lists(characters, max_size=40).map("".join)  # st.text() would rarely keep a surrogate
huge_text = st.integers(257, 5000).map(lambda n: "é" * n)
numbers = st.one_of(
    st.integers(),
    st.integers(min_value=-(10**60), max_value=10**60),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, -1, 1, 2**31, 2**53, 2**64, 10**38, 10**39]),
)
scalars = st.one_of(
    st.none(), st.booleans(), numbers, any_text, huge_text, st.sampled_from([JOB, "2026-11-22T10:00:00Z", "٣", "0" * 50])
)
keys = st.one_of(st.sampled_from(FIELD_NAMES), any_text)
json_values = st.recursive(
    scalars,
    lambda children: st.one_of(st.lists(children, max_size=5), st.dictionaries(keys, children, max_size=6)),
    max_leaves=30,
)
bodies = st.one_of(st.none(), st.dictionaries(keys, json_values, max_size=8), json_values)
texts = st.one_of(any_text, huge_text, st.sampled_from(["", JOB, "q", "true", "5", "-1", "9" * 30, "٣٣", "1e3"]))


def deep(levels: int) -> Any:
    value: Any = 1
    for _ in range(levels):
        value = {"a": [value]}
    return value


def assert_four_xx_or_command(call: Callable[[], Any]) -> Any:
    try:
        command = call()
    except JobsError as error:
        assert 400 <= error.status < 500, error
        return None
    for value in getattr(command, "__dict__", {}).values():
        if isinstance(value, dict | list | int | float | str) and not isinstance(value, bool):
            encode_json(value).encode("utf-8")  # whatever a command holds can be stored and answered
    return command


def test_every_route_of_the_template_has_its_parser():
    routes = {r.route_key for r in api_routes(load_template())}
    assert routes == set(ROUTE_PARSERS) | PARSE_NOTHING


# A valid request of each route: the fuzzer changes a few of its fields at a time, so that
# wrong values reach the checks behind the first ones (structure-aware, as good fuzzers are).
VALID: dict[str, dict[str, Any]] = {
    "POST /v1/jobs": {"type": "q", "ref_id": "r", "owner": "o", "title": "t", "params": {"n": 1}, "ttl_ms": 1000,
                      "delay_ms": 0, "max_retries": 3, "state": "pending", "initial_status": "s", "unique": True,
                      "depends_on": [JOB]},
    "POST /v1/jobs/{id}/status": {"new_title": "t", "new_status": "s", "progress": {"title": "p", "current": 1, "maximum": 2},
                                  "speeds": [{"title": "s", "speed": 1.5, "unit": "u", "as_text": "1.5 u"}],
                                  "message_to_append": "m", "lease_token": "1-ab", "extend_ms": 1000},
    "POST /v1/queues/{type}/claim": {"timeout_ms": 1000, "worker": "w", "max_retries": 2, "depends": [{"id": JOB, "version": 1}],
                                     "wait_ms": 0, "max_jobs": 3},
    "POST /v1/claim": {"types": ["q", "r"], "timeout_ms": 1000, "worker": "w", "max_retries": 2, "wait_ms": 0, "max_jobs": 2},
    "POST /v1/jobs/{id}/fail": {"lease_token": "1-ab", "error": {"code": "c", "message": "m"}, "retry_in_ms": 5, "retry": True},
    "POST /v1/jobs/{id}/complete": {"lease_token": "1-ab", "result": [1, 2]},
    "PATCH /v1/jobs/{id}": {"title": "t", "status": "s", "params": {}, "result": None, "owner": "o", "state": "idle",
                            "type": "q2", "priority": 1},
    "PATCH /v1/queues/{type}": {"paused": True, "fifo": False},
    "POST /v1/queues/{type}/redrive": {"states": ["error", "cancelled"], "error_code": "boom", "limit": 10},
    "POST /v1/batch": {"create": [{"type": "q"}], "update": [{"id": JOB, "version": 1, "title": "t"}],
                       "delete": [{"id": "01JDA3Q0Z8M6W4K2T9R7P5N3B2"}],
                       "depends": [{"id": "01JDA3Q0Z8M6W4K2T9R7P5N3B3", "version": 2}]},
    "POST /v1/jobs/{id}/start": {"timeout_ms": 1000, "worker": "w"},
    "POST /v1/jobs/{id}/extend": {"lease_token": "1-ab", "timeout_ms": 1000},
    "POST /v1/jobs/{id}/abort": {"lease_token": "1-ab"},
    "PUT /v1/schedules/{name}": {"cron": "*/5 9-17 * * 1-5", "timezone": "Europe/Berlin", "paused": False,
                                 "job": {"type": "q", "params": {"n": 1}, "title": "t", "owner": "o", "max_retries": 3,
                                         "ttl_ms": 1000, "priority": 1}},
    "PATCH /v1/schedules/{name}": {"every_ms": 60000, "timezone": "Asia/Kolkata", "paused": True, "job": {"type": "q"}},
}  # fmt: skip


@st.composite
def near_valid(draw: st.DrawFn, route: str) -> Any:
    """A valid body with up to three fields (top level, or one level down) set to anything."""
    body = json.loads(json.dumps(VALID.get(route, {})))
    for _ in range(draw(st.integers(0, 3))):
        target = body
        nested = [k for k, v in body.items() if isinstance(v, dict)]
        if nested and draw(st.booleans()):
            target = body[draw(st.sampled_from(nested))]
        name = draw(st.one_of(st.sampled_from(sorted(target) or FIELD_NAMES), keys))
        # Often a value of the kind the field holds (text for text, a number for a number),
        # so that the checks behind the type check are reached; else anything at all.
        kind = {str: texts, int: numbers, float: numbers, bool: st.booleans()}.get(type(target.get(name)))
        target[name] = draw(st.one_of(kind, json_values) if kind is not None else json_values)
    return body


@pytest.mark.parametrize("route", sorted(ROUTE_PARSERS))
@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), query=st.dictionaries(st.one_of(st.sampled_from(FIELD_NAMES), any_text), texts, max_size=5),
       path=texts, if_match=st.one_of(st.none(), texts), idempotency_key=st.one_of(st.none(), texts))  # fmt: skip
def test_any_request_parses_into_a_command_or_a_4xx(route, data, query, path, if_match, idempotency_key):
    body = data.draw(st.one_of(near_valid(route), bodies))
    headers = {k: v for k, v in (("if-match", if_match), ("idempotency-key", idempotency_key)) if v is not None}
    for path_value in (path, JOB, "q"):
        for query_value in (query, {}):
            parts = Parts(path={"id": path_value, "type": path_value, "name": path_value}, query=query_value,
                          headers=headers, body=body)  # fmt: skip
            assert_four_xx_or_command(lambda p=parts: ROUTE_PARSERS[route](p, LIMITS))


@settings(max_examples=300, deadline=None)
@given(data=st.one_of(st.binary(max_size=300), any_text.map(lambda t: t.encode("utf-8", "surrogatepass"))))
def test_any_bytes_decode_into_json_or_a_4xx(data):
    assert_four_xx_or_command(lambda: decode_json(data, LIMITS))


@settings(max_examples=200, deadline=None)
@given(body=bodies)
def test_any_websocket_message_names_a_topic_or_is_refused(body):
    assert_four_xx_or_command(lambda: parse_topic(body, LIMITS))


HOSTILE = {
    "nested a thousand levels": "[" * 1000 + "]" * 1000,
    "nested deeper than the limit": json.dumps(deep(LIMITS.json_depth + 1)),
    "an integer of 5,000 digits": '{"type": "q", "max_retries": ' + "9" * 5000 + "}",
    "NaN": '{"type": "q", "params": NaN}',
    "Infinity in progress": '{"progress": {"current": Infinity}}',
    "a float too large": '{"speeds": [{"title": "x", "speed": 1e999}]}',
    "a lone surrogate": '{"type": "q", "title": "\\ud800"}',
    "a lone surrogate as a key": '{"\\udfff": 1}',
    "invalid UTF-8": b'{"type": "\xff"}',
}


@pytest.mark.parametrize("raw", HOSTILE.values(), ids=HOSTILE.keys())
def test_what_reached_a_500_before_is_a_4xx_at_the_decoder(raw):
    with pytest.raises(JobsError) as refused:
        decode_json(raw, LIMITS)
    assert 400 <= refused.value.status < 500


@pytest.mark.parametrize("header", ["٣", "1" * 1000, "0", "-1", "1.5", '"x"', str(2**60)])
def test_an_if_match_that_is_no_version_is_a_400_naming_it(header):
    with pytest.raises(JobsError) as refused:
        job_commands.parse_patch(Parts(path={"id": JOB}, headers={"if-match": header}, body={"title": "t"}), LIMITS)
    assert refused.value.status == 400 and "If-Match" in refused.value.details["fields"]


def test_a_batch_update_obeys_the_limits_of_the_route_it_mirrors():
    """An owner of a thousand emoji would break the owner index's key: refused in a batch too."""
    owner = "😀" * 1000
    single = Parts(path={"id": JOB}, body={"owner": owner})
    batch = Parts(body={"update": [{"id": JOB, "version": 1, "owner": owner}]})
    for parse, parts in ((job_commands.parse_patch, single), (job_commands.parse_batch, batch)):
        with pytest.raises(JobsError) as refused:
            parse(parts, LIMITS)
        assert refused.value.status == 400


def test_depends_versions_beyond_what_dynamodb_holds_are_a_400():
    body = {"depends": [{"id": JOB, "version": 10**40}]}
    with pytest.raises(JobsError) as refused:
        leases.parse_claim(Parts(path={"type": "q"}, body=body), LIMITS)
    assert "depends[0].version" in refused.value.details["fields"]


@pytest.mark.parametrize(
    ("route", "query"), [("DELETE /v1/jobs", {"type": "x", "state": "finished"}), ("GET /v1/jobs", {"colour": "red"})]
)
def test_a_query_parameter_a_route_does_not_know_is_a_400(route, query):
    with pytest.raises(JobsError) as refused:
        ROUTE_PARSERS[route](Parts(query=query), LIMITS)
    assert refused.value.status == 400 and set(query) - set(job_commands.LIST_FIELDS) <= set(refused.value.details["fields"])


def test_numbers_a_command_keeps_are_finite():
    command = status.parse_status(Parts(path={"id": JOB}, body={"progress": {"current": 1.5, "maximum": 3}}), LIMITS)
    assert command.progress is not None and all(
        math.isfinite(v) for v in (command.progress["current"], command.progress["maximum"])
    )
