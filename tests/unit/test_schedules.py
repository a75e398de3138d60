"""Recurring jobs: schedules as records, and the scheduler's runs (one job per slot, whatever
runs overlap or repeat; only the latest missed slot after downtime; pause and resume; time
zones across daylight saving). Every test drives the engine with a manual clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from jobcore import keys
from jobcore.clock import ManualClock, parse_iso, to_iso
from jobcore.errors import Forbidden, InvalidRequest, NotFound
from jobcore.model import JobState, Principal, Role
from tests.support.jobs import Jobs

EVERY_MINUTE = {"every_ms": 60_000, "job": {"type": "reports", "params": {"kind": "daily"}, "title": "Report"}}


def at(text: str) -> datetime:
    return parse_iso(text)


def jobs_of(service: Jobs, svc: Principal, name: str) -> list[Any]:
    found = service.list_jobs(svc, {"type": "reports", "limit": 100}).data
    return sorted((j for j in found if j.schedule == name), key=lambda j: j.ref_id or "")


def problems(error: pytest.ExceptionInfo[InvalidRequest]) -> dict[str, str]:
    return dict(error.value.details["fields"])


# -- records --------------------------------------------------------------------------------


def test_a_put_creates_then_replaces_keeping_creation_and_last_run(service, svc, clock):
    schedule, created = service.put_schedule(svc, "nightly", EVERY_MINUTE)
    assert created
    wire = schedule.to_wire()
    assert wire["name"] == "nightly" and wire["every_ms"] == 60_000 and wire["cron"] is None
    assert wire["timezone"] == "UTC" and wire["paused"] is False and wire["version"] == 1
    assert wire["processor"] == svc.sub and wire["last_run_at"] is None and wire["last_job_id"] is None
    assert wire["job"] == {"type": "reports", "params": {"kind": "daily"}, "title": "Report", "owner": None,
                           "ttl_ms": None, "priority": 2}  # fmt: skip
    assert wire["next_run_at"] == "2026-11-22T10:01:00.000Z"  # the clock starts at 10:00:00

    clock.advance(60_000)
    service.run_schedules()
    clock.advance(30_000)
    replaced, created = service.put_schedule(svc, "nightly", {"cron": "0 3 * * *", "job": {"type": "reports"}})
    assert not created
    assert replaced.version == 3  # the run moved it on once
    assert replaced.created == schedule.created and replaced.last_run_at == "2026-11-22T10:01:00.000Z"
    assert replaced.last_job_id is not None and replaced.next_run_at == "2026-11-23T03:00:00.000Z"
    assert service.schedule(svc, "nightly").to_wire() == replaced.to_wire()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"job": {"type": "reports"}}, "cron"),
        ({"cron": "* * * * *", "every_ms": 60_000, "job": {"type": "reports"}}, "cron"),
        ({"every_ms": 59_999, "job": {"type": "reports"}}, "every_ms"),
        ({"every_ms": True, "job": {"type": "reports"}}, "every_ms"),
        ({"cron": "61 * * * *", "job": {"type": "reports"}}, "cron"),
        ({"cron": "0 0 30 2 *", "job": {"type": "reports"}}, "cron"),
        ({"cron": "* * * * *", "timezone": "Mars/Olympus", "job": {"type": "reports"}}, "timezone"),
        ({"cron": "* * * * *", "timezone": "../etc/passwd", "job": {"type": "reports"}}, "timezone"),
        ({"every_ms": 60_000}, "job"),
        ({"every_ms": 60_000, "job": []}, "job"),
        ({"every_ms": 60_000, "job": {}}, "job.type"),
        ({"every_ms": 60_000, "job": {"type": "a#b"}}, "job.type"),
        ({"every_ms": 60_000, "job": {"type": "r", "ref_id": "x"}}, "job.ref_id"),
        ({"every_ms": 60_000, "job": {"type": "r", "priority": 5}}, "job.priority"),
        ({"every_ms": 60_000, "job": {"type": "r", "max_retries": 0}}, "job.max_retries"),
        ({"every_ms": 60_000, "job": {"type": "r"}, "paused": "yes"}, "paused"),
        ({"every_ms": 60_000, "job": {"type": "r"}, "next_run_at": "2026-01-01T00:00:00Z"}, "next_run_at"),
    ],
)
def test_a_put_names_each_bad_field(service, svc, body, field):
    with pytest.raises(InvalidRequest) as error:
        service.put_schedule(svc, "s", body)
    assert field in problems(error)
    with pytest.raises(NotFound):
        service.schedule(svc, "s")


@pytest.mark.parametrize("name", ["", "a" * 65, "a b", "a#b", "a/b", "caf\u00e9"])
def test_a_schedule_name_is_short_and_plain(service, svc, name):
    with pytest.raises(InvalidRequest) as error:
        service.put_schedule(svc, name, EVERY_MINUTE)
    assert "name" in problems(error)


def test_schedules_are_listed_by_name_in_pages(service, svc):
    for name in ("b", "a", "c.1", "c.2"):
        service.put_schedule(svc, name, EVERY_MINUTE)
    first = service.schedules(svc, {"limit": 3})
    assert [s.name for s in first.data] == ["a", "b", "c.1"] and first.next_cursor
    rest = service.schedules(svc, {"limit": 3, "cursor": first.next_cursor})
    assert [s.name for s in rest.data] == ["c.2"] and rest.next_cursor is None
    assert [s.name for s in service.schedules(svc, {"prefix": "c."}).data] == ["c.1", "c.2"]
    with pytest.raises(InvalidRequest):
        service.schedules(svc, {"prefix": "c.", "cursor": first.next_cursor})


def test_a_deleted_schedule_is_gone_and_its_jobs_stay(service, svc, clock):
    service.put_schedule(svc, "gone", EVERY_MINUTE)
    clock.advance(60_000)
    assert service.run_schedules().fired == 1
    deleted = service.delete_schedule(svc, "gone")
    assert deleted.name == "gone"
    with pytest.raises(NotFound):
        service.schedule(svc, "gone")
    with pytest.raises(NotFound):
        service.delete_schedule(svc, "gone")
    assert len(jobs_of(service, svc, "gone")) == 1
    clock.advance(60_000)
    assert service.run_schedules().fired == 0


def test_deleting_every_job_keeps_the_schedules(service, svc, admin, clock):
    service.put_schedule(svc, "kept", EVERY_MINUTE)
    clock.advance(60_000)
    service.run_schedules()
    service.delete_all(admin)
    assert jobs_of(service, svc, "kept") == []
    assert service.schedule(svc, "kept").last_job_id is not None
    clock.advance(60_000)
    assert service.run_schedules().fired == 1


# -- the scheduler --------------------------------------------------------------------------


def test_each_slot_yields_one_job_with_the_template_and_the_slot_in_its_ref_id(service, svc, clock):
    body = {"every_ms": 60_000, "job": {"type": "reports", "params": {"n": 1}, "title": "T", "owner": "User#alice",
                                        "max_retries": 3, "ttl_ms": 3_600_000, "priority": 1}}  # fmt: skip
    service.put_schedule(svc, "minutely", body)
    assert service.run_schedules().fired == 0  # 10:00:00, next slot 10:01
    for _ in range(3):
        clock.advance(60_000)
        assert service.run_schedules().fired == 1
        clock.advance(1_000)
        assert service.run_schedules().fired == 0  # the same slot, a second later
    jobs = jobs_of(service, svc, "minutely")
    assert [j.ref_id for j in jobs] == [f"schedule:minutely:2026-11-22T10:0{m}:00.000Z" for m in (1, 2, 3)]
    job = jobs[0]
    assert (job.type, job.params, job.title, job.owner, job.max_retries, job.priority) == (
        "reports", {"n": 1}, "T", "User#alice", 3, 1)  # fmt: skip
    assert job.processor == svc.sub and job.state is JobState.PENDING and job.execute_until is not None
    schedule = service.schedule(svc, "minutely")
    assert schedule.last_run_at == "2026-11-22T10:03:00.000Z" and schedule.last_job_id == jobs[-1].id
    assert schedule.next_run_at == "2026-11-22T10:04:00.000Z"
    # A slot's job is a unique job: a create of the same type+ref_id answers with it.
    again = service.create(svc, {"type": "reports", "ref_id": jobs[-1].ref_id, "unique": True})
    assert not again.created and again.job.id == jobs[-1].id


def test_after_downtime_only_the_latest_missed_slot_runs(service, svc, clock):
    service.put_schedule(svc, "s", EVERY_MINUTE)
    clock.advance(10 * 60_000 + 30_000)  # 10:10:30: ten slots missed
    assert service.run_schedules().fired == 1
    jobs = jobs_of(service, svc, "s")
    assert [j.ref_id for j in jobs] == ["schedule:s:2026-11-22T10:10:00.000Z"]
    assert service.schedule(svc, "s").next_run_at == "2026-11-22T10:11:00.000Z"


def test_two_runs_that_read_the_same_schedule_make_one_job(service, svc, clock, engine):
    service.put_schedule(svc, "race", EVERY_MINUTE)
    now = clock.advance(60_000)
    stale = list(engine.schedules.due(now))  # run A read the due schedule ...
    assert [i["name"] for i in stale] == ["race"]
    assert service.run_schedules(now).fired == 1  # ... run B made the slot's job first
    assert engine.schedules.fire(stale[0], now) is None  # A's transaction is refused
    assert len(jobs_of(service, svc, "race")) == 1


def test_runs_of_four_containers_at_once_make_one_job_per_slot(dynamodb, settings, clock, svc):
    import threading

    engines = [_engine(dynamodb, settings, clock) for _ in range(4)]
    Jobs(engines[0]).put_schedule(svc, "together", EVERY_MINUTE)
    runs: list[Any] = []
    for _ in range(3):
        now = clock.advance(60_000)
        barrier = threading.Barrier(len(engines))

        def run(engine: Any, moment: datetime = now, start: threading.Barrier = barrier) -> None:
            start.wait(timeout=60)
            runs.append(engine.schedules.run_due(moment))

        threads = [threading.Thread(target=run, args=(engine,)) for engine in engines]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert not any(thread.is_alive() for thread in threads)
    assert len(runs) == 12 and sum(r.fired for r in runs) == 3
    assert [j.ref_id for j in jobs_of(Jobs(engines[0]), svc, "together")] == [
        f"schedule:together:2026-11-22T10:0{m}:00.000Z" for m in (1, 2, 3)]  # fmt: skip


def test_a_repeated_run_makes_no_second_job_even_after_the_first_finished(service, svc, clock):
    service.put_schedule(svc, "repeat", EVERY_MINUTE)
    now = clock.advance(60_000)
    assert service.run_schedules(now).fired == 1
    job = jobs_of(service, svc, "repeat")[0]
    leased = service.start(svc, job.id, {"timeout_ms": 60_000})
    service.complete(svc, job.id, {"lease_token": leased.lease_token})  # the unique guard is released
    assert service.run_schedules(now).fired == 0  # a retried event: the same moment again
    assert len(jobs_of(service, svc, "repeat")) == 1


def test_a_slot_whose_job_exists_already_moves_the_schedule_on_without_another(service, svc, clock, engine):
    service.put_schedule(svc, "taken", EVERY_MINUTE)
    existing = service.create(svc, {"type": "reports", "ref_id": "schedule:taken:2026-11-22T10:01:00.000Z", "unique": True})
    now = clock.advance(60_000)
    fired = engine.schedules.fire(next(iter(engine.schedules.due(now))), now)
    assert fired is not None and not fired.created and fired.job_id == existing.job.id
    schedule = service.schedule(svc, "taken")
    assert schedule.last_job_id == existing.job.id and schedule.next_run_at == "2026-11-22T10:02:00.000Z"


def test_a_paused_schedule_makes_no_jobs_and_resumes_from_now(service, svc, clock):
    service.put_schedule(svc, "p", EVERY_MINUTE)
    paused = service.patch_schedule(svc, "p", {"paused": True})
    assert paused.paused and paused.next_run_at is None and paused.version == 2
    clock.advance(5 * 60_000 + 10_000)  # 10:05:10
    assert service.run_schedules().fired == 0
    resumed = service.patch_schedule(svc, "p", {"paused": False})
    assert resumed.next_run_at == "2026-11-22T10:06:00.000Z"  # no catch-up of the paused slots
    assert service.run_schedules().fired == 0
    clock.advance(50_000)
    assert service.run_schedules().fired == 1
    assert [j.ref_id for j in jobs_of(service, svc, "p")] == ["schedule:p:2026-11-22T10:06:00.000Z"]


def test_an_admin_pauses_and_resumes_but_changes_nothing_else(service, svc, admin, clock):
    """The console's pause and resume with an admin token: the schedule stays its service's."""
    service.put_schedule(svc, "ops", EVERY_MINUTE)
    paused = service.patch_schedule(admin, "ops", {"paused": True})
    assert paused.paused and paused.processor == svc.sub and paused.version == 2
    resumed = service.patch_schedule(admin, "ops", {"paused": False})
    assert not resumed.paused and resumed.next_run_at == "2026-11-22T10:01:00.000Z" and resumed.processor == svc.sub
    for body in ({"every_ms": 120_000}, {"cron": "0 3 * * *"}, {"timezone": "Europe/Berlin"},
                 {"job": {"type": "reports"}}, {"paused": True, "every_ms": 120_000}):  # fmt: skip
        with pytest.raises(Forbidden):
            service.patch_schedule(admin, "ops", body)
    assert service.schedule(svc, "ops").version == 3  # nothing written by the refused ones
    clock.advance(61_000)
    assert service.run_schedules().fired == 1
    assert [j.processor for j in jobs_of(service, svc, "ops")] == [svc.sub]


def test_a_schedule_put_paused_is_not_due(service, svc, clock):
    schedule, _ = service.put_schedule(svc, "idle", {**EVERY_MINUTE, "paused": True})
    assert schedule.next_run_at is None
    clock.advance(3 * 60_000)
    assert service.run_schedules().fired == 0


def test_a_patch_changes_only_what_it_names(service, svc, clock):
    service.put_schedule(svc, "c", {"cron": "0 9 * * *", "job": {"type": "reports"}})
    assert service.schedule(svc, "c").next_run_at == "2026-11-23T09:00:00.000Z"
    zoned = service.patch_schedule(svc, "c", {"timezone": "Europe/Berlin"})  # 09:00 in Berlin, UTC+1 in November
    assert zoned.cadence.cron == "0 9 * * *" and zoned.next_run_at == "2026-11-23T08:00:00.000Z"
    every = service.patch_schedule(svc, "c", {"every_ms": 3_600_000})
    assert every.cadence.cron is None and every.cadence.every_ms == 3_600_000 and every.cadence.timezone == "Europe/Berlin"
    assert every.next_run_at == "2026-11-22T11:00:00.000Z"
    job = service.patch_schedule(svc, "c", {"job": {"type": "reports", "title": "new"}})
    assert job.job.title == "new" and job.next_run_at == every.next_run_at and job.version == 4
    with pytest.raises(InvalidRequest) as error:
        service.patch_schedule(svc, "c", {})
    assert "body" in problems(error)
    with pytest.raises(InvalidRequest) as error:
        service.patch_schedule(svc, "c", {"cron": "0 9 * * *", "every_ms": 60_000})
    assert "cron" in problems(error)
    with pytest.raises(InvalidRequest) as error:
        service.patch_schedule(svc, "c", {"timezone": "Nowhere/Land"})
    assert "timezone" in problems(error)
    with pytest.raises(NotFound):
        service.patch_schedule(svc, "missing", {"paused": True})


def test_a_cron_schedule_across_the_spring_daylight_saving_change(dynamodb, settings, svc):
    """02:30 does not exist in New York on 14 March 2027: the slot is the first minute after
    the jump (03:00 EDT), as Debian cron does; the next day is 02:30 EDT again."""
    clock = ManualClock(datetime(2027, 3, 13, 12, 0, tzinfo=UTC))
    service = Jobs(_engine(dynamodb, settings, clock))
    schedule, _ = service.put_schedule(svc, "dst", {"cron": "30 2 * * *", "timezone": "America/New_York",
                                                    "job": {"type": "reports"}})  # fmt: skip
    assert schedule.next_run_at == "2027-03-14T07:00:00.000Z"  # 03:00 EDT
    clock.advance(int((at("2027-03-14T07:00:00.000Z") - clock.now()).total_seconds() * 1000))
    assert service.run_schedules().fired == 1
    assert service.schedule(svc, "dst").next_run_at == "2027-03-15T06:30:00.000Z"  # 02:30 EDT


def test_a_cron_schedule_across_the_autumn_daylight_saving_change(dynamodb, settings, svc):
    """01:30 happens twice in New York on 7 November 2027: the job runs once, at the first."""
    clock = ManualClock(datetime(2027, 11, 6, 12, 0, tzinfo=UTC))
    service = Jobs(_engine(dynamodb, settings, clock))
    schedule, _ = service.put_schedule(svc, "fall", {"cron": "30 1 * * *", "timezone": "America/New_York",
                                                     "job": {"type": "reports"}})  # fmt: skip
    assert schedule.next_run_at == "2027-11-07T05:30:00.000Z"  # 01:30 EDT, the first one
    clock.advance(int((at("2027-11-07T05:30:00.000Z") - clock.now()).total_seconds() * 1000))
    assert service.run_schedules().fired == 1
    assert service.schedule(svc, "fall").next_run_at == "2027-11-08T06:30:00.000Z"  # 01:30 EST next day
    clock.advance(3_600_000)  # 01:30 EST on the 7th: the same wall time again, no second job
    assert service.run_schedules().fired == 0
    assert len(jobs_of(service, svc, "fall")) == 1


def test_the_scheduler_handler_runs_at_the_events_time(service, svc, engine):
    from jobcore.scheduler import event_time, run_schedules_handler
    from jobcore.wiring import wiring

    service.put_schedule(svc, "evt", EVERY_MINUTE)
    wiring.use(engine=engine)
    try:
        assert run_schedules_handler({"time": "2026-11-22T10:00:59Z"}, None)["fired"] == 0
        answer = run_schedules_handler({"time": "2026-11-22T10:05:00Z", "detail-type": "Scheduled Event"}, None)
        assert answer == {"fired": 1, "skipped": 0, "failed": 0, "more": False}
    finally:
        wiring.reset()
    assert [j.ref_id for j in jobs_of(service, svc, "evt")] == ["schedule:evt:2026-11-22T10:05:00.000Z"]
    assert event_time({}) is None and event_time({"time": "soon"}) is None and event_time({"time": 5}) is None
    assert event_time([]) is None


def test_a_run_out_of_time_leaves_the_rest_due(service, svc, clock, engine):
    for name in ("a", "b", "c"):
        service.put_schedule(svc, name, EVERY_MINUTE)
    clock.advance(60_000)
    calls = iter([True, False])
    first = engine.schedules.run_due(time_left=lambda: next(calls, False))
    assert (first.fired, first.more) == (1, True)
    second = engine.schedules.run_due()
    assert (second.fired, second.more) == (2, False)


# -- scoped tokens --------------------------------------------------------------------------


def test_a_scoped_service_reaches_only_schedules_of_its_queues(service, svc):
    scoped = Principal("svc-a", Role.SERVICE, ("a.*",))
    service.put_schedule(svc, "theirs", {"every_ms": 60_000, "job": {"type": "b"}})
    mine, _ = service.put_schedule(scoped, "mine", {"every_ms": 60_000, "job": {"type": "a.x"}})
    with pytest.raises(Forbidden):
        service.put_schedule(scoped, "other", {"every_ms": 60_000, "job": {"type": "b"}})
    with pytest.raises(Forbidden):
        service.put_schedule(scoped, "theirs", {"every_ms": 60_000, "job": {"type": "a.x"}})
    with pytest.raises(NotFound):
        service.schedule(scoped, "theirs")
    with pytest.raises(NotFound):
        service.patch_schedule(scoped, "theirs", {"paused": True})
    with pytest.raises(Forbidden):
        service.patch_schedule(scoped, "mine", {"job": {"type": "b"}})
    with pytest.raises(NotFound):
        service.delete_schedule(scoped, "theirs")
    assert [s.name for s in service.schedules(scoped).data] == ["mine"]
    assert [s.name for s in service.schedules(svc).data] == ["mine", "theirs"]
    assert service.schedule(scoped, "mine").to_wire() == mine.to_wire()
    assert not service.schedule(svc, "theirs").paused


# -- what is stored -------------------------------------------------------------------------


def test_only_active_schedules_are_in_the_due_index(service, svc, dynamodb):
    service.put_schedule(svc, "on", EVERY_MINUTE)
    service.put_schedule(svc, "off", {**EVERY_MINUTE, "paused": True})
    found = dynamodb.query(
        TableName="jobs-test", IndexName=keys.SCHEDULE_INDEX, KeyConditionExpression="PK = :pk",
        ExpressionAttributeValues={":pk": {"S": keys.SCHEDULES_PK}},
    )["Items"]  # fmt: skip
    assert [i["SK"]["S"] for i in found] == ["on"]


def test_a_queue_or_schedule_named_like_the_job_sort_key_is_not_read_as_a_job(service, svc, clock):
    from jobcore.engine.counting import effect_of
    from jobcore.live.messages import change_of
    from jobcore.store import serialize

    service.put_schedule(svc, "JOB", {"every_ms": 60_000, "job": {"type": "JOB"}})
    clock.advance(60_000)
    assert service.run_schedules().fired == 1
    for item in (service.store.get(keys.schedule_key("JOB")), service.store.get(keys.queue_name_key("JOB"))):
        assert item is not None
        record = {"eventName": "MODIFY", "dynamodb": {"Keys": serialize({"PK": item["PK"], "SK": item["SK"]}),
                  "NewImage": serialize(item), "SequenceNumber": "1"}}  # fmt: skip
        assert effect_of(record) is None and change_of(record) is None


def _engine(dynamodb: Any, settings: Any, clock: ManualClock) -> Any:
    import random

    from jobcore.engine import Engine
    from jobcore.store import TableStore
    from tests.conftest import TABLE_NAME

    return Engine(TableStore(dynamodb, TABLE_NAME), settings, clock=clock, rng=random.Random(7))


def test_slot_times_are_whole_milliseconds_in_utc(service, svc, clock):
    clock.advance(123)
    schedule, _ = service.put_schedule(svc, "ms", EVERY_MINUTE)
    assert schedule.next_run_at == to_iso(datetime(2026, 11, 22, 10, 1, tzinfo=UTC))
    assert parse_iso(schedule.next_run_at) - parse_iso(schedule.created) < timedelta(minutes=1)
