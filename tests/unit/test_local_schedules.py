"""The local cloud's scheduled events: which template events it serves, when each fires, the
event it sends, and its faster clock for tests."""

from __future__ import annotations

import itertools
import threading
from datetime import UTC, datetime
from typing import Any

import pytest

from localcloud.schedules import ScheduleClock, ScheduledEvent, run_schedule, scheduled_events
from localcloud.template import load_template


def template_with(events: dict[str, Any]) -> dict[str, Any]:
    return {"Resources": {"Fn": {"Type": "AWS::Serverless::Function", "Properties": {"Events": events}},
                          "Other": {"Type": "AWS::SQS::Queue"}}}  # fmt: skip


def test_the_templates_scheduler_runs_every_minute():
    (scheduled,) = scheduled_events(load_template())
    assert (scheduled.function, scheduled.expression, scheduled.source) == (
        "RunSchedulesFunction",
        "rate(1 minute)",
        "aws.events",
    )


def test_rates_fire_on_whole_periods_since_the_epoch():
    every_5 = ScheduledEvent("Fn", "E", "rate(5 minutes)", "UTC", None, "aws.events")
    assert every_5.following(datetime(2026, 11, 22, 10, 3, 10, tzinfo=UTC)) == datetime(2026, 11, 22, 10, 5, tzinfo=UTC)
    assert every_5.following(datetime(2026, 11, 22, 10, 5, tzinfo=UTC)) == datetime(2026, 11, 22, 10, 10, tzinfo=UTC)
    daily = ScheduledEvent("Fn", "E", "rate(1 day)", "UTC", None, "aws.events")
    assert daily.following(datetime(2026, 11, 22, 10, 0, tzinfo=UTC)) == datetime(2026, 11, 23, tzinfo=UTC)


def test_aws_cron_is_read_with_its_question_marks_and_time_zone():
    weekdays = ScheduledEvent("Fn", "E", "cron(30 2 ? * MON-FRI *)", "UTC", None, "aws.events")
    # Sunday 22 November 2026: the next weekday 02:30 is Monday's.
    assert weekdays.following(datetime(2026, 11, 22, 10, 0, tzinfo=UTC)) == datetime(2026, 11, 23, 2, 30, tzinfo=UTC)
    berlin = ScheduledEvent("Fn", "E", "cron(0 9 * * ? *)", "Europe/Berlin", None, "aws.scheduler")
    assert berlin.following(datetime(2026, 11, 22, 10, 0, tzinfo=UTC)) == datetime(2026, 11, 23, 8, 0, tzinfo=UTC)


def test_the_event_is_the_scheduled_event_shape_or_the_given_input():
    plain = ScheduledEvent("Fn", "Tick", "rate(1 minute)", "UTC", None, "aws.events")
    event = plain.event(datetime(2026, 11, 22, 10, 1, tzinfo=UTC))
    assert (event["detail-type"], event["source"], event["time"], event["detail"]) == (
        "Scheduled Event", "aws.events", "2026-11-22T10:01:00Z", {})  # fmt: skip
    given = ScheduledEvent("Fn", "Tick", "rate(1 minute)", "UTC", '{"job": "sweep"}', "aws.scheduler")
    assert given.event(datetime(2026, 11, 22, 10, 1, tzinfo=UTC)) == {"job": "sweep"}


def test_disabled_events_and_other_event_types_are_not_served():
    events = {
        "Off": {"Type": "Schedule", "Properties": {"Schedule": "rate(1 minute)", "Enabled": False}},
        "OffV2": {"Type": "ScheduleV2", "Properties": {"ScheduleExpression": "rate(1 minute)", "State": "DISABLED"}},
        "On": {
            "Type": "ScheduleV2",
            "Properties": {"ScheduleExpression": "rate(2 minutes)", "ScheduleExpressionTimezone": "Asia/Tokyo"},
        },
        "Http": {"Type": "HttpApi", "Properties": {}},
    }
    (served,) = scheduled_events(template_with(events))
    assert (served.event_name, served.expression, served.timezone, served.source) == (
        "On", "rate(2 minutes)", "Asia/Tokyo", "aws.scheduler")  # fmt: skip


@pytest.mark.parametrize("expression", ["every minute", "rate(1 fortnight)", "cron(61 * * * ? *)", "rate(-1 minutes)"])
def test_a_schedule_the_local_cloud_cannot_serve_stops_it_at_start(expression):
    with pytest.raises(ValueError, match=r"Fn\.Tick"):
        scheduled_events(template_with({"Tick": {"Type": "Schedule", "Properties": {"Schedule": expression}}}))


def test_the_clock_runs_faster_from_its_start():
    clock = ScheduleClock(60, start=0)
    ahead = clock.now().timestamp()
    import time

    assert ahead >= time.time() * 60 - 60 * 5  # 60 times the seconds since the epoch (within 5 s)
    slow = ScheduleClock(1)
    assert abs(slow.now().timestamp() - time.time()) < 5
    assert clock.real_seconds_until(datetime(1970, 1, 1, tzinfo=UTC)) == 0.0


class _Runtime:
    def __init__(self, stop: threading.Event, wanted: int) -> None:
        self.events: list[Any] = []
        self.stop, self.wanted = stop, wanted

    def invoke(self, event: Any) -> Any:
        self.events.append(event)
        if len(self.events) >= self.wanted:
            self.stop.set()
        return type("Outcome", (), {"ok": True, "logs": [], "error_message": None})()


def test_a_fast_schedule_fires_each_period_with_the_next_time():
    stop = threading.Event()
    runtime = _Runtime(stop, 3)
    stage = type("Stage", (), {"runtimes": {"Fn": runtime}, "log": print,
                               "config": type("Config", (), {"log_format": "compact"})()})()  # fmt: skip
    scheduled = ScheduledEvent("Fn", "Tick", "rate(1 minute)", "UTC", None, "aws.events")
    thread = threading.Thread(target=run_schedule, args=(stage, scheduled, ScheduleClock(600), stop))
    thread.start()
    thread.join(timeout=120)
    assert not thread.is_alive()
    times = [datetime.fromisoformat(e["time"].replace("Z", "+00:00")) for e in runtime.events]
    assert len(times) == 3 and all(t.second == 0 for t in times)
    assert all((b - a).total_seconds() % 60 == 0 and b > a for a, b in itertools.pairwise(times))
