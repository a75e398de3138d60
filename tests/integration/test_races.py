"""Races against the embedded DynamoDB server, with real threads and the real clock.

The engine's guarantees hold only if every transition is one conditional write: these
tests run many workers at once and check the outcomes, not the interleavings.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pytest

from jobcore.clock import SystemClock, parse_iso
from jobcore.engine import Engine
from jobcore.errors import LeaseLost
from jobcore.model import JobState, Principal, Role
from jobcore.settings import Settings
from jobcore.store import TableStore
from tests.integration.conftest import TABLE_NAME
from tests.support.jobs import Jobs

pytestmark = pytest.mark.race

SERVICE = Principal("svc-race", Role.SERVICE)


def new_service(client_factory: Any, *, seed: int | None = None) -> Jobs:
    import random

    engine = Engine(
        TableStore(client_factory(), TABLE_NAME),
        Settings(table_name=TABLE_NAME, poll_interval_ms=20, cursor_key=b"races"),
        clock=SystemClock(),
        rng=random.Random(seed),
    )
    return Jobs(engine)


@dataclass
class Lease:
    job_id: str
    worker: int
    granted: str  # the job's `started` stamp, written by the claim itself
    locked_until: str


def test_eight_workers_drain_400_jobs_each_finished_once(client_factory: Any) -> None:
    producer = new_service(client_factory)
    created = {producer.create(SERVICE, {"type": "race", "params": {"n": n}}).job.id for n in range(400)}
    assert len(created) == 400

    leases: list[Lease] = []
    completions: dict[str, list[int]] = defaultdict(list)
    stale_rejections = 0
    stalled = 0  # workers waiting for their job to be taken from them
    lock = threading.Lock()
    deadline = time.monotonic() + 300  # generous: a loaded 2-core machine

    def all_finished() -> bool:
        with lock:
            return len(completions) == len(created)

    def taken_from(service: Jobs, job_id: str, token: str) -> bool:
        job = service.get(SERVICE, job_id)
        return job.lease_token not in (None, token) or job.state is JobState.FINISHED

    def worker(index: int) -> None:
        nonlocal stale_rejections, stalled
        service = new_service(client_factory, seed=index)
        claims = 0
        # Workers go on until every job is finished (not until a claim finds none): a stalled
        # job becomes claimable only when its lease runs out, and someone must be there.
        while not all_finished():
            assert time.monotonic() < deadline, "the jobs were not drained in time"
            job = service.claim(SERVICE, "race", {"timeout_ms": 150, "worker": f"w{index}", "wait_ms": 200})
            if job is None:
                continue
            claims += 1
            assert job.lease_token and job.locked_until and job.started
            with lock:
                leases.append(Lease(job.id, index, job.started, job.locked_until))
                # At most half the pool stalls at once, so others are there to take the jobs.
                stall = claims % 7 == 0 and stalled < 4
                stalled += stall
            if stall:
                # A worker that stalls past its lease until another worker has re-claimed the
                # job: this one's late complete must be refused and change nothing.
                while not taken_from(service, job.id, job.lease_token):
                    assert time.monotonic() < deadline, "a stalled job was never re-claimed"
                    threading.Event().wait(0.02)
                with lock:
                    stalled -= 1
            try:
                service.complete(SERVICE, job.id, {"lease_token": job.lease_token, "result": {"by": index}})
            except LeaseLost:
                with lock:
                    stale_rejections += 1
                continue
            with lock:
                completions[job.id].append(index)

    with ThreadPoolExecutor(max_workers=8) as pool:
        for future in [pool.submit(worker, i) for i in range(8)]:
            future.result()

    # Every job finished exactly once, by the worker the stored result names; none lost.
    assert set(completions) == created
    assert all(len(by) == 1 for by in completions.values())
    for job_id in created:
        job = producer.get(SERVICE, job_id)
        assert job.state is JobState.FINISHED
        assert job.result == {"by": completions[job_id][0]}
    # No two leases on one job overlap in time: each grant comes at or after the previous
    # lease's end (a lease whose locked_until <= now is free).
    by_job: dict[str, list[Lease]] = defaultdict(list)
    for lease in leases:
        by_job[lease.job_id].append(lease)
    for job_leases in by_job.values():
        job_leases.sort(key=lambda lease: lease.granted)
        for earlier, later in itertools.pairwise(job_leases):
            assert parse_iso(later.granted) >= parse_iso(earlier.locked_until)
    # Stalled workers lost their leases: the re-claim path was really exercised.
    assert stale_rejections > 0
    assert len(leases) == 400 + stale_rejections


def test_unique_create_under_16_concurrent_callers_creates_one_job(client_factory: Any) -> None:
    barrier = threading.Barrier(16)

    def create(index: int) -> tuple[str, bool]:
        service = new_service(client_factory)
        barrier.wait()
        result = service.create(SERVICE, {"type": "uniq", "ref_id": "order-42", "unique": True, "params": {"i": index}})
        return result.job.id, result.created

    with ThreadPoolExecutor(max_workers=16) as pool:
        outcomes = list(pool.map(create, range(16)))

    ids = {job_id for job_id, _ in outcomes}
    assert len(ids) == 1
    assert sum(created for _, created in outcomes) == 1
    listed = new_service(client_factory).list_jobs(SERVICE, {"type": "uniq", "ref_id": "order-42"})
    assert [job.id for job in listed.data] == list(ids)


def test_concurrent_status_posts_keep_modified_strictly_increasing(client_factory: Any) -> None:
    service = new_service(client_factory)
    job = service.create(SERVICE, {"type": "progress", "state": "idle"}).job

    def post(index: int) -> tuple[int, str]:
        own = new_service(client_factory)
        updated = own.post_status(SERVICE, job.id, {"new_status": f"s{index}", "message_to_append": f"m{index}"})
        return updated.version, updated.modified

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(post, range(40)))

    # Every post was one write: 40 versions on top of the created one, 40 distinct
    # message stamps, each the job's `modified` at that write, strictly increasing.
    assert service.get(SERVICE, job.id).version == 41
    assert all(version >= 2 for version, _ in results)
    messages = service.messages(SERVICE, job.id, {"limit": "100"}).data
    assert sorted(m.message for m in messages) == sorted(f"m{i}" for i in range(40))
    stamps = [m.at for m in messages]
    assert len(set(stamps)) == 40
    assert stamps == sorted(stamps)
    assert service.get(SERVICE, job.id).modified == stamps[-1]
