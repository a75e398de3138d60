"""The worker claiming several jobs at once (`max_jobs`), against a fake service in memory:
no claim asks for more jobs than the worker has free slots, each leased job runs exactly
once under its own lease token, and jobs claimed but never started are given back on stop."""

from __future__ import annotations

import threading
from collections import Counter, deque
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from jobs_client import Job, TransportError, Worker
from jobs_client.worker import JobContext

DEADLINE_S = 60  # generous: a loaded 2-core machine


class FakeService:
    """Just the calls a Worker makes. A claim leases pending jobs, each under a fresh lease
    token, long polling up to wait_ms when there are none; it records the violations of the
    rule the worker must keep: leases held plus jobs asked for never above `limit`."""

    def __init__(self, jobs: int, *, limit: int) -> None:
        self.limit = limit
        self.pending: deque[str] = deque(f"j{n:02d}" for n in range(jobs))
        self.total = jobs
        self.cond = threading.Condition()
        self.asks: list[tuple[str, str | list[str], int]] = []  # (call, types, jobs asked for)
        self.asking = 0  # jobs asked for by the claims in flight
        self.held: dict[str, str] = {}  # lease token -> job id
        self.peak = 0
        self.violations: list[str] = []
        self.leased: dict[str, list[str]] = {}  # job id -> its lease tokens, in order
        self.settled: list[tuple[str, str, str]] = []  # (complete | fail | abort, job id, token)
        self.extends: list[tuple[str, str]] = []  # (job id, token)
        self.all_settled = threading.Event()
        self.claiming = threading.Event()  # a claim is in flight
        self.gate: threading.Event | None = None  # when set, claims answer only once it opens
        self.claim_errors: list[Exception] = []  # raised by the next claims, in turn

    # -- claims ---------------------------------------------------------------------------
    def claim(self, type: str, *, timeout_ms: int, worker: str | None = None, wait_ms: int | None = None,
              max_retries: int | None = None) -> Job | None:  # fmt: skip
        jobs = self._lease("claim", type, 1, wait_ms)
        return jobs[0] if jobs else None

    def claim_many(self, types: str | list[str], *, max_jobs: int, timeout_ms: int, worker: str | None = None,
                   wait_ms: int | None = None, max_retries: int | None = None) -> list[Job]:  # fmt: skip
        assert 1 <= max_jobs <= 10
        return self._lease("claim_many", types if isinstance(types, str) else list(types), max_jobs, wait_ms)

    def _lease(self, call: str, types: str | list[str], count: int, wait_ms: int | None) -> list[Job]:
        with self.cond:
            self.asks.append((call, types, count))
            if len(self.held) + self.asking + count > self.limit:
                self.violations.append(f"asked {count} holding {len(self.held)}, {self.asking} asked in flight")
            self.asking += count
            self.claiming.set()
            error = self.claim_errors.pop(0) if self.claim_errors else None
        try:
            if error is not None:
                raise error
            if self.gate is not None:
                assert self.gate.wait(DEADLINE_S)
            with self.cond:
                self.cond.wait_for(lambda: bool(self.pending), timeout=(wait_ms or 0) / 1000)  # the long poll
                jobs = []
                while self.pending and len(jobs) < count:
                    job_id = self.pending.popleft()
                    token = f"{job_id}-lease{len(self.leased.get(job_id, [])) + 1}"
                    self.leased.setdefault(job_id, []).append(token)
                    self.held[token] = job_id
                    jobs.append(self._job(job_id, token))
                self.peak = max(self.peak, len(self.held))
                return jobs
        finally:
            with self.cond:
                self.asking -= count

    @staticmethod
    def _job(job_id: str, token: str) -> Job:
        return Job.from_wire({"id": job_id, "type": "q", "state": "running", "version": 2, "attempts": 1, "lease_token": token})

    # -- one lease --------------------------------------------------------------------------
    def extend(self, job_id: str, lease_token: str, *, timeout_ms: int) -> Job:
        with self.cond:
            self._check(job_id, lease_token)
            self.extends.append((job_id, lease_token))
            self.cond.notify_all()
        return self._job(job_id, lease_token)

    def post_status(self, job_id: str, *, lease_token: str | None = None, **_fields: Any) -> Job:
        assert lease_token is not None
        return self.extend(job_id, lease_token, timeout_ms=0)

    def complete(self, job_id: str, *, lease_token: str | None = None, result: Any = None) -> Job:
        assert lease_token is not None
        return self._settle("complete", job_id, lease_token)

    def fail(self, job_id: str, lease_token: str, *, code: str = "failed", message: str = "", retry: bool = True) -> Job:
        return self._settle("fail", job_id, lease_token)

    def abort(self, job_id: str, lease_token: str) -> Job:
        return self._settle("abort", job_id, lease_token)

    def _settle(self, how: str, job_id: str, lease_token: str) -> Job:
        with self.cond:
            self._check(job_id, lease_token)
            self.held.pop(lease_token, None)
            self.settled.append((how, job_id, lease_token))
            if len(self.settled) >= self.total:
                self.all_settled.set()
            self.cond.notify_all()
        return self._job(job_id, lease_token)

    def _check(self, job_id: str, lease_token: str) -> None:
        if self.held.get(lease_token) != job_id:
            self.violations.append(f"{job_id} used lease {lease_token}, not held")

    def wait_for(self, condition: Any) -> None:
        with self.cond:
            assert self.cond.wait_for(condition, timeout=DEADLINE_S)


