"""Every state transition of a job, named once: its whole DynamoDB condition, and beside it
the Python check that, handed the item as it was (ALL_OLD), names the error when the
condition did not hold.

A condition is one literal: `#name` is the attribute `name`, `:name` a value the write
supplies (`now`, `stamp`, `token`, ...) or a constant below. `tests/unit/test_rules.py`
generates items and times and asserts, for every transition, that the condition as
DynamoDB evaluates it and the Python check agree.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from msgspec import Struct

from .errors import (
    AlreadyFinished,
    DeadlineExceeded,
    JobsError,
    LeaseHeld,
    LeaseLost,
    NotFound,
    NotRetryable,
    NotRunning,
    RetriesExhausted,
)
from .model import JobState

Item = Mapping[str, Any]
Values = Mapping[str, Any]

IDLE, PENDING, RUNNING = JobState.IDLE.value, JobState.PENDING.value, JobState.RUNNING.value
FINISHED, ERROR, CANCELLED = JobState.FINISHED.value, JobState.ERROR.value, JobState.CANCELLED.value
CONSTANTS: dict[str, Any] = {
    ":idle": IDLE, ":pending": PENDING, ":running": RUNNING, ":finished": FINISHED, ":false": False, ":true": True,
    ":zero": 0, ":error": ERROR, ":cancelled": CANCELLED,
}  # fmt: skip


class Refused(Exception):
    """Internal: the write did not apply for a reason the caller handles itself (the job
    changed under it, a newer write is ahead, a candidate was taken)."""


class Behind(Refused):
    """Another writer's `modified` is at or past this write's stamp: write again, later."""


# -- fragments of conditions, each also a Python predicate ---------------------------------
# The item exists and has not expired (TTL deletes late; an expired item is gone for us).
LIVE = "attribute_exists(#PK) AND (attribute_not_exists(#expires_at) OR #expires_at > :now_s)"
# Every write moves `modified` strictly forward.
NEWER = "#modified < :stamp"
UNLEASED = "#state IN (:idle, :pending)"
# Unleased, or running under a lease that ran out: nobody holds it.
LEASE_FREE = "(#state IN (:idle, :pending) OR (#state = :running AND #locked_until <= :now))"
HOLDER = "#state = :running AND #lease_token = :token"
# May start (again): not asked to cancel, before its deadline, starts left (its own limit).
STARTABLE = (
    "#cancel_requested = :false"
    " AND (attribute_not_exists(#execute_until) OR #execute_until > :now)"
    " AND (attribute_not_exists(#max_retries) OR #attempts < #max_retries)"
)


def live(item: Item | None, v: Values) -> bool:
    return item is not None and "PK" in item and ("expires_at" not in item or int(item["expires_at"]) > v[":now_s"])


def lease_free(item: Item, v: Values) -> bool:
    state = item.get("state")
    return state in (IDLE, PENDING) or (state == RUNNING and "locked_until" in item and item["locked_until"] <= v[":now"])


def startable_reason(item: Item, v: Values) -> str | None:
    """Why a job may never start again (cancelled, deadline, retries), or None."""
    if item.get("cancel_requested") is not False:
        return "cancelled"
    if "execute_until" in item and not item["execute_until"] > v[":now"]:
        return DeadlineExceeded.code
    if "max_retries" in item and not int(item.get("attempts", 0)) < int(item["max_retries"]):
        return RetriesExhausted.code
    return None


def _newer(item: Item, v: Values) -> None:
    if "modified" not in item or not item["modified"] < v[":stamp"]:
        raise Behind(str(item.get("id")))


def _live_and_newer(item: Item | None, v: Values) -> Item:
    if not live(item, v):
        raise NotFound("job not found")
    assert item is not None
    _newer(item, v)
    return item


def _holder(item: Item, v: Values) -> None:
    """The lease rules: only the current token's holder may act on a running job."""
    state, job_id = item.get("state"), item.get("id")
    if state in (FINISHED, ERROR, CANCELLED):
        if item.get("lease_token") != v[":token"]:
            # Said as it is: the job may have been cancelled or ended under a later lease.
            raise LeaseLost(f"the lease on job {job_id} was lost: the job is {state} now", {"state": state})
        raise AlreadyFinished(f"job {job_id} is already {state}", {"state": state})
    if state != RUNNING:
        raise NotRunning(f"job {job_id} is {state}: no lease is held", {"state": state})
    if item.get("lease_token") != v[":token"]:
        free = "locked_until" in item and item["locked_until"] <= v[":now"]
        # The token only says that it is not the current lease's, not whose that lease is.
        why = "its lease ran out and it is free to claim" if free else "it was leased again under another token"
        raise LeaseLost(f"the lease on job {job_id} was lost: {why}", {"state": state})


