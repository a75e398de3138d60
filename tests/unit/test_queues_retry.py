"""Queues as an operator sees them: retry, redrive and purge."""

from __future__ import annotations

from typing import Any

import pytest

from jobcore import keys
from jobcore.clock import ManualClock
from jobcore.engine.counting import STATES
from jobcore.errors import Duplicate, InvalidRequest, NotFound, NotRetryable
from jobcore.model import JobState, Principal
from tests.conftest import TABLE_NAME
from tests.support.jobs import Jobs
from tests.unit.test_queues import ERROR, every_item, truth


# -- retry ---------------------------------------------------------------------------------
def failed_job(service: Jobs, svc: Principal, clock: ManualClock, job_type: str = "mail", **fields: Any) -> str:
    job_id = service.create(svc, {"type": job_type, "max_retries": 1, **fields}).job.id
    clock.advance(1)
    job = service.start(svc, job_id, {"timeout_ms": 1000})
    service.post_status(svc, job_id, {"lease_token": job.lease_token, "message_to_append": "working"})
    service.fail(svc, job_id, {"lease_token": job.lease_token, "error": ERROR})
    clock.advance(1)
    return job_id


def test_retry_keeps_the_job_its_history_and_messages(service, svc, clock):
    job_id = failed_job(service, svc, clock)
    retried = service.retry(svc, job_id)
    assert (retried.id, retried.state, retried.attempts, retried.error, retried.complete) == (
        job_id, JobState.PENDING, 0, None, False)  # fmt: skip
    assert [m.message for m in service.messages(svc, job_id).data][-2:] == ["working", "retried"]
    clock.advance(10)  # past the retry's write stamp
    again = service.claim(svc, "mail", {"timeout_ms": 1000})
    assert again is not None and again.id == job_id and again.attempts == 1


@pytest.mark.parametrize("state", ["pending", "running", "finished"])
def test_only_ended_in_error_or_cancelled_may_be_retried(service, svc, clock, state):
    job_id = service.create(svc, {"type": "mail"}).job.id
    if state != "pending":
        job = service.start(svc, job_id, {"timeout_ms": 1000})
        if state == "finished":
            service.complete(svc, job_id, {"lease_token": job.lease_token})
    with pytest.raises(NotRetryable):
        service.retry(svc, job_id)
    assert service.get(svc, job_id).state.value == state


def test_a_cancelled_job_may_be_retried(service, svc):
    job_id = service.create(svc, {"type": "mail"}).job.id
    service.cancel(svc, job_id)
    assert service.retry(svc, job_id).state is JobState.PENDING


def test_a_unique_job_retakes_its_guard_or_names_the_job_that_holds_it(service, svc, clock):
    first = failed_job(service, svc, clock, ref_id="invoice-7", unique=True)
    second = service.create(svc, {"type": "mail", "ref_id": "invoice-7", "unique": True}).job.id
    with pytest.raises(Duplicate) as refused:
        service.retry(svc, first)
    assert refused.value.details == {"existing_id": second}
    assert service.get(svc, first).state is JobState.ERROR  # nothing half-written
    service.cancel(svc, second)
    assert service.retry(svc, first).state is JobState.PENDING
    again = service.create(svc, {"type": "mail", "ref_id": "invoice-7", "unique": True})
    assert (again.created, again.job.id) == (False, first)  # the guard is the retried job's again


def test_retry_of_a_missing_job_is_not_found(service, svc):
    with pytest.raises(NotFound):
        service.retry(svc, "01JDA3Q0Z8M6W4K2T9R7P5N3B1")


# -- redrive -------------------------------------------------------------------------------
def test_redrive_retries_the_error_code_asked_in_calls_of_the_limit(service, svc, clock):
    codes = {}
    for n in range(25):
        job_id = service.create(svc, {"type": "mail", "max_retries": 1}).job.id
        job = service.start(svc, job_id, {"timeout_ms": 1000})
        code = "timeout" if n % 5 else "bad_input"
        service.fail(svc, job_id, {"lease_token": job.lease_token, "error": {"code": code, "message": "x"}})
        codes[job_id] = code
        clock.advance(1)
    cancelled = service.create(svc, {"type": "mail"}).job.id
    service.cancel(svc, cancelled)
    clock.advance(1)
    calls = []
    while True:
        answer = service.redrive(svc, "mail", {"error_code": "timeout", "limit": 7})
        calls.append(answer)
        if not answer.more:
            break
    assert sum(a.retried for a in calls) == 20 and all(a.retried <= 7 for a in calls)
    for job_id, code in codes.items():
        assert service.get(svc, job_id).state is (JobState.PENDING if code == "timeout" else JobState.ERROR)
    assert service.get(svc, cancelled).state is JobState.CANCELLED  # states default to error
    assert service.redrive(svc, "mail", {"states": ["cancelled"]}).retried == 1


def test_a_redrive_run_ends_while_jobs_keep_failing(service, svc, clock):
    for _ in range(6):
        failed_job(service, svc, clock)
    first = service.redrive(svc, "mail", {"limit": 3})
    assert (first.retried, first.more) == (3, True)
    late = failed_job(service, svc, clock)  # failed after the run began: the next run's
    second = service.redrive(svc, "mail", {"limit": 1000})
    assert (second.retried, second.more) == (3, False)
    assert service.get(svc, late).state is JobState.ERROR
    assert service.redrive(svc, "mail").retried == 1


