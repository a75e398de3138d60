"""Inputs schemathesis found wanting: far-off years, a literal null body, a queue name that
no job can have, numbers sent as text in a body, and long polls longer than the function."""

from __future__ import annotations

import pytest

from jobcore.clock import parse_iso, to_iso
from jobcore.errors import InvalidRequest


def test_times_keep_four_digit_years_so_they_parse_and_sort():
    early = to_iso(parse_iso("1999-01-01T00:00:00Z").replace(year=328))
    assert early == "0328-01-01T00:00:00.000Z"
    assert parse_iso(early).year == 328
    assert early < to_iso(parse_iso("2026-01-01T00:00:00Z"))


@pytest.mark.parametrize("when", ["0328-09-12T23:51:51.1-08:48", "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59Z"])
def test_times_outside_the_supported_years_are_a_400(service, svc, when):
    with pytest.raises(InvalidRequest) as caught:
        service.create(svc, {"type": "t", "available_at": when})
    assert set(caught.value.details["fields"]) == {"available_at"}


def test_a_literal_null_body_is_refused_like_any_non_object(api, svc):
    result = api.call("POST", "/v1/queues/q/claim", raw_body="null", principal=svc)
    assert (result.status, result.error_code) == (400, "invalid_request")
    assert result.body["error"]["details"]["fields"] == {"body": "must be a JSON object"}


@pytest.mark.parametrize(("method", "path"), [("POST", "/v1/queues/%C2%84/claim"), ("GET", "/v1/queues/a#b/jobs")])
def test_a_queue_name_no_job_can_have_is_a_400(api, svc, method, path):
    result = api.call(method, path, body={} if method == "POST" else None, principal=svc)
    assert (result.status, result.error_code) == (400, "invalid_request")
    assert "type" in result.body["error"]["details"]["fields"]


def test_a_body_sends_numbers_and_booleans_as_json_not_text(service, svc):
    with pytest.raises(InvalidRequest) as caught:
        service.create(svc, {"type": "t", "delay_ms": "5", "unique": "true"})
    assert set(caught.value.details["fields"]) == {"delay_ms", "unique"}
    page = service.list_jobs(svc, {"limit": "5"})  # a query is text: "5" is 5 there
    assert page.data == []


def test_a_long_poll_ends_before_the_function_would_time_out(service, svc, clock):
    started = clock.now()
    assert service.claim(svc, "empty", {"wait_ms": 20_000}, time_left_ms=9_000) is None
    waited_ms = (clock.now() - started).total_seconds() * 1000
    assert 6_000 <= waited_ms <= 7_000  # 9 s left, less the 2 s margin