def _unleased(item: Item) -> None:
    state, job_id = item.get("state"), item.get("id")
    if state in (FINISHED, ERROR, CANCELLED):
        raise AlreadyFinished(f"job {job_id} is already {state}", {"state": state})
    if state not in (IDLE, PENDING):
        raise LeaseHeld(f"job {job_id} is running: send the lease_token of its lease")


# -- transitions -------------------------------------------------------------------------
class Transition(Struct, frozen=True):
    """One named write: when DynamoDB applies it, and what the item says when it did not."""

    name: str
    condition: str
    check: Callable[[Item | None, Values], None]

    @property
    def names(self) -> dict[str, str]:
        return {f"#{n}": n for n in re.findall(r"#(\w+)", self.condition)}

    def values(self, given: Values) -> dict[str, Any]:
        """The condition's values: the write's own and the constants it names."""
        wanted = set(re.findall(r":\w+", self.condition))
        merged = {**{k: v for k, v in CONSTANTS.items() if k in wanted}, **{k: v for k, v in given.items() if k in wanted}}
        missing = wanted - set(merged)
        if missing:
            raise KeyError(f"{self.name} needs {sorted(missing)}")
        return merged


def _check_start(item: Item | None, v: Values) -> None:
    item = _live_and_newer(item, v)
    state, job_id = item.get("state"), item.get("id")
    if state in (FINISHED, ERROR, CANCELLED):
        raise AlreadyFinished(f"job {job_id} is already {state}", {"state": state})
    if not lease_free(item, v):
        raise LeaseHeld(f"job {job_id} is leased by another worker", {"locked_until": item.get("locked_until")})
    if startable_reason(item, v):
        raise Unstartable(startable_reason(item, v) or "")


