"""The worker's waker without a socket: what a notice does to the slots waiting on it. (Its
connection is tested against the local cloud in tests/e2e/test_worker_wakeup.py.)"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

from jobs_client.waker import WorkWaker, epoch_of

LONG_S = 600.0  # a wait that only a wake-up ends within a test


def waker() -> WorkWaker:
    return WorkWaker("ws://127.0.0.1:9", "token", ["mail", "sms"])  # never started: no socket


def iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def test_a_notice_between_a_claim_and_the_wait_is_not_lost():
    w = waker()
    since = w.generation  # read before the claim
    w._handle({"type": "work_available", "queue": "mail", "at": iso(datetime.now(UTC))})
    assert w.wait(since, LONG_S) is True  # returns at once
    assert w.notices == 1


def test_notices_of_other_queues_and_other_messages_wake_nobody():
    w = waker()
    since = w.generation
    w._handle({"type": "work_available", "queue": "elsewhere", "at": iso(datetime.now(UTC))})
    w._handle({"type": "pong"})
    w._handle({"type": "task_update", "job_id": "x"})
    assert w.wait(since, 0.05) is False and w.notices == 0


def test_a_job_claimable_later_wakes_the_slots_at_its_time():
    w = waker()
    since = w.generation
    due = datetime.now(UTC) + timedelta(milliseconds=300)
    w._handle({"type": "work_available", "queue": "sms", "at": iso(due)})
    assert w.generation == since  # not now
    assert w.wait(since, LONG_S) is True
    assert time.time() >= due.timestamp() - 0.002  # not before (milliseconds in the notice)


def test_an_unreadable_time_wakes_at_once():
    w = waker()
    since = w.generation
    w._handle({"type": "work_available", "queue": "mail", "at": "soon"})
    assert w.wait(since, LONG_S) is True
    assert epoch_of("soon") is None and epoch_of("2026-12-03T10:00:00.000Z") == 1796292000.0


def test_stop_ends_every_wait():
    w = waker()
    since = w.generation
    results: list[bool] = []
    waiting = [threading.Thread(target=lambda: results.append(w.wait(since, LONG_S))) for _ in range(3)]
    for thread in waiting:
        thread.start()
    w.stop()
    for thread in waiting:
        thread.join(timeout=30)
        assert not thread.is_alive()
    assert results == [False, False, False] and not w.connected
