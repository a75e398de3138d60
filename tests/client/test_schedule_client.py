"""The client's schedule calls against a fake service on httpx.MockTransport: the exact
method, path, query and body each sends, how answers are parsed, what is refused before any
call, and which calls are retried after a lost connection."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from jobs_client import InvalidRequest, JobsClient, NotFound, Schedule, TransportError

from tests.client.test_queue_client import AT, MOMENT, Fake, error, lost, ok

OPENAPI = Path(__file__).resolve().parents[2] / "docs" / "openapi.yaml"
TEMPLATE = {"type": "reports", "params": {"kind": "daily"}, "title": None, "owner": None, "ttl_ms": None, "priority": 2}


def schedule_wire(name: str = "nightly", **fields: Any) -> dict[str, Any]:
    """A schedule as the service answers it (every field, as the contract requires)."""
    return {
        "name": name, "cron": "0 2 * * *", "every_ms": None, "timezone": "Europe/Berlin", "job": TEMPLATE,
        "paused": False, "next_run_at": "2026-03-02T01:00:00.000Z", "last_run_at": AT, "last_job_id": "j9",
        "processor": "svc", "created": AT, "modified": AT, "version": 4,
    } | fields  # fmt: skip


# -- parsing ------------------------------------------------------------------------------


def test_a_schedule_is_parsed_with_its_times_and_its_job_as_sent():
    parsed = Schedule.from_wire(schedule_wire())
    assert parsed == Schedule(
        name="nightly",
        cron="0 2 * * *",
        every_ms=None,
        timezone="Europe/Berlin",
        job=TEMPLATE,
        paused=False,
        next_run_at=datetime(2026, 3, 2, 1, 0, tzinfo=UTC),
        last_run_at=MOMENT,
        last_job_id="j9",
        processor="svc",
        created=MOMENT,
        modified=MOMENT,
        version=4,
    )
    paused = Schedule.from_wire(schedule_wire(cron=None, every_ms=300_000, paused=True, next_run_at=None, last_run_at=None))
    assert (paused.cron, paused.every_ms, paused.paused, paused.next_run_at, paused.last_run_at) == (
        None,
        300_000,
        True,
        None,
        None,
    )


def test_the_client_schedule_has_every_field_of_the_contracts_schedule():
    # The client mirrors the contract on its own: this fails when the two drift apart.
    schema = yaml.safe_load(OPENAPI.read_text())["components"]["schemas"]["Schedule"]
    assert {f.name for f in dataclasses.fields(Schedule)} == set(schema["properties"]) == set(schema["required"])


# -- put ----------------------------------------------------------------------------------


def test_put_schedule_sends_only_what_is_given_and_says_whether_it_created():
    fake = Fake().on("PUT", "/v1/schedules/nightly", ok(schedule_wire(), 201), ok(schedule_wire(version=5)))
    client = fake.client()
    created, was_created = client.put_schedule(
        "nightly", job={"type": "reports", "params": {"kind": "daily"}}, cron="0 2 * * *", timezone="Europe/Berlin"
    )
    assert (created.name, created.version, was_created) == ("nightly", 4, True)
    replaced, was_created = client.put_schedule("nightly", job={"type": "reports"}, every_ms=3_600_000, paused=True)
    assert (replaced.version, was_created) == (5, False)
    assert fake.sent() == [
        (
            "PUT",
            "/v1/schedules/nightly",
            {},
            {"cron": "0 2 * * *", "timezone": "Europe/Berlin", "job": {"type": "reports", "params": {"kind": "daily"}}},
        ),
        ("PUT", "/v1/schedules/nightly", {}, {"every_ms": 3_600_000, "job": {"type": "reports"}, "paused": True}),
    ]


@pytest.mark.parametrize("cadence", [{}, {"cron": "* * * * *", "every_ms": 60_000}])
def test_put_schedule_needs_exactly_one_of_cron_and_every_ms_and_asks_nothing_otherwise(cadence):
    fake = Fake()
    with pytest.raises(ValueError, match="cron or every_ms"):
        fake.client().put_schedule("nightly", job={"type": "reports"}, **cadence)
    assert fake.requests == []


def test_a_refused_put_is_the_contracts_error():
    fake = Fake().on("PUT", "/v1/schedules/nightly", error(400, "invalid_request", cron="not five fields"))
    with pytest.raises(InvalidRequest) as caught:
        fake.client().put_schedule("nightly", job={"type": "reports"}, cron="0 2 *")
    assert (caught.value.code, caught.value.details) == ("invalid_request", {"cron": "not five fields"})
    assert len(fake.requests) == 1  # a 400 is an answer, not retried


# -- read ---------------------------------------------------------------------------------


def test_get_schedule_parses_it_and_a_missing_one_is_none():
    fake = Fake().on("GET", "/v1/schedules/nightly", ok(schedule_wire()))
    client = fake.client()
    found = client.get_schedule("nightly")
    assert found is not None and found.cron == "0 2 * * *" and found.job["type"] == "reports"
    assert client.get_schedule("nope") is None
    assert [(m, p) for m, p, _, _ in fake.sent()] == [("GET", "/v1/schedules/nightly"), ("GET", "/v1/schedules/nope")]


def test_a_schedule_name_is_one_path_segment_whatever_it_holds():
    # The service refuses such a name (400); it must never reach another route.
    fake = Fake().on("GET", "/v1/schedules/a%2Fb%3Fc", ok(schedule_wire("a/b?c")))
    found = fake.client().get_schedule("a/b?c")
    assert found is not None and found.name == "a/b?c"


def test_list_schedules_sends_its_filters_and_answers_schedule_objects():
    fake = Fake().on("GET", "/v1/schedules", ok({"data": [schedule_wire("n1"), schedule_wire("n2")], "next_cursor": "c2"}))
    page = fake.client().list_schedules(prefix="n", limit=2, cursor="c1")
    assert fake.sent() == [("GET", "/v1/schedules", {"prefix": "n", "limit": "2", "cursor": "c1"}, None)]
    assert [s.name for s in page.data] == ["n1", "n2"] and page.next_cursor == "c2"


def test_iter_schedules_reads_every_page_with_the_prefix():
    fake = Fake().on(
        "GET",
        "/v1/schedules",
        ok({"data": [schedule_wire("n1"), schedule_wire("n2")], "next_cursor": "c2"}),
        ok({"data": [schedule_wire("n3")], "next_cursor": None}),
    )
    assert [s.name for s in fake.client().iter_schedules(prefix="n")] == ["n1", "n2", "n3"]
    assert [q for _, _, q, _ in fake.sent()] == [{"prefix": "n", "limit": "100"}, {"prefix": "n", "limit": "100", "cursor": "c2"}]


# -- patch, pause, resume, delete ---------------------------------------------------------


def test_set_pause_and_resume_patch_only_what_they_set():
    fake = Fake().on("PATCH", "/v1/schedules/nightly", ok(schedule_wire(paused=True, next_run_at=None)))
    client = fake.client()
    paused = client.pause_schedule("nightly")
    assert paused.paused and paused.next_run_at is None
    client.resume_schedule("nightly")
    client.set_schedule("nightly", every_ms=120_000)
    client.set_schedule("nightly", cron="30 3 * * 1", timezone="UTC", job={"type": "other"})
    assert [(m, p, b) for m, p, _, b in fake.sent()] == [
        ("PATCH", "/v1/schedules/nightly", {"paused": True}),
        ("PATCH", "/v1/schedules/nightly", {"paused": False}),
        ("PATCH", "/v1/schedules/nightly", {"every_ms": 120_000}),
        ("PATCH", "/v1/schedules/nightly", {"cron": "30 3 * * 1", "timezone": "UTC", "job": {"type": "other"}}),
    ]


def test_set_schedule_refuses_nothing_to_set_or_both_cadences_without_asking():
    fake = Fake()
    client = fake.client()
    with pytest.raises(ValueError, match="at least one"):
        client.set_schedule("nightly")
    with pytest.raises(ValueError, match="not both"):
        client.set_schedule("nightly", cron="* * * * *", every_ms=60_000)
    assert fake.requests == []


def test_delete_schedule_answers_it_as_it_was():
    fake = Fake().on("DELETE", "/v1/schedules/nightly", ok(schedule_wire(version=7)))
    gone = fake.client().delete_schedule("nightly")
    assert (gone.name, gone.version) == ("nightly", 7)
    assert fake.sent() == [("DELETE", "/v1/schedules/nightly", {}, None)]
    assert "Content-Type" not in fake.requests[0].headers


def test_deleting_a_missing_schedule_is_not_found():
    with pytest.raises(NotFound):
        Fake().client().delete_schedule("nope")


# -- what is retried after a lost connection ----------------------------------------------

CALLS: dict[str, tuple[str, str, Any, Callable[[JobsClient], Any]]] = {
    "put": ("PUT", "/v1/schedules/s", schedule_wire("s"), lambda c: c.put_schedule("s", job={"type": "t"}, every_ms=60_000)),
    "get": ("GET", "/v1/schedules/s", schedule_wire("s"), lambda c: c.get_schedule("s")),
    "list": ("GET", "/v1/schedules", {"data": [], "next_cursor": None}, lambda c: c.list_schedules()),
    "pause": ("PATCH", "/v1/schedules/s", schedule_wire("s"), lambda c: c.pause_schedule("s")),
    "delete": ("DELETE", "/v1/schedules/s", schedule_wire("s"), lambda c: c.delete_schedule("s")),
}


@pytest.mark.parametrize("name", sorted(CALLS))
def test_schedule_calls_are_retried_after_a_lost_connection_or_a_gateway_error(name):
    method, path, body, call = CALLS[name]
    fake = Fake().on(method, path, lost(), httpx.Response(502, text="Bad Gateway"), ok(body))
    call(fake.client())
    assert len(fake.requests) == 3


@pytest.mark.parametrize("name", sorted(CALLS))
def test_schedule_calls_give_up_after_the_last_attempt(name):
    method, path, body, call = CALLS[name]
    fake = Fake().on(method, path, lost(), lost(), ok(body))
    with pytest.raises(TransportError):
        call(fake.client(attempts=2))
    assert len(fake.requests) == 2
