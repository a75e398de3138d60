"""Schedule slots: epoch-anchored every_ms slots, cron slots on a zone's
wall clock across daylight-saving changes, and the scheduler's latest-missed-slot contract. Cadence
validation: test_schedule_cadence.py."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from jobcore.clock import EPOCH
from jobcore.schedule_slots import (
    MAX_EVERY_MS,
    Cadence,
    CadenceError,
    latest_slot,
    next_slot,
    parse_cadence,
    slot_ref_id,
)
from tests.support.cadences import BERLIN, NEW_YORK, NOW, cron, every, utc


def slots_between(cadence: Cadence, start: datetime, end: datetime) -> list[datetime]:
    """Every slot in [start, end), found by stepping next_slot as the scheduler does."""
    found: list[datetime] = []
    slot = next_slot(cadence, start - timedelta(milliseconds=1))
    while slot < end:
        found.append(slot)
        slot = next_slot(cadence, slot)
    return found


def slots_on_local_day(cadence: Cadence, day: date, zone: ZoneInfo) -> list[datetime]:
    start = datetime.combine(day, datetime.min.time(), tzinfo=zone).astimezone(UTC)
    end = datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=zone).astimezone(UTC)
    return slots_between(cadence, start, end)


def ms_since_epoch(moment: datetime) -> int:
    return (moment - EPOCH) // timedelta(milliseconds=1)


def assert_whole_ms_utc(moment: datetime) -> None:
    assert moment.tzinfo is UTC
    assert moment.microsecond % 1000 == 0


# --- every_ms -------------------------------------------------------------------------------------


def test_every_minute_fires_on_each_whole_minute() -> None:
    cadence = every(60_000)
    assert next_slot(cadence, utc("2026-11-22T10:00:30.123Z")) == utc("2026-11-22T10:01:00Z")
    assert latest_slot(cadence, utc("2026-11-22T10:00:30.123Z")) == utc("2026-11-22T10:00:00Z")


def test_every_ms_next_slot_is_strictly_after_a_time_on_a_slot() -> None:
    cadence = every(60_000)
    on_slot = utc("2026-11-22T10:00:00Z")
    assert next_slot(cadence, on_slot) == utc("2026-11-22T10:01:00Z")
    assert latest_slot(cadence, on_slot) == on_slot
    assert next_slot(cadence, on_slot - timedelta(microseconds=1)) == on_slot
    assert latest_slot(cadence, on_slot - timedelta(microseconds=1)) == utc("2026-11-22T09:59:00Z")


def test_every_ms_slots_are_multiples_of_the_period_since_the_epoch() -> None:
    cadence = every(60_001)  # not a whole second: slots keep millisecond precision
    after = utc("2026-11-22T10:00:00Z")
    slot = next_slot(cadence, after)
    assert ms_since_epoch(slot) % 60_001 == 0
    assert after < slot <= after + timedelta(milliseconds=60_001)
    assert_whole_ms_utc(slot)
    assert slot.microsecond != 0
    latest = latest_slot(cadence, after)
    assert latest is not None
    assert latest <= after < next_slot(cadence, latest) == slot == latest + timedelta(milliseconds=60_001)


def test_every_ms_ignores_the_timezone_and_accepts_any_aware_time() -> None:
    in_kolkata = every(3_600_000, "Asia/Kolkata")
    assert in_kolkata.timezone == "Asia/Kolkata"
    after = datetime(2026, 11, 22, 15, 40, tzinfo=ZoneInfo("Asia/Kolkata"))  # 10:10Z
    assert next_slot(in_kolkata, after) == next_slot(every(3_600_000), after) == utc("2026-11-22T11:00:00Z")
    assert_whole_ms_utc(next_slot(in_kolkata, after))


def test_every_ms_latest_slot_after_a_long_gap_is_only_the_latest() -> None:
    cadence = every(300_000)
    next_run_at = utc("2026-11-22T10:00:00Z")
    now = next_run_at + timedelta(days=3, seconds=17, milliseconds=5)  # the scheduler was down
    assert next_run_at <= now
    assert latest_slot(cadence, now) == utc("2026-11-25T10:00:00Z")
    assert next_slot(cadence, now) == utc("2026-11-25T10:05:00Z")


def test_every_ms_longest_period_is_anchored_at_the_epoch_too() -> None:
    cadence = every(MAX_EVERY_MS)
    assert latest_slot(cadence, utc("1970-01-01T00:00:00Z")) == EPOCH
    assert next_slot(cadence, EPOCH) == EPOCH + timedelta(days=366)


# --- cron in UTC and in a zone ----------------------------------------------------------------------


def test_cron_in_utc() -> None:
    cadence = cron("0 9 * * 1-5")
    sunday = utc("2026-11-22T10:00:00Z")
    assert next_slot(cadence, sunday) == utc("2026-11-23T09:00:00Z")  # Monday
    assert latest_slot(cadence, sunday) == utc("2026-11-20T09:00:00Z")  # Friday
    assert next_slot(cadence, utc("2026-11-23T09:00:00Z")) == utc("2026-11-24T09:00:00Z")
    assert latest_slot(cadence, utc("2026-11-23T09:00:00Z")) == utc("2026-11-23T09:00:00Z")
    assert_whole_ms_utc(next_slot(cadence, utc("2026-11-23T08:59:59.999Z")))


def test_cron_in_berlin_follows_the_wall_clock_in_winter_and_summer() -> None:
    cadence = cron("0 9 * * 1-5", "Europe/Berlin")
    assert next_slot(cadence, utc("2026-01-04T12:00:00Z")) == utc("2026-01-05T08:00:00Z")  # CET, UTC+1
    assert next_slot(cadence, utc("2026-07-05T12:00:00Z")) == utc("2026-07-06T07:00:00Z")  # CEST, UTC+2


def test_cron_latest_slot_after_a_long_gap_is_only_the_latest() -> None:
    cadence = cron("0 * * * *", "Europe/Berlin")
    next_run_at = utc("2026-11-22T10:00:00Z")
    now = utc("2026-11-29T17:42:10.250Z")
    assert latest_slot(cadence, now) == utc("2026-11-29T17:00:00Z")
    assert next_slot(cadence, now) == utc("2026-11-29T18:00:00Z")
    assert next_run_at <= now


def test_cron_accepts_any_aware_after() -> None:
    cadence = cron("0 9 * * *", "Europe/Berlin")
    in_tokyo = datetime(2026, 1, 5, 17, 30, tzinfo=ZoneInfo("Asia/Tokyo"))  # 08:30Z = 09:30 Berlin
    assert next_slot(cadence, in_tokyo) == utc("2026-01-06T08:00:00Z")
    assert latest_slot(cadence, in_tokyo) == utc("2026-01-05T08:00:00Z")


# --- daylight saving ----------------------------------------------------------------------------------
# cronsim mimics Debian cron. For a job at a fixed time (neither the minute nor the hour field starts
# with "*") it walks the wall clock: a time in the skipped hour runs once, at the first minute that
# exists after the jump (02:30 -> 03:00), and a time in the repeated hour runs once, at its first
# occurrence (the summer-time one). Jobs with "*" in the minute or hour field walk real time instead.


def test_new_york_spring_forward_daily_job_in_the_skipped_hour_runs_once_at_three() -> None:
    cadence = cron("30 2 * * *", "America/New_York")
    # 02:00 EST jumps to 03:00 EDT at 07:00Z: 02:30 does not exist that day.
    assert slots_on_local_day(cadence, date(2026, 3, 8), NEW_YORK) == [utc("2026-03-08T07:00:00Z")]
    assert slots_between(cadence, utc("2026-03-07T00:00:00Z"), utc("2026-03-10T00:00:00Z")) == [
        utc("2026-03-07T07:30:00Z"),  # 02:30 EST
        utc("2026-03-08T07:00:00Z"),  # 03:00 EDT, the first minute after the jump
        utc("2026-03-09T06:30:00Z"),  # 02:30 EDT
    ]


def test_new_york_fall_back_daily_job_in_the_repeated_hour_runs_once() -> None:
    cadence = cron("30 1 * * *", "America/New_York")
    # 02:00 EDT falls back to 01:00 EST at 06:00Z: 01:30 happens at 05:30Z and again at 06:30Z.
    assert slots_on_local_day(cadence, date(2026, 11, 1), NEW_YORK) == [utc("2026-11-01T05:30:00Z")]
    # From inside the second 01:xx the slot of that day is behind: next is tomorrow, latest is 05:30Z.
    second_pass = utc("2026-11-01T06:10:00Z")  # 01:10 EST
    assert next_slot(cadence, second_pass) == utc("2026-11-02T06:30:00Z")
    assert latest_slot(cadence, second_pass) == utc("2026-11-01T05:30:00Z")
    assert latest_slot(cadence, utc("2026-11-01T06:45:00Z")) == utc("2026-11-01T05:30:00Z")


def test_berlin_spring_forward_daily_job_in_the_skipped_hour_runs_once_at_three() -> None:
    cadence = cron("30 2 * * *", "Europe/Berlin")
    # 02:00 CET jumps to 03:00 CEST at 01:00Z.
    assert slots_on_local_day(cadence, date(2026, 3, 29), BERLIN) == [utc("2026-03-29T01:00:00Z")]
    assert next_slot(cadence, utc("2026-03-28T01:30:00Z")) == utc("2026-03-29T01:00:00Z")
    assert latest_slot(cadence, utc("2026-03-29T01:00:00Z")) == utc("2026-03-29T01:00:00Z")
    assert latest_slot(cadence, utc("2026-03-29T00:59:59.999Z")) == utc("2026-03-28T01:30:00Z")
    assert next_slot(cadence, utc("2026-03-29T01:00:00Z")) == utc("2026-03-30T00:30:00Z")


def test_berlin_fall_back_daily_job_in_the_repeated_hour_runs_once() -> None:
    cadence = cron("30 2 * * *", "Europe/Berlin")
    # 03:00 CEST falls back to 02:00 CET at 01:00Z: 02:30 happens at 00:30Z and again at 01:30Z.
    assert slots_on_local_day(cadence, date(2026, 10, 25), BERLIN) == [utc("2026-10-25T00:30:00Z")]
    assert next_slot(cadence, utc("2026-10-25T01:15:00Z")) == utc("2026-10-26T01:30:00Z")
    assert latest_slot(cadence, utc("2026-10-25T01:30:00Z")) == utc("2026-10-25T00:30:00Z")


@pytest.mark.parametrize(
    ("timezone", "start", "skipped_or_repeated"),
    [
        ("America/New_York", "2026-03-08T03:00:00Z", "spring"),
        ("America/New_York", "2026-11-01T02:00:00Z", "fall"),
        ("Europe/Berlin", "2026-03-28T21:00:00Z", "spring"),
        ("Europe/Berlin", "2026-10-24T21:00:00Z", "fall"),
    ],
)
def test_hourly_job_across_a_change_runs_every_real_hour(timezone: str, start: str, skipped_or_repeated: str) -> None:
    # "0 * * * *" has "*" in the hour field, so cronsim steps in real time: slots stay exactly one
    # real hour apart. On the wall clock the skipped hour has no slot (02:00 does not exist) and
    # the repeated hour has two (01:00 EDT then 01:00 EST; 02:00 CEST then 02:00 CET).
    cadence = cron("0 * * * *", timezone)
    slots = slots_between(cadence, utc(start), utc(start) + timedelta(hours=8))
    assert len(slots) == 8
    assert all(later - earlier == timedelta(hours=1) for earlier, later in itertools.pairwise(slots))
    wall_hours = [slot.astimezone(ZoneInfo(timezone)).hour for slot in slots]
    if skipped_or_repeated == "spring":
        assert 2 not in wall_hours
        assert len(set(wall_hours)) == 8
    else:
        repeated = 1 if timezone == "America/New_York" else 2
        assert wall_hours.count(repeated) == 2
        assert len(set(wall_hours)) == 7
    for earlier, later in itertools.pairwise(slots):
        assert next_slot(cadence, earlier) == later
        assert latest_slot(cadence, later - timedelta(milliseconds=1)) == earlier


def test_next_run_at_across_the_changes_keeps_the_wall_clock_time() -> None:
    cadence = cron("0 9 * * *", "America/New_York")
    # The day of each change is 23 or 25 real hours long; 09:00 stays 09:00 local.
    before_spring = utc("2026-03-07T14:00:00Z")  # 09:00 EST
    assert next_slot(cadence, before_spring) == utc("2026-03-08T13:00:00Z")  # 09:00 EDT
    assert next_slot(cadence, before_spring) - before_spring == timedelta(hours=23)
    before_fall = utc("2026-10-31T13:00:00Z")  # 09:00 EDT
    assert next_slot(cadence, before_fall) == utc("2026-11-01T14:00:00Z")  # 09:00 EST
    assert next_slot(cadence, before_fall) - before_fall == timedelta(hours=25)
    # A job due in the skipped hour is due one minute after 01:59 EST.
    assert next_slot(cron("30 2 * * *", "America/New_York"), utc("2026-03-08T06:59:00Z")) == utc("2026-03-08T07:00:00Z")


@pytest.mark.parametrize(
    ("expr", "timezone", "start"),
    [
        ("30 2 * * *", "America/New_York", "2026-03-06T00:00:00Z"),
        ("30 1 * * *", "America/New_York", "2026-10-30T00:00:00Z"),
        ("30 2 * * *", "Europe/Berlin", "2026-03-27T00:00:00Z"),
        ("30 2 * * *", "Europe/Berlin", "2026-10-23T00:00:00Z"),
        ("0 * * * *", "America/New_York", "2026-10-31T00:00:00Z"),
        ("*/20 1-3 * * *", "Europe/Berlin", "2026-10-24T00:00:00Z"),
    ],
)
def test_scheduler_contract_creates_each_slot_once_across_a_change(expr: str, timezone: str, start: str) -> None:
    # The scheduler as its module docstring describes it, run every 7 minutes for four days.
    cadence = cron(expr, timezone)
    now = utc(start)
    next_run_at = next_slot(cadence, now)
    ref_ids: list[str] = []
    while now < utc(start) + timedelta(days=4):
        now += timedelta(minutes=7)
        if next_run_at <= now:
            slot = latest_slot(cadence, now)
            assert slot is not None
            assert next_run_at <= slot <= now
            ref_ids.append(slot_ref_id("nightly", slot))
            next_run_at = next_slot(cadence, now)
    # Slots here are at least 20 real minutes apart, so every one of them got exactly one job.
    expected = slots_between(cadence, next_slot(cadence, utc(start)), now + timedelta(milliseconds=1))
    assert len(expected) >= 4
    assert ref_ids == [slot_ref_id("nightly", slot) for slot in expected]


# --- never firing ---------------------------------------------------------------------------------------


def test_a_cron_that_never_fires_has_no_slots() -> None:
    cadence = Cadence(cron="0 0 30 2 *", every_ms=None, timezone="UTC")  # bypassing parse_cadence
    assert latest_slot(cadence, NOW) is None
    with pytest.raises(CadenceError) as caught:
        next_slot(cadence, NOW)
    assert (caught.value.field, caught.value.message) == ("cron", "cron never fires")


def test_a_cron_must_fire_within_five_years_of_now() -> None:
    # The fifth Monday of February needs a 29 February that is a Monday: 2016, then 2044.
    with pytest.raises(CadenceError) as caught:
        parse_cadence("0 0 * 2 1#5", None, now=NOW)
    assert (caught.value.field, caught.value.message) == ("cron", "cron never fires")
    cadence = parse_cadence("0 0 * 2 1#5", None, now=utc("2040-01-01T00:00:00Z"))
    assert next_slot(cadence, utc("2040-01-01T00:00:00Z")) == utc("2044-02-29T00:00:00Z")
    assert latest_slot(cadence, NOW) == utc("2016-02-29T00:00:00Z")