class Handled:
    """What the handler saw: (job id, lease token) of each run."""

    def __init__(self) -> None:
        self.runs: list[tuple[str, str]] = []
        self.lock = threading.Lock()

    def record(self, ctx: JobContext) -> None:
        with self.lock:
            self.runs.append((ctx.job.id, ctx.lease_token))


@contextmanager
def running(worker: Worker) -> Iterator[threading.Thread]:
    """The worker runs in a thread; stopped, and its run() returned, when the block ends."""
    thread = threading.Thread(target=lambda: worker.run(install_signal_handlers=False), daemon=True)
    thread.start()
    try:
        yield thread
    finally:
        worker.stop()
        thread.join(DEADLINE_S)
        assert not thread.is_alive(), "run() did not return after stop()"


def make_worker(service: FakeService, handler: Any, *, queues: str | list[str] = "q", **options: Any) -> Worker:
    # ws_url "": long polls against the fake, whatever JOBS_WS_URL the shell exports.
    options = {"wait_ms": 100, "lease_ms": 60_000, "shutdown_grace_s": 30, "ws_url": ""} | options
    return Worker(service, queues, handler, **options)  # type: ignore[arg-type]


@pytest.mark.parametrize("max_jobs", [0, -1, 11])
def test_max_jobs_outside_1_to_10_is_refused(max_jobs):
    with pytest.raises(ValueError, match="max_jobs"):
        make_worker(FakeService(0, limit=1), lambda ctx: None, max_jobs=max_jobs)


@pytest.mark.parametrize("max_jobs", [1, 10])
def test_max_jobs_of_1_to_10_is_taken(max_jobs):
    assert make_worker(FakeService(0, limit=1), lambda ctx: None, max_jobs=max_jobs).max_jobs == max_jobs


def test_a_claim_asks_only_for_the_free_slots_and_every_leased_job_starts_at_once():
    service = FakeService(6, limit=4)
    handled, release, four_started = Handled(), threading.Event(), threading.Event()

    def handler(ctx: JobContext) -> None:
        handled.record(ctx)
        with handled.lock:
            if len(handled.runs) == 4:
                four_started.set()
        assert release.wait(DEADLINE_S)

    worker = make_worker(service, handler, concurrency=4, max_jobs=3)
    with running(worker):
        assert four_started.wait(DEADLINE_S)
        # 3 for the first idle slot, then the 1 slot still free; the 3 jobs claimed together
        # are all running, each in its own slot.
        with service.cond:
            assert sorted(count for _, _, count in service.asks) == [1, 3]
            assert len(service.held) == 4
        release.set()
        service.wait_for(lambda: len(service.settled) == 6)
    assert service.violations == []
    assert service.peak == 4
    assert Counter(job_id for job_id, _ in handled.runs) == {f"j{n:02d}": 1 for n in range(6)}
    assert worker.stats.snapshot() == {"claimed": 6, "completed": 6, "failed": 0, "aborted": 0, "lost": 0, "abandoned": 0}


def test_each_leased_job_runs_once_under_its_own_lease_token():
    service = FakeService(30, limit=3)
    handled = Handled()

    def handler(ctx: JobContext) -> dict[str, str]:
        handled.record(ctx)
        if ctx.job.id.endswith("5"):
            raise RuntimeError("odd one out")
        return {"done": ctx.job.id}

    worker = make_worker(service, handler, concurrency=3, max_jobs=4)
    with running(worker):
        assert service.all_settled.wait(DEADLINE_S)
    assert service.violations == []
    assert service.peak <= 3
    assert max(count for _, _, count in service.asks) == 3  # min(max_jobs, concurrency)
    assert sorted(handled.runs) == sorted((job_id, tokens[0]) for job_id, tokens in service.leased.items())
    assert all(len(tokens) == 1 for tokens in service.leased.values())
    tokens = {job_id: tokens[0] for job_id, tokens in service.leased.items()}
    assert sorted((job_id, token) for _, job_id, token in service.settled) == sorted(tokens.items())
    failed = {job_id for how, job_id, _ in service.settled if how == "fail"}
    assert failed == {"j05", "j15", "j25"}
    assert worker.stats.snapshot() == {"claimed": 30, "completed": 27, "failed": 3, "aborted": 0, "lost": 0, "abandoned": 0}


