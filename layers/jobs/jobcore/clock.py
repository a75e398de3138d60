"""Time: one injectable clock, and the wire format of times.

Lambda clocks decide time. Tests inject a ManualClock and move time instead of sleeping.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware UTC, truncated to milliseconds."""
        ...

    def sleep(self, seconds: float) -> None:
        """Wait; a manual clock advances instead."""
        ...


def truncate_ms(moment: datetime) -> datetime:
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


class SystemClock:
    def now(self) -> datetime:
        return truncate_ms(datetime.now(UTC))

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


class ManualClock:
    """A clock that moves only when told to; thread-safe."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = truncate_ms(start or datetime(2026, 11, 22, 10, 0, tzinfo=UTC))
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, ms: int) -> datetime:
        with self._lock:
            self._now += timedelta(milliseconds=ms)
            return self._now

    def sleep(self, seconds: float) -> None:
        self.advance(max(1, round(seconds * 1000)))


def to_iso(moment: datetime) -> str:
    """Wire and storage format: fixed width, so strings sort as times do."""
    utc = moment.astimezone(UTC)
    # Not strftime("%Y"): it writes year 328 as "328", which neither parses nor sorts.
    return f"{utc.year:04d}-" + utc.strftime("%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def parse_iso(text: str) -> datetime:
    """Parse an ISO-8601 time; naive times are refused, offsets are converted to UTC."""
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        raise ValueError("time must carry a zone (Z or an offset)")
    return truncate_ms(moment.astimezone(UTC))


def plus_ms(moment: datetime, ms: int) -> datetime:
    return moment + timedelta(milliseconds=ms)


def epoch_seconds(moment: datetime) -> int:
    return int((moment - EPOCH).total_seconds())
