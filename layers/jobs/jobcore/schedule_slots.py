"""When recurring jobs (schedules) fire: cadence validation and slot arithmetic, with no I/O.

A cadence is either a five-field cron expression evaluated on the wall clock of an IANA zone,
or ``every_ms``: fixed periods anchored at the Unix epoch, so every runner computes the same
slots without sharing state. Cron matching and daylight-saving handling are cronsim's; this
module only chooses where to start it and keeps its answers in real (UTC) time order.

The scheduler's contract: a schedule stores ``next_run_at``. A run at ``now`` that finds
``next_run_at <= now`` creates one job for ``latest_slot(cadence, now)`` with ref_id
``slot_ref_id(name, slot)``, then stores ``next_run_at = next_slot(cadence, now)``. After
downtime only the latest missed slot runs (no burst of catch-up jobs), and because the ref_id
is derived from the slot, a retried or concurrent run of the same slot creates the job once.

Daylight saving follows cronsim, which mimics Debian cron: a job at a fixed time that falls
in the skipped hour runs once, at the first valid minute after the jump (02:30 becomes 03:00);
a fixed-time job in the repeated hour runs once, at the first occurrence. Jobs whose minute
or hour field starts with ``*`` ("0 * * * *") follow real time: one slot per real hour,
the repeated hour runs twice, the skipped hour not at all.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Final, Literal
from zoneinfo import ZoneInfo, available_timezones

from cronsim import CronSim, CronSimError
from msgspec import Struct

from jobcore.clock import EPOCH, to_iso

CadenceField = Literal["cron", "every_ms", "timezone"]

MIN_EVERY_MS: Final = 60_000
MAX_EVERY_MS: Final = 31_622_400_000  # 366 days
MAX_CRON_LENGTH: Final = 200
MAX_TIMEZONE_LENGTH: Final = 64
# A valid cron must fire this soon after validation; it also rejects what can never fire
# (30 February), which cronsim would otherwise search for 50 years before giving up.
FIRE_HORIZON: Final = timedelta(days=5 * 366)

# IANA names are letters, digits, "_", "+", "-" in "/"-separated parts: no dots, so no paths.
_ZONE_NAME = re.compile(r"[A-Za-z0-9_+\-]+(?:/[A-Za-z0-9_+\-]+)*")
# Present in the zone list on some hosts, but it means "this machine's zone", not a place.
_HOST_ZONES: Final = frozenset({"localtime"})
# In a repeated hour, cronsim (wall clock) can yield times that are earlier in real time than
# where it started; a repeated window holds at most 2 hours x 60 minutes of such slots.
_MAX_STRAYS: Final = 4 * 60
_ONE_SECOND: Final = timedelta(seconds=1)
_ONE_MICROSECOND: Final = timedelta(microseconds=1)

NEVER_FIRES: Final = "cron never fires"


class CadenceError(ValueError):
    """A cadence the service refuses; ``message`` is fit for a 400 answer about ``field``."""

    def __init__(self, field: CadenceField, message: str) -> None:
        super().__init__(message)
        self.field: CadenceField = field
        self.message = message

    def __reduce__(self) -> tuple[type[CadenceError], tuple[CadenceField, str]]:
        return (type(self), (self.field, self.message))


class Cadence(Struct, frozen=True):
    """Exactly one of ``cron`` / ``every_ms`` is set; build it with parse_cadence."""

    cron: str | None
    every_ms: int | None
    timezone: str


def parse_cadence(cron: object, every_ms: object, timezone: object = "UTC", *, now: datetime | None = None) -> Cadence:
    """Validate JSON-decoded values into a Cadence, or raise CadenceError naming the field.

    ``now`` (default: the system time) is where the check that a cron fires within
    FIRE_HORIZON starts; tests pass it to stay deterministic.
    """
    if cron is not None and every_ms is not None:
        raise CadenceError("every_ms", "give either cron or every_ms, not both")
    if cron is None and every_ms is None:
        raise CadenceError("cron", "one of cron or every_ms is required")
    zone_name = _parse_timezone(timezone)
    if every_ms is not None:
        return Cadence(cron=None, every_ms=_parse_every_ms(every_ms), timezone=zone_name)
    expr = _parse_cron(cron, _zone(zone_name), now or datetime.now(UTC))
    return Cadence(cron=expr, every_ms=None, timezone=zone_name)


def next_slot(cadence: Cadence, after: datetime) -> datetime:
    """The first slot strictly after ``after``, as aware UTC with whole milliseconds."""
    after_utc = _aware_utc(after, "after")
    if cadence.every_ms is not None:
        period = _period(cadence)
        return _from_epoch_us((_epoch_us(after_utc) // period + 1) * period)
    slot = _cron_next(_cron(cadence), _zone(cadence.timezone), after_utc)
    if slot is None:
        raise CadenceError("cron", NEVER_FIRES)
    return slot


def latest_slot(cadence: Cadence, at_or_before: datetime) -> datetime | None:
    """The last slot at or before ``at_or_before`` (aware UTC, whole ms), None if none is found.

    Cron searches back at most cronsim's 50 years.
    """
    moment = _aware_utc(at_or_before, "at_or_before")
    if cadence.every_ms is not None:
        period = _period(cadence)
        try:
            return _from_epoch_us(_epoch_us(moment) // period * period)
        except OverflowError:  # before year 1
            return None
    expr = _cron(cadence)
    zone = _zone(cadence.timezone)
    # The slots are those next_slot steps through. cronsim's reverse search only proposes a
    # start: around a repeated hour it can land early, and with a 30-minute shift
    # (Australia/Lord_Howe, "0 */2 * * *") it can name a time forward iteration skips.
    for candidate in _cron_previous(expr, zone, moment):
        slot = _cron_next(expr, zone, candidate - _ONE_SECOND)
        if slot is None or slot > moment:
            continue  # not a forward slot, and none follows it up to `moment`: look further back
        while (following := _cron_next(expr, zone, slot)) is not None and following <= moment:
            slot = following
        return slot
    return None


def slot_ref_id(name: str, slot: datetime) -> str:
    """The job ref_id of one slot of a schedule, e.g. ``schedule:nightly:2026-11-22T10:00:00.000Z``."""
    return f"schedule:{name}:{to_iso(_aware_utc(slot, 'slot'))}"


# --- validation -------------------------------------------------------------------------------


def _parse_timezone(value: object) -> str:
    if not isinstance(value, str):
        raise CadenceError("timezone", "timezone must be a string naming an IANA zone, e.g. Europe/Berlin")
    if not 0 < len(value) <= MAX_TIMEZONE_LENGTH:
        raise CadenceError("timezone", f"timezone must be 1 to {MAX_TIMEZONE_LENGTH} characters")
    _zone(value)
    return value


def _zone(name: str) -> ZoneInfo:
    # The message never echoes the value: it may hold anything, even lone surrogates.
    unknown = CadenceError("timezone", "timezone is not a known IANA zone name, e.g. Europe/Berlin or UTC")
    if len(name) > MAX_TIMEZONE_LENGTH or not _ZONE_NAME.fullmatch(name) or name in _HOST_ZONES:
        raise unknown
    if name not in _known_zones():
        raise unknown
    try:
        return ZoneInfo(name)
    except Exception as exc:  # ZoneInfoNotFoundError, ValueError, OSError on a broken zone file
        raise unknown from exc


@lru_cache(maxsize=1)
def _known_zones() -> frozenset[str]:
    # An allow-list: ZoneInfo alone would also load non-zone files and, on some file systems,
    # case-folded names.
    return frozenset(available_timezones())


def _parse_every_ms(value: object) -> int:
    # bool is an int subclass, and JSON true must not mean one millisecond.
    if isinstance(value, bool) or not isinstance(value, int):
        raise CadenceError("every_ms", "every_ms must be an integer number of milliseconds")
    if not MIN_EVERY_MS <= value <= MAX_EVERY_MS:
        raise CadenceError("every_ms", f"every_ms must be between {MIN_EVERY_MS} (one minute) and {MAX_EVERY_MS} (366 days)")
    return int(value)


def _parse_cron(value: object, zone: ZoneInfo, now: datetime) -> str:
    if not isinstance(value, str):
        raise CadenceError("cron", "cron must be a string")
    if len(value) > MAX_CRON_LENGTH:
        raise CadenceError("cron", f"cron must be at most {MAX_CRON_LENGTH} characters")
    if not value.isascii():
        # cronsim upper-cases before matching names, and "\u017fun".upper() == "SUN" (long s).
        raise CadenceError("cron", "cron may contain only ASCII characters")
    # Split exactly as cronsim does, so the field count it sees is the one checked here.
    fields = value.split()
    if fields and fields[0].startswith("@"):
        raise CadenceError("cron", "cron nicknames such as @daily are not supported; write the five fields")
    if len(fields) != 5:
        raise CadenceError("cron", "cron must have five fields (minute hour day month weekday)")
    expr = " ".join(fields)
    try:
        CronSim(expr, EPOCH)
    except Exception as exc:
        raise _cron_error(exc, expr) from exc
    first = _cron_next(expr, zone, _aware_utc(now, "now"))
    if first is None or first - now > FIRE_HORIZON:
        raise CadenceError("cron", NEVER_FIRES)
    return expr


def _cron_error(exc: Exception, expr: str) -> CadenceError:
    """Explain why cronsim refused ``expr``."""
    fields = expr.split()
    if len(fields) != 5:
        return CadenceError("cron", "cron must have five fields (minute hour day month weekday)")
    minute, hour, day, month, weekday = fields
    if _cronsim_accepts(f"{minute} {hour} {day} * {weekday}") and _cronsim_accepts(f"0 0 1 {month} *"):
        # Every field parses alone: cronsim refused the day and month together (30 February).
        return CadenceError("cron", NEVER_FIRES)
    if isinstance(exc, CronSimError) and str(exc).startswith("Bad "):
        return CadenceError("cron", f"cron has an invalid {str(exc).removeprefix('Bad ')} field")
    return CadenceError("cron", "cron is not a valid cron expression")


def _cronsim_accepts(expr: str) -> bool:
    try:
        CronSim(expr, EPOCH)
    except Exception:
        return False
    return True


# --- slot arithmetic --------------------------------------------------------------------------


def _aware_utc(moment: datetime, name: str) -> datetime:
    if not isinstance(moment, datetime) or moment.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime")
    return moment.astimezone(UTC)


def _period(cadence: Cadence) -> int:
    """every_ms in microseconds, the unit of exact datetime arithmetic."""
    every_ms = cadence.every_ms
    if isinstance(every_ms, bool) or not isinstance(every_ms, int) or every_ms <= 0:
        raise CadenceError("every_ms", "every_ms must be a positive integer number of milliseconds")
    return every_ms * 1000


def _epoch_us(moment: datetime) -> int:
    return (moment - EPOCH) // _ONE_MICROSECOND


def _from_epoch_us(us: int) -> datetime:
    return EPOCH + timedelta(microseconds=us)


def _cron(cadence: Cadence) -> str:
    if cadence.cron is None:
        raise CadenceError("cron", "one of cron or every_ms is required")
    return cadence.cron


def _cronsim(expr: str, start: datetime, zone: ZoneInfo, *, reverse: bool) -> Iterator[datetime]:
    """cronsim's slots from ``start`` (UTC, whole seconds) on, in UTC; errors become CadenceError."""
    try:
        iterator = CronSim(expr, start.astimezone(zone), reverse=reverse)
    except Exception as exc:
        error = _cron_error(exc, expr)
        if error.message == NEVER_FIRES:
            return  # no slots at all, as for a search that finds none
        raise error from exc
    while True:
        try:
            found = next(iterator)
        except (StopIteration, OverflowError):  # nothing within 50 years, or past year 1 / 9999
            return
        yield found.astimezone(UTC)


def _cron_next(expr: str, zone: ZoneInfo, after: datetime) -> datetime | None:
    # cronsim ticks one second before matching: starting at the whole second of `after`
    # yields slots >= that second + 1s, i.e. strictly after `after`.
    slots = _cronsim(expr, after.replace(microsecond=0), zone, reverse=False)
    for _, slot in zip(range(_MAX_STRAYS), slots, strict=False):
        if slot > after:
            return slot
    # Either cronsim gave up (no slot in 50 years) or it kept answering times in the past.
    return None


def _cron_previous(expr: str, zone: ZoneInfo, at_or_before: datetime) -> Iterator[datetime]:
    """cronsim's reverse answers at or before ``at_or_before``, latest first (a bounded few)."""
    # Reverse iteration ticks one second back first: start one second past the whole second
    # of `at_or_before` so a slot exactly on it is found.
    slots = _cronsim(expr, at_or_before.replace(microsecond=0) + _ONE_SECOND, zone, reverse=True)
    for _, slot in zip(range(_MAX_STRAYS), slots, strict=False):
        if slot <= at_or_before:
            yield slot
