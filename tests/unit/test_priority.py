"""Priorities: a claim takes the most urgent visible job, what it reads and costs, how the
levels a queue uses are known, and how a job moves between levels."""

from __future__ import annotations

from typing import Any

from jobcore import keys
from jobcore.clock import ManualClock
from jobcore.commands import Parts
from jobcore.commands.leases import parse_claim
from jobcore.model import Principal
from tests.support.jobs import Jobs


def make(service: Jobs, svc: Principal, clock: ManualClock, queue: str, priority: int | None, count: int = 1) -> list[str]:
    ids = []
    for _ in range(count):
        body: dict[str, Any] = {"type": queue} if priority is None else {"type": queue, "priority": priority}
        ids.append(service.create(svc, body).job.id)
        clock.advance(1)
    return ids


def claimed(service: Jobs, svc: Principal, queue: str, count: int) -> list[str]:
    found = []
    for _ in range(count):
        job = service.claim(svc, queue, {"timeout_ms": 60_000})
        assert job is not None
        found.append(job.id)
    return found


def past_the_cache(clock: ManualClock) -> None:
    clock.advance(2000)  # claims trust what they read of a queue for 1.5 s


def test_more_urgent_jobs_are_claimed_before_older_less_urgent_ones(service, svc, clock):
    low = make(service, svc, clock, "p", 4, 2)
    normal = make(service, svc, clock, "p", None, 2)  # the default: 2
    urgent = make(service, svc, clock, "p", 1, 2)
    high = make(service, svc, clock, "p", 3, 1)
    taken = claimed(service, svc, "p", 7)
    # Random among the oldest few within a level (not a fifo queue); levels strictly in order.
    assert [set(taken[:2]), set(taken[2:4]), taken[4], set(taken[5:])] == [set(urgent), set(normal), high[0], set(low)]
    assert service.claim(svc, "p", {"timeout_ms": 10}) is None
    assert service.get(svc, urgent[0]).priority == 1 and service.get(svc, normal[0]).priority == 2


def test_within_a_level_a_fifo_queue_is_oldest_first(service, svc, clock):
    service.patch_queue("f", {"fifo": True})
    jobs = make(service, svc, clock, "f", 3, 5)
    urgent = make(service, svc, clock, "f", 1, 5)
    assert claimed(service, svc, "f", 10) == urgent + jobs


def test_a_delayed_urgent_job_waits_and_then_goes_first(service, svc, clock):
    soon = service.create(svc, {"type": "d", "priority": 1, "available_at": "2026-11-22T10:00:10.000Z"}).job
    clock.advance(1)
    normal = make(service, svc, clock, "d", 2, 2)
    assert claimed(service, svc, "d", 1) == normal[:1]  # the urgent one is not visible yet
    clock.advance(10_000)
    assert claimed(service, svc, "d", 2) == [soon.id, normal[1]]


def test_a_claim_of_the_most_urgent_level_is_one_query_and_one_write(service, svc, clock, counter):
    make(service, svc, clock, "c", 3, 5)
    make(service, svc, clock, "c", 1, 2)
    assert claimed(service, svc, "c", 1)
    counter.reset()
    clock.advance(1)
    assert service.claim(svc, "c", {"timeout_ms": 60_000}) is not None
    assert dict(counter.calls) == {"Query": 1, "UpdateItem": 1}


def test_a_queue_of_one_level_is_one_query_and_one_write_whatever_the_level(service, svc, clock, counter):
    make(service, svc, clock, "one", 4, 3)
    assert claimed(service, svc, "one", 1)
    counter.reset()
    clock.advance(1)
    assert service.claim(svc, "one", {"timeout_ms": 60_000}) is not None
    assert dict(counter.calls) == {"Query": 1, "UpdateItem": 1}


def test_otherwise_a_claim_reads_each_used_level_in_order_at_most_once(service, svc, clock, counter):
    make(service, svc, clock, "u", 1, 1)
    make(service, svc, clock, "u", 4, 3)
    assert claimed(service, svc, "u", 1)
    counter.reset()
    clock.advance(1)
    assert service.claim(svc, "u", {"timeout_ms": 60_000}) is not None
    # Level 1 (used, empty now) and level 4; never levels 2 and 3, which no job has used.
    assert dict(counter.calls) == {"Query": 2, "UpdateItem": 1}
    make(service, svc, clock, "u", 2, 1)  # one job in each of three levels' worth of Queries
    service.claim(svc, "u", {"timeout_ms": 60_000})
    counter.reset()
    clock.advance(1)
    assert service.claim(svc, "u", {"timeout_ms": 60_000}) is not None
    assert dict(counter.calls) == {"Query": 3, "UpdateItem": 1}
    counter.reset()
    clock.advance(1)
    service.claim(svc, "u", {"timeout_ms": 60_000})
    assert service.claim(svc, "u", {"timeout_ms": 10}) is None  # an empty queue: one Query a level