class Unstartable(Refused):
    """The job may never start again (``reason``: cancelled, deadline, retries)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class HasDependencies(Refused):
    """A start of a job with dependencies: made again with their checks in its transaction."""


def _check_start_alone(item: Item | None, v: Values) -> None:
    _check_start(item, v)
    assert item is not None
    if item.get("depends_on"):
        raise HasDependencies(str(item.get("id")))


NO_DEPENDENCIES = "(attribute_not_exists(#depends_on) OR size(#depends_on) = :zero)"
# Start by id, in one write when the job depends on nothing (the common case)...
START = Transition("start", f"{LIVE} AND {NEWER} AND {LEASE_FREE} AND {STARTABLE} AND {NO_DEPENDENCIES}", _check_start_alone)
# ...else with a check of each dependency in the same transaction.
START_WITH_DEPENDENCIES = Transition(
    "start with dependencies", f"{LIVE} AND {NEWER} AND {LEASE_FREE} AND {STARTABLE}", _check_start
)


def _check_claim(item: Item | None, v: Values) -> None:
    if not live(item, v):
        raise Refused("gone")
    assert item is not None
    _newer(item, v)
    if item.get("QPK") != v[":queue"] or "QSK" not in item or not item["QSK"] <= v[":bound"]:
        raise Refused("taken, or not visible yet")  # another worker leased it first
    reason = startable_reason(item, v)
    if reason:
        raise Unstartable(reason)
    if not int(item.get("attempts", 0)) < v[":claim_max"]:
        raise Refused("started as often as this claim's max_retries allows: passed by")


CLAIM = Transition(
    "claim",
    f"{LIVE} AND {NEWER} AND #QPK = :queue AND #QSK <= :bound AND {STARTABLE} AND #attempts < :claim_max",
    _check_claim,
)


def _check_retire(item: Item | None, v: Values) -> None:
    item = _live_and_newer(item, v)
    if not lease_free(item, v):
        raise Refused("leased or ended meanwhile")


# Quarantine: a job that may never run again leaves the queue (error or cancelled), unless
# somebody holds a live lease on it.
RETIRE = Transition("retire", f"{LIVE} AND {NEWER} AND {LEASE_FREE}", _check_retire)


def _check_defer(item: Item | None, v: Values) -> None:
    item = _live_and_newer(item, v)
    if item.get("QSK") != v[":seen"] or item.get("state") != PENDING:
        raise Refused("moved meanwhile")


# A job whose dependencies are unfinished goes back a little, so the head of the queue moves on.
DEFER = Transition("defer", f"{LIVE} AND {NEWER} AND #QSK = :seen AND #state = :pending", _check_defer)


def _check_holder(item: Item | None, v: Values) -> None:
    _holder(_live_and_newer(item, v), v)


# Extend, complete or fail for good, post status: the holder of the current token only.
HOLD = Transition("hold", f"{LIVE} AND {NEWER} AND {HOLDER}", _check_holder)


class CancelInstead(Refused):
    """The holder released or failed a job that was asked to cancel: it ends cancelled."""


class EndsNow(Refused):
    """A failed attempt with no retry left (or past the deadline by its retry time)."""


def _check_abort(item: Item | None, v: Values) -> None:
    item = _live_and_newer(item, v)
    _holder(item, v)
    if item.get("cancel_requested") is not False:
        raise CancelInstead(str(item.get("id")))


ABORT = Transition("abort", f"{LIVE} AND {NEWER} AND {HOLDER} AND #cancel_requested = :false", _check_abort)


def _check_retry(item: Item | None, v: Values) -> None:
    item = _live_and_newer(item, v)
    _holder(item, v)
    if item.get("cancel_requested") is not False:
        raise CancelInstead(str(item.get("id")))
    if "max_retries" in item and not int(item.get("attempts", 0)) < int(item["max_retries"]):
        raise EndsNow("retries_exhausted")
    if "execute_until" in item and not item["execute_until"] > v[":retry_at"]:
        raise EndsNow("deadline_exceeded")


# A failed attempt goes back to pending, in one write, while it may run again by its retry time.
RETRY = Transition(
    "retry",
    f"{LIVE} AND {NEWER} AND {HOLDER} AND #cancel_requested = :false"
    " AND (attribute_not_exists(#max_retries) OR #attempts < #max_retries)"
    " AND (attribute_not_exists(#execute_until) OR #execute_until > :retry_at)",
    _check_retry,
)


def _check_unleased(item: Item | None, v: Values) -> None:
    _unleased(_live_and_newer(item, v))


# Status posts and completes without a lease: an idle or pending job.
UNLEASED_ONLY = Transition("unleased", f"{LIVE} AND {NEWER} AND {UNLEASED}", _check_unleased)


def _check_patch(item: Item | None, v: Values) -> None:
    item = _live_and_newer(item, v)
    _unleased(item)
    if int(item.get("version", 0)) != v[":version"]:
        raise Refused("changed since it was read")


PATCH = Transition("patch", f"{LIVE} AND {NEWER} AND {UNLEASED} AND #version = :version", _check_patch)


class AlreadyDone(Refused):
    """Cancel of a job that already ended: no change, the job as it is (``item``)."""

    def __init__(self, item: Item) -> None:
        super().__init__(str(item.get("id")))
        self.item = item


class OnlyRequest(Refused):
    """Cancel of a running job under a live lease: only ``cancel_requested`` is set."""


def _visible_to(item: Item, v: Values) -> None:
    if ":user" in v and item.get("owner") != v[":user"]:
        raise NotFound("job not found")


def _check_cancel(item: Item | None, v: Values) -> None:
    item = _live_and_newer(item, v)
    _visible_to(item, v)
    if item.get("state") in (FINISHED, ERROR, CANCELLED):
        raise AlreadyDone(item)
    if not lease_free(item, v):
        raise OnlyRequest(str(item.get("id")))


def _check_cancel_request(item: Item | None, v: Values) -> None:
    item = _live_and_newer(item, v)
    _visible_to(item, v)
    if item.get("state") in (FINISHED, ERROR, CANCELLED):
        raise AlreadyDone(item)
    if not (item.get("state") == RUNNING and "locked_until" in item and item["locked_until"] > v[":now"]):
        raise Refused("its lease ran out meanwhile: cancel it outright")


CANCEL = Transition("cancel", f"{LIVE} AND {NEWER} AND {LEASE_FREE}", _check_cancel)
CANCEL_OWN = Transition("cancel own", f"{LIVE} AND {NEWER} AND {LEASE_FREE} AND #owner = :user", _check_cancel)
RUNNING_LEASED = "#state = :running AND #locked_until > :now"
REQUEST_CANCEL = Transition("request cancel", f"{LIVE} AND {NEWER} AND {RUNNING_LEASED}", _check_cancel_request)
REQUEST_CANCEL_OWN = Transition(
    "request cancel own", f"{LIVE} AND {NEWER} AND {RUNNING_LEASED} AND #owner = :user", _check_cancel_request
)


def _check_requeue(item: Item | None, v: Values) -> None:
    item = _live_and_newer(item, v)
    if item.get("state") not in (ERROR, CANCELLED):
        state = item.get("state")
        raise NotRetryable(f"job {item.get('id')} is {state}: only an error or cancelled job is retried", {"state": state})


# Retry and redrive: an ended job that failed or was cancelled goes back to pending.
REQUEUE = Transition("requeue", f"{LIVE} AND {NEWER} AND #state IN (:error, :cancelled)", _check_requeue)


# -- items beside jobs ---------------------------------------------------------------------
def _check_absent(item: Item | None, v: Values) -> None:
    if item is not None and "PK" in item:
        raise Refused("exists")


# A new item: a job, a message log entry.
ABSENT = Transition("absent", "attribute_not_exists(#PK)", _check_absent)


def _check_free(item: Item | None, v: Values) -> None:
    if item is not None and "PK" in item and not ("expires_at" in item and int(item["expires_at"]) <= v[":now_s"]):
        raise Refused("taken")


# A unique guard or an idempotency record: free, or left over and expired.
FREE = Transition("free", "attribute_not_exists(#PK) OR (attribute_exists(#expires_at) AND #expires_at <= :now_s)", _check_free)


def _check_exists(item: Item | None, v: Values) -> None:
    if not live(item, v):
        raise NotFound("job not found")


EXISTS = Transition("exists", LIVE, _check_exists)


def _check_at_version(item: Item | None, v: Values) -> None:
    if not live(item, v):
        raise NotFound("job not found")
    assert item is not None
    if int(item.get("version", 0)) != v[":version"]:
        raise Refused("version_mismatch")


# Batch writes and a claim's `depends` entries name a job at a version.
AT_VERSION = Transition("at version", f"{LIVE} AND #version = :version", _check_at_version)


def _check_finished(item: Item | None, v: Values) -> None:
    if not live(item, v):
        raise Refused("gone")
    assert item is not None
    if item.get("state") != FINISHED:
        raise Refused(str(item.get("state")))


# A job's own dependency, when it is leased: finished.
FINISHED_DEPENDENCY = Transition("finished dependency", f"{LIVE} AND #state = :finished", _check_finished)


def _check_owned_guard(item: Item | None, v: Values) -> None:
    if item is None or item.get("job_id") != v[":job"]:
        raise Refused("released, or taken by a newer job")


# Releasing a unique guard: only while it still belongs to the job that ended.
GUARD_OF = Transition("guard of", "#job_id = :job", _check_owned_guard)

ALL: tuple[Transition, ...] = (
    START, START_WITH_DEPENDENCIES, CLAIM, RETIRE, DEFER, HOLD, ABORT, RETRY, UNLEASED_ONLY, PATCH, CANCEL,
    CANCEL_OWN, REQUEST_CANCEL, REQUEST_CANCEL_OWN, REQUEUE, ABSENT, FREE, EXISTS, AT_VERSION, FINISHED_DEPENDENCY, GUARD_OF,
)  # fmt: skip

__all__ = ["ALL", "JobsError", "Refused", "Transition"]
