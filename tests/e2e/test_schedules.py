"""Schedules over HTTP against the local cloud, whose scheduled events run on a clock 60 times
faster than real time (JOBS_LOCAL_SCHEDULE_SPEED): the template's every-minute scheduler
runs about once a second, each run a minute after the last."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest

from jobcore.clock import parse_iso
from tests.e2e.conftest import DEADLINE_S, LocalService, start_local_service, stop_local_service, wait_for


@pytest.fixture(scope="module")
def fast(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalService]:
    service = start_local_service(tmp_path_factory.mktemp("schedules"), extra_env={"JOBS_LOCAL_SCHEDULE_SPEED": "60"})
    try:
        yield service
    finally:
        stop_local_service(service)


def scheduled_jobs(local: LocalService, job_type: str) -> list[dict[str, Any]]:
    reply = local.request("GET", f"/v1/jobs?type={job_type}&limit=100", token=local.token("service", "svc-sched"))
    assert reply.status == 200, reply.body
    return list(reply.body["data"])


def at_least(local: LocalService, count: int, job_type: str) -> list[dict[str, Any]] | None:
    found = scheduled_jobs(local, job_type)
    return found if len(found) >= count else None


def slot_of(job: dict[str, Any], name: str) -> datetime:
    prefix = f"schedule:{name}:"
    assert job["ref_id"].startswith(prefix) and job["schedule"] == name, job
    return parse_iso(job["ref_id"][len(prefix) :])


def put(local: LocalService, name: str, body: dict[str, Any]) -> dict[str, Any]:
    reply = local.request("PUT", f"/v1/schedules/{name}", token=local.token("service", "svc-sched"), body=body)
    assert reply.status == 201, reply.body
    return dict(reply.body)


def test_an_every_minute_schedule_yields_one_job_per_slot(fast):
    put(fast, "minutely", {"every_ms": 60_000, "job": {"type": "sched.minutely", "params": {"n": 1}, "priority": 1}})
    jobs = wait_for(lambda: at_least(fast, 3, "sched.minutely"), timeout=DEADLINE_S, interval=0.5, message="three slots' jobs")
    slots = [slot_of(job, "minutely") for job in jobs]
    # One job per slot; each slot a whole minute. (Under load a run may be skipped: then its
    # slot is made up by the next run's, the latest, never by a burst.)
    assert len(set(slots)) == len(slots)
    assert all(slot.timestamp() % 60 == 0 and slot.microsecond == 0 for slot in slots)
    assert {(j["params"]["n"], j["priority"], j["processor"]) for j in jobs} == {(1, 1, "svc-sched")}
    schedule = fast.request("GET", "/v1/schedules/minutely", token=fast.token("admin", "root")).body
    assert parse_iso(schedule["last_run_at"]) >= max(slots)
    assert parse_iso(schedule["next_run_at"]) > parse_iso(schedule["last_run_at"])


def test_pausing_a_schedule_stops_its_jobs(fast):
    svc = fast.token("service", "svc-sched")
    put(fast, "to-pause", {"every_ms": 60_000, "job": {"type": "sched.paused"}})
    wait_for(lambda: at_least(fast, 1, "sched.paused"), timeout=DEADLINE_S, interval=0.5, message="a first job")
    paused = fast.request("PATCH", "/v1/schedules/to-pause", token=svc, body={"paused": True})
    assert paused.status == 200 and paused.body["paused"] and paused.body["next_run_at"] is None
    made = len(scheduled_jobs(fast, "sched.paused"))
    # A second schedule is the clock: once it has run three more times, so has the scheduler.
    put(fast, "witness", {"every_ms": 60_000, "job": {"type": "sched.witness"}})
    wait_for(lambda: at_least(fast, 3, "sched.witness"), timeout=DEADLINE_S, interval=0.5, message="three runs")
    assert len(scheduled_jobs(fast, "sched.paused")) == made
    resumed = fast.request("PATCH", "/v1/schedules/to-pause", token=svc, body={"paused": False})
    assert resumed.status == 200 and resumed.body["next_run_at"] is not None
    wait_for(lambda: at_least(fast, made + 1, "sched.paused"), timeout=DEADLINE_S, interval=0.5, message="resumed")


def test_a_deleted_schedule_keeps_its_jobs_and_makes_no_more(fast):
    svc = fast.token("service", "svc-sched")
    put(fast, "to-delete", {"every_ms": 60_000, "job": {"type": "sched.deleted"}})
    wait_for(lambda: at_least(fast, 1, "sched.deleted"), timeout=DEADLINE_S, interval=0.5, message="a first job")
    deleted = fast.request("DELETE", "/v1/schedules/to-delete", token=svc)
    assert deleted.status == 200 and deleted.body["name"] == "to-delete"
    made = len(scheduled_jobs(fast, "sched.deleted"))
    put(fast, "witness-2", {"every_ms": 60_000, "job": {"type": "sched.witness2"}})
    wait_for(lambda: at_least(fast, 3, "sched.witness2"), timeout=DEADLINE_S, interval=0.5, message="three runs")
    assert len(scheduled_jobs(fast, "sched.deleted")) == made >= 1
    assert fast.request("GET", "/v1/schedules/to-delete", token=svc).status == 404


def test_a_bad_schedule_is_a_400_naming_its_fields(fast):
    svc = fast.token("service", "svc-sched")
    reply = fast.request("PUT", "/v1/schedules/bad", token=svc,
                         body={"cron": "0 25 * * *", "timezone": "Atlantis/Capital", "job": {"type": "a b"}})  # fmt: skip
    assert reply.status == 400 and reply.error_code == "invalid_request"
    assert {"timezone", "job.type"} <= set(reply.body["error"]["details"]["fields"])
    assert fast.request("GET", "/v1/schedules/bad", token=svc).status == 404
