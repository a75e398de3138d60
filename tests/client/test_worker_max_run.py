"""`max_run_s` gives up a handler that overruns, and only a handler: a job whose handler has
returned and whose `complete` is slow (a loaded service) is completed, not abandoned, and
the worker keeps exactly `concurrency` slots."""

from __future__ import annotations

import threading
from typing import Any

from jobs_client import Job
from jobs_client.worker import JobContext

from tests.client.test_worker_max_jobs import DEADLINE_S, FakeService, make_worker, running


class SlowToComplete(FakeService):
    """A `complete` that answers only after the job's lease was extended `extends` times
    (the heartbeat runs on meanwhile, well past max_run_s)."""

    def __init__(self, jobs: int, *, extends: int) -> None:
        super().__init__(jobs, limit=1)
        self.extends_before_answer = extends

    def complete(self, job_id: str, *, lease_token: str | None = None, result: Any = None) -> Job:
        self.wait_for(lambda: sum(1 for _, token in self.extends if token == lease_token) >= self.extends_before_answer)
        return super().complete(job_id, lease_token=lease_token, result=result)


def test_a_slow_complete_after_the_handler_returned_is_not_an_overrun():
    service = SlowToComplete(1, extends=3)
    # max_run_s 0.05 s, a heartbeat every 0.1 s: each heartbeat comes after max_run_s.
    worker = make_worker(service, lambda ctx: {"ok": True}, concurrency=1, lease_ms=300, max_run_s=0.05)
    with running(worker):
        assert service.all_settled.wait(DEADLINE_S)
        assert len(worker._slots) == 1  # no second slot started for a job given up
    assert [how for how, _, _ in service.settled] == ["complete"]
    assert worker.stats.snapshot()["abandoned"] == 0 and worker.stats.snapshot()["completed"] == 1
    assert service.violations == []


def test_a_handler_that_overruns_is_given_up_and_a_fresh_slot_takes_its_place():
    service = FakeService(2, limit=2)
    release = threading.Event()
    ran: list[str] = []

    def handler(ctx: JobContext) -> None:
        ran.append(ctx.job.id)
        if len(ran) == 1:
            assert release.wait(DEADLINE_S)  # hangs until the test is done with it

    worker = make_worker(service, handler, concurrency=1, lease_ms=300, max_run_s=0.05)
    with running(worker):
        service.wait_for(lambda: any(how == "complete" for how, _, _ in service.settled))
        assert worker.stats.snapshot()["abandoned"] == 1
        assert len(worker._slots) == 2  # the hung slot, and the fresh one that ran the next job
        release.set()
    # The hung job's outcome is never reported: its lease runs out and another worker retries it.
    assert [(how, job) for how, job, _ in service.settled] == [("complete", ran[1])]
