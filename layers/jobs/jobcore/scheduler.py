"""The scheduler's Lambda handler: every minute (an EventBridge schedule in template.yaml),
create the job of each due schedule's slot (engine/schedules.py).

The run's moment is the event's `time`, the minute EventBridge scheduled it for, not the
moment the function happens to start: a retried event computes the same slots, and the local
cloud can run scheduled events on a faster clock for tests. An event without a valid time
(a manual test invoke) runs at the current time.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

# boto3 first, at a shallow call depth: why in jobcore/http.py.
import boto3  # noqa: F401
from msgspec.structs import asdict

from .clock import parse_iso
from .observability import flush_metrics, logger, metrics_counter
from .wiring import wiring

# Stop starting schedules when the invocation has less than this left: the rest are due
# still, and the next run takes them.
RESERVE_MS = 5_000


def event_time(event: Any) -> datetime | None:
    """The scheduled time of an EventBridge event; None if it carries none."""
    value = event.get("time") if isinstance(event, dict) else None
    if not isinstance(value, str) or len(value) > 64:
        return None
    try:
        return parse_iso(value)
    except (ValueError, OverflowError):
        return None


def run_schedules_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    logger.clear_state()
    remaining = getattr(context, "get_remaining_time_in_millis", None)

    def time_left() -> bool:
        return remaining is None or remaining() > RESERVE_MS

    try:
        run = wiring.engine().schedules.run_due(event_time(event), time_left=time_left)
        logger.info("schedules run", extra=asdict(run))
        metrics_counter("ScheduleSlotsRun", run.fired)
        metrics_counter("ScheduleRunsFailed", run.failed)
        return asdict(run)
    finally:
        flush_metrics()
