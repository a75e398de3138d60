"""Schedule cadences and times for the schedule-slot tests (test_schedule_cadence.py,
test_schedule_slots.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from jobcore.schedule_slots import Cadence, parse_cadence

NOW = datetime(2026, 1, 1, tzinfo=UTC)
NEW_YORK = ZoneInfo("America/New_York")
BERLIN = ZoneInfo("Europe/Berlin")


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def cron(expr: str, timezone: str = "UTC") -> Cadence:
    return parse_cadence(expr, None, timezone, now=NOW)


def every(ms: int, timezone: str = "UTC") -> Cadence:
    return parse_cadence(None, ms, timezone)