def test_redrive_skips_a_unique_job_whose_ref_id_is_taken(service, svc, clock):
    failed_job(service, svc, clock, ref_id="r", unique=True)
    failed_job(service, svc, clock)
    service.create(svc, {"type": "mail", "ref_id": "r", "unique": True})
    answer = service.redrive(svc, "mail")
    assert (answer.retried, answer.skipped, answer.more) == (1, 1, False)


def test_redrive_stops_with_time_left_to_answer(service, svc, clock):
    for _ in range(3):
        failed_job(service, svc, clock)
    left = iter([30_000, 10_000, 3_000])
    answer = service.engine.recovery.redrive(svc, _redrive_command(service, "mail"), time_left_ms=lambda: next(left, 1_000))
    assert answer.more and answer.retried < 3
    rest = service.redrive(svc, "mail")
    assert answer.retried + rest.retried == 3 and not rest.more


def _redrive_command(service: Jobs, job_type: str) -> Any:
    from jobcore.commands import Parts
    from jobcore.commands.queues import parse_redrive

    return parse_redrive(Parts(path={"type": job_type}, body={}), service.limits)


# -- purge ---------------------------------------------------------------------------------
def test_purge_deletes_all_but_running_jobs_with_guards_and_messages(service, svc, admin, clock, dynamodb):
    for n in range(9):
        service.create(svc, {"type": "mail", "ref_id": f"r{n}", "unique": True})
    service.create(svc, {"type": "other"})
    running = service.claim(svc, "mail", {"timeout_ms": 60_000})
    assert running is not None
    failed_job(service, svc, clock)
    clock.advance(1)
    calls = []
    while not calls or calls[-1].more:
        calls.append(service.purge(admin, "mail", budget=4))
    assert sum(c.deleted for c in calls) == 9 and all(c.deleted <= 4 for c in calls)
    left = every_item(service)
    assert {i["SK"] for i in left if str(i["PK"]).startswith("JOB#")} == {"JOB"}  # no messages left
    assert not [i for i in left if str(i["PK"]).startswith("UNIQ#") and i.get("job_id") != running.id]
    assert truth(dynamodb)["mail"]["running"] == 1 and truth(dynamodb)["other"]["pending"] == 1
    # A purged job's guard is free (the claim took one of the nine at random: not that one).
    purged = next(f"r{n}" for n in range(9) if f"r{n}" != running.ref_id)
    assert service.create(svc, {"type": "mail", "ref_id": purged, "unique": True}).created
    assert not service.create(svc, {"type": "mail", "ref_id": running.ref_id, "unique": True}).created


def test_purge_of_one_state(service, svc, admin, clock):
    failed_job(service, svc, clock)
    service.create(svc, {"type": "mail"})
    assert service.purge(admin, "mail", {"state": "error"}).deleted == 1
    assert [j.state for j in service.queue_jobs("mail").data] == [JobState.PENDING]


# Some 15,000 requests to the in-process DynamoDB: about 70 s on an idle 2-core machine, and
# several times that beside a second suite; the suite's 300 s would be a coin toss.
@pytest.mark.timeout(1200)
def test_retry_redrive_and_purge_work_through_5000_jobs_in_budgeted_calls(service, svc, admin, clock, dynamodb):
    """A queue of 5,000 failed jobs (two error codes) and 100 of another queue: redrive one
    code in calls of at most `limit`, purge in calls of at most the budget, reading only that
    queue's jobs. (The counts following these changes through the stream: the tests above
    and tests/e2e/test_queue_operations.py.)"""
    from jobcore.clock import to_iso
    from jobcore.store import serialize

    now = clock.now()
    items = []
    for n in range(5100):
        item, _ = service._new_job_item(svc, {"type": "deep" if n < 5000 else "other"}, now)
        if n < 5000:
            code = "timeout" if n % 10 else "bad_input"
            item.update(state="error", attempts=1, completed=to_iso(now), error=f'{{"code": "{code}", "message": "x"}}')
            item.pop("QSK", None)
            item.update(keys.index_attributes(item))
        items.append(item)
    for start in range(0, len(items), 25):
        chunk = [{"PutRequest": {"Item": serialize(i)}} for i in items[start : start + 25]]
        dynamodb.batch_write_item(RequestItems={TABLE_NAME: chunk})
    clock.advance(1000)

    calls = []
    while not calls or calls[-1].more:
        calls.append(service.redrive(svc, "deep", {"error_code": "timeout", "limit": 1000}))
        clock.advance(10)
    assert sum(c.retried for c in calls) == 4500 and all(c.retried + c.skipped <= 1000 for c in calls)
    assert truth(dynamodb)["deep"] == {**dict.fromkeys(STATES, 0), "pending": 4500, "error": 500}

    purges = []
    while not purges or purges[-1].more:
        purges.append(service.purge(admin, "deep"))
        clock.advance(10)
    assert sum(p.deleted for p in purges) == 5000 and all(p.deleted <= 500 for p in purges) and len(purges) >= 10
    assert truth(dynamodb) == {"other": {**dict.fromkeys(STATES, 0), "pending": 100}}  # only the queue's own jobs


@pytest.mark.parametrize(
    "body",
    [
        {"states": []},
        {"states": ["error", "error"]},
        {"states": ["finished"]},
        {"states": "error"},
        {"limit": 0},
        {"limit": 1001},
        {"error_code": 7},
        {"colour": "red"},
    ],
)
def test_a_bad_redrive_is_refused_naming_the_field(service, svc, body):
    with pytest.raises(InvalidRequest) as refused:
        service.redrive(svc, "mail", body)
    assert set(refused.value.details["fields"]) == set(body)