@pytest.mark.parametrize(("concurrency", "max_jobs"), [(3, 1), (1, 10)])
def test_a_worker_that_can_take_one_job_at_a_time_claims_one_job(concurrency, max_jobs):
    service = FakeService(5, limit=concurrency)
    worker = make_worker(service, lambda ctx: None, concurrency=concurrency, max_jobs=max_jobs)
    with running(worker):
        assert service.all_settled.wait(DEADLINE_S)
    assert service.violations == []
    assert set(service.asks) == {("claim", "q", 1)}  # the one-job form, as before max_jobs


def test_claims_of_several_jobs_name_the_queue_or_rotate_the_queues():
    alone, together = FakeService(0, limit=10), FakeService(0, limit=10)
    one_queue = make_worker(alone, lambda ctx: None, max_jobs=5)
    several = make_worker(together, lambda ctx: None, queues=["a", "b", "c"], max_jobs=5)
    for count in (5, 2, 1):
        assert one_queue._claim_up_to(count) == []
        assert several._claim_up_to(count) == []
    assert alone.asks == [("claim_many", "q", 5), ("claim_many", "q", 2), ("claim", "q", 1)]
    assert together.asks == [
        ("claim_many", ["a", "b", "c"], 5),
        ("claim_many", ["b", "c", "a"], 2),
        ("claim_many", ["c", "a", "b"], 1),
    ]


def test_the_heartbeat_extends_each_job_of_a_batch_with_its_own_lease():
    service = FakeService(3, limit=3)

    def handler(ctx: JobContext) -> None:
        service.wait_for(lambda: sum(1 for _, token in service.extends if token == ctx.lease_token) >= 2)

    worker = make_worker(service, handler, concurrency=3, max_jobs=3, lease_ms=300)  # extends every 0.1 s
    with running(worker):
        assert service.all_settled.wait(DEADLINE_S)
    assert service.asks[0] == ("claim_many", "q", 3)
    assert service.violations == []  # every extend named a job with the lease it holds
    assert {token for _, token in service.extends} == {tokens[0] for tokens in service.leased.values()}
    assert [how for how, _, _ in service.settled] == ["complete"] * 3


def test_jobs_a_claim_leased_after_stop_are_given_back_at_once_and_never_run():
    service = FakeService(3, limit=3)
    service.gate = threading.Event()
    handled = Handled()
    worker = make_worker(service, handled.record, concurrency=3, max_jobs=3, lease_ms=600_000, shutdown_grace_s=600)
    with running(worker):
        assert service.claiming.wait(DEADLINE_S)
        worker.stop()
        service.gate.set()  # the long poll answers after stop(), with 3 jobs
        assert service.all_settled.wait(DEADLINE_S)
    assert handled.runs == []
    assert sorted(service.settled) == sorted(("abort", job_id, tokens[0]) for job_id, tokens in service.leased.items())
    assert service.violations == []
    assert worker.stats.snapshot() == {"claimed": 3, "completed": 0, "failed": 0, "aborted": 3, "lost": 0, "abandoned": 0}


def test_stopping_gives_back_the_jobs_claimed_for_slots_that_never_started_them():
    # One slot's claim leased 3 jobs, it ran the first; the other two were still queued for
    # idle slots when the worker stopped (white box: the slots are driven by hand).
    service = FakeService(3, limit=3)
    handled = Handled()
    worker = make_worker(service, handled.record, concurrency=3, max_jobs=3, shutdown_grace_s=600)
    ctx, count = worker._next_turn()
    assert (ctx, count) == (None, 3)
    first = worker._claim_for(count)
    assert first is not None
    assert worker._run(first)
    worker.stop()
    drain = threading.Thread(target=worker._drain, daemon=True)
    drain.start()
    drain.join(DEADLINE_S)  # not the 600 s of grace: nothing was running
    assert not drain.is_alive()
    assert handled.runs == [(first.job.id, first.lease_token)]
    tokens = {job_id: tokens[0] for job_id, tokens in service.leased.items()}
    assert sorted(service.settled) == sorted(
        [("complete", first.job.id, first.lease_token)]
        + [("abort", job_id, token) for job_id, token in tokens.items() if job_id != first.job.id]
    )
    assert worker._held() == []
    assert worker._next_turn() == (None, 0)


def test_a_failed_claim_returns_its_reservation():
    service = FakeService(4, limit=2)
    service.claim_errors.append(TransportError("connection reset"))
    worker = make_worker(service, lambda ctx: None, concurrency=2, max_jobs=2)
    with running(worker):
        assert service.all_settled.wait(DEADLINE_S)
    assert service.asks[0] == ("claim_many", "q", 2)
    assert service.violations == []
    assert worker.stats.snapshot()["completed"] == 4
