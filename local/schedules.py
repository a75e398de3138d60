"""Scheduled events: each function's `Events` of Type Schedule (an EventBridge rule) or
ScheduleV2 (EventBridge Scheduler), invoked on their schedule as AWS invokes them.

Expressions: `rate(n minute|minutes|hour|hours|day|days)` and `cron(minutes hours
day-of-month month day-of-week year)` (AWS's six fields; `?` read as `*`, the year ignored),
in UTC or ScheduleV2's ScheduleExpressionTimezone. `Enabled: false` and `State: DISABLED`
turn an event off. The event is `Input` (JSON text) when given, else the scheduled-event
shape: id, detail-type "Scheduled Event", source, account, `time` (the scheduled minute, whole
seconds), region, resources, detail {}.

JOBS_LOCAL_SCHEDULE_SPEED (tests, default 1): the schedules' clock runs that many times
faster than real time from the moment the local cloud starts, so at 60 a `rate(1 minute)`
event comes every second, each with a `time` one minute after the last.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from cronsim import CronSim, CronSimError

from .resolve import REGION

if TYPE_CHECKING:
    from .config import Stage

_RATE = re.compile(r"^rate\(\s*(\d+)\s+(minute|minutes|hour|hours|day|days)\s*\)$")
_CRON = re.compile(r"^cron\((.+)\)$")
_UNIT_S = {"minute": 60, "minutes": 60, "hour": 3600, "hours": 3600, "day": 86400, "days": 86400}
ACCOUNT = "123456789012"


@dataclass(frozen=True)
class ScheduledEvent:
    function: str
    event_name: str
    expression: str
    timezone: str
    input: str | None
    source: str  # aws.events (Schedule) or aws.scheduler (ScheduleV2)

    def following(self, after: datetime) -> datetime:
        """The first firing strictly after `after` (aware UTC)."""
        rate = _RATE.match(self.expression.strip())
        if rate:
            period = int(rate.group(1)) * _UNIT_S[rate.group(2)]
            seconds = int(after.timestamp()) // period * period + period
            return datetime.fromtimestamp(seconds, UTC)
        cron = _CRON.match(self.expression.strip())
        assert cron is not None
        zone = ZoneInfo(self.timezone)
        fields = cron.group(1).split()
        local = after.astimezone(zone).replace(second=0, microsecond=0)
        # cronsim takes the five fields of Unix cron; "?" there means "any", as "*".
        five = " ".join(f.replace("?", "*") for f in fields[:5])
        return next(iter(CronSim(five, local))).astimezone(UTC)

    def event(self, at: datetime) -> Any:
        if self.input is not None:
            return json.loads(self.input)
        return {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": "Scheduled Event",
            "source": self.source,
            "account": ACCOUNT,
            "time": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": REGION,
            "resources": [f"arn:aws:events:{REGION}:{ACCOUNT}:rule/{self.function}-{self.event_name}"],
            "detail": {},
        }


def scheduled_events(template: dict[str, Any]) -> list[ScheduledEvent]:
    """The template's Schedule and ScheduleV2 events that are on; a bad expression is an error."""
    found = []
    for name, resource in (template.get("Resources") or {}).items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        for event_name, event in ((resource.get("Properties") or {}).get("Events") or {}).items():
            kind = event.get("Type")
            if kind not in ("Schedule", "ScheduleV2"):
                continue
            props = event.get("Properties") or {}
            if props.get("Enabled") is False or props.get("State") == "DISABLED":
                continue
            expression = str(props.get("Schedule") if kind == "Schedule" else props.get("ScheduleExpression"))
            timezone = str(props.get("ScheduleExpressionTimezone") or "UTC") if kind == "ScheduleV2" else "UTC"
            source = "aws.events" if kind == "Schedule" else "aws.scheduler"
            scheduled = ScheduledEvent(name, event_name, expression, timezone, props.get("Input"), source)
            _check(scheduled)
            found.append(scheduled)
    return found


def _check(scheduled: ScheduledEvent) -> None:
    expression = scheduled.expression.strip()
    if not _RATE.match(expression) and not _CRON.match(expression):
        raise ValueError(f"{scheduled.function}.{scheduled.event_name}: unsupported schedule {expression!r}")
    try:
        scheduled.following(datetime.now(UTC))
    except (CronSimError, StopIteration, KeyError, ValueError) as error:
        raise ValueError(f"{scheduled.function}.{scheduled.event_name}: bad schedule {expression!r}: {error}") from None


class ScheduleClock:
    """The schedules' time: real time, or `speed` times faster from `start`."""

    def __init__(self, speed: float, start: float | None = None) -> None:
        self.speed = speed
        self.start = time.time() if start is None else start

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.start + (time.time() - self.start) * self.speed, UTC)

    def real_seconds_until(self, moment: datetime) -> float:
        return max(0.0, (moment - self.now()).total_seconds() / self.speed)


def run_schedule(stage: Stage, scheduled: ScheduledEvent, clock: ScheduleClock, stop: threading.Event) -> None:
    """Invoke the function at every firing until stopped; one invocation at a time (a slow one
    delays the next firing, it is never doubled up)."""
    at = scheduled.following(clock.now())
    while not stop.wait(clock.real_seconds_until(at)):
        outcome = stage.runtimes[scheduled.function].invoke(scheduled.event(at))
        if not outcome.ok:
            stage.log(f"[schedule] {scheduled.function}: {outcome.error_message}")
            for line in outcome.logs:
                stage.log(line)
        elif stage.config.log_format == "json":
            stage.log(f"[schedule] {scheduled.function}: ran for {at.isoformat()}")
        # The next firing; the ones an invocation outlasted are skipped, not made up for.
        at = scheduled.following(at)
        if at < clock.now():
            at = scheduled.following(clock.now())


def start_schedules(stage: Stage) -> Callable[[], None]:
    """A thread per scheduled event of the template; returns their stopper."""
    stop = threading.Event()
    clock = ScheduleClock(stage.config.schedule_speed)
    threads = []
    for scheduled in scheduled_events(stage.template):
        runner = _guarded(stage, scheduled, clock, stop)
        threads.append(threading.Thread(target=runner, name=f"schedule-{scheduled.function}", daemon=True))
    for thread in threads:
        thread.start()

    def stopper() -> None:
        stop.set()
        for thread in threads:
            thread.join(timeout=10)

    return stopper


def _guarded(stage: Stage, scheduled: ScheduledEvent, clock: ScheduleClock, stop: threading.Event) -> Callable[[], None]:
    def run() -> None:
        try:
            run_schedule(stage, scheduled, clock, stop)
        except Exception as error:
            if not stop.is_set():
                stage.log(f"[schedule] {scheduled.function} stopped: {error}")

    return run