def test_max_jobs_takes_from_the_most_urgent_levels_first(service, svc, clock, counter):
    urgent = make(service, svc, clock, "m", 1, 2)
    normal = make(service, svc, clock, "m", 2, 5)
    command = parse_claim(Parts(path={"type": "m"}, body={"timeout_ms": 60_000, "max_jobs": 4}), service.limits)
    taken = [job.id for job in service.engine.leasing.claim_many(svc, command)]
    assert taken[:2] == urgent or sorted(taken[:2]) == sorted(urgent)
    assert set(taken[2:]) <= set(normal) and len(taken) == 4 and len(set(taken)) == 4


def test_patching_the_priority_moves_a_pending_job_to_that_level(service, svc, clock):
    first = make(service, svc, clock, "mv", 2, 2)
    service.patch(svc, first[1], {"priority": 1})  # a level this queue has not used yet
    past_the_cache(clock)
    assert claimed(service, svc, "mv", 2) == [first[1], first[0]]


def test_a_claim_racing_a_priority_change_does_not_lease_the_moved_job_twice(service, svc, clock):
    job_id = make(service, svc, clock, "race", 3, 1)[0]
    service.patch(svc, job_id, {"priority": 1})
    # A candidate read from its old level before the move: the lease's condition (the job
    # is still in that level) refuses it.
    from jobcore.commands.leases import ClaimJob

    leasing = service.engine.leasing
    command = ClaimJob(types=("race",), timeout_ms=60_000)
    stale = {"id": job_id, "attempts": 0, "QSK": "", "QPK": keys.queue_partition("race", 3)}
    assert leasing._try_lease(svc, command, "race", keys.queue_partition("race", 3), stale, clock.now()) is None
    assert claimed(service, svc, "race", 1) == [job_id]


def test_a_batch_registers_the_levels_it_creates_in(service, svc, clock):
    service.batch(svc, {"create": [{"type": "b", "priority": 4}, {"type": "b", "priority": 1}]})
    jobs = claimed(service, svc, "b", 2)
    assert [service.get(svc, job_id).priority for job_id in jobs] == [1, 4]


def test_the_queues_jobs_are_listed_in_claim_order_across_levels_and_pages(service, svc, clock):
    low = make(service, svc, clock, "l", 3, 3)
    urgent = make(service, svc, clock, "l", 1, 2)
    normal = make(service, svc, clock, "l", 2, 2)
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        query = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        page = service.queue_jobs("l", query)
        seen += [job.id for job in page.data]
        pages += 1
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == urgent + normal + low  # a listing is oldest first within a level
    assert pages == 4  # three full pages, then one that finds the end


def test_the_queues_lag_is_its_oldest_claimable_job_at_any_level(service, svc, clock):
    make(service, svc, clock, "lag2", 3, 1)
    clock.advance(5000)
    make(service, svc, clock, "lag2", 1, 1)
    assert service.queue("lag2").oldest_pending_at == "2026-11-22T10:00:00.000Z"


def test_items_read_per_claim_stay_flat_with_a_deep_less_urgent_level(service, svc, clock, counter):
    make(service, svc, clock, "deep2", 4, 300)
    make(service, svc, clock, "deep2", 1, 3)
    for _ in range(3):
        counter.reset()
        clock.advance(1)
        job = service.claim(svc, "deep2", {"timeout_ms": 60_000})
        assert job is not None and service.get(svc, job.id).priority == 1
        assert counter.items_read <= service.engine.ctx.settings.claim_candidates


def test_a_level_registered_by_another_container_is_claimed_at_once(dynamodb, settings, svc, clock):
    """A container that cached a queue's levels (none yet, or only level 2) still claims a job
    another container has just created in a new level: a miss reads the queue's item again."""
    import random

    from jobcore.engine import Engine
    from jobcore.store import TableStore
    from tests.conftest import TABLE_NAME

    worker, producer = (Jobs(Engine(TableStore(dynamodb, TABLE_NAME), settings, clock=clock, rng=random.Random(n)))
                        for n in (1, 2))  # fmt: skip
    assert worker.claim(svc, "fresh", {"timeout_ms": 60_000}) is None  # caches: no levels
    created = producer.create(svc, {"type": "fresh"}).job
    clock.advance(1)
    claimed = worker.claim(svc, "fresh", {"timeout_ms": 60_000})
    assert claimed is not None and claimed.id == created.id
    urgent = producer.create(svc, {"type": "fresh", "priority": 1}).job  # level 1 is new; level 2 is empty
    clock.advance(1)
    claimed = worker.claim(svc, "fresh", {"timeout_ms": 60_000})
    assert claimed is not None and claimed.id == urgent.id
